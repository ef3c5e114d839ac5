using System.Collections.Immutable;
using HssEe.Ring;

namespace HssEe.Protocols;

/// <summary>The kinds of two-party operations a plan can contain.</summary>
public enum OperationKind
{
    /// <summary>Element-wise product of two shared tensors (Beaver triple).</summary>
    Multiply = 1,

    /// <summary>Element-wise square of a shared tensor (Beaver square pair).</summary>
    Square = 2,

    /// <summary>Product of two shared matrices [m, k] x [k, n] (matrix Beaver triple).</summary>
    MatMul = 3,

    /// <summary>Faithful arithmetic right shift (truncation) by f bits of an n-bit signed value (FSS, exact).</summary>
    Truncate = 10,

    /// <summary>Sign bit: shares of 1{x >= 0} as a ring element (FSS).</summary>
    Sign = 11,

    /// <summary>ReLU(x) = max(x, 0) (FSS, exact).</summary>
    Relu = 12,

    /// <summary>Interval selection of a spline gate: shares of the active piece's coefficients (FSS, one DCF key, exact).</summary>
    Spline = 13,

    /// <summary>Look-up table on a small domain of k &lt;= 16 bits (FSS through a DPF, exact).</summary>
    Lookup = 14,

    /// <summary>A smooth function from one look-up table with linear interpolation (<see cref="PlanBuilder.TableActivation"/>).</summary>
    TableActivation = 15,

    /// <summary>Select: bit ? a : c for a shared bit and shared a, c (exact, one round).</summary>
    Select = 16,

    /// <summary>Interval containment: 1{lo &lt;= x &lt; hi} for public bounds (FSS, exact).</summary>
    Interval = 17,
}

/// <summary>
/// One operation of a <see cref="Plan"/>: its kind, input shapes, bit-widths and parameters.
/// Both parties and the dealer walk the same steps in the same order.
/// </summary>
public sealed class PlanStep
{
    internal PlanStep(int index, OperationKind kind, ImmutableArray<TensorShape> inputs, TensorShape output, int inputBits, ImmutableArray<long> parameters, ImmutableArray<byte> blob, string label)
    {
        Index = index;
        Kind = kind;
        Inputs = inputs;
        Output = output;
        InputBits = inputBits;
        Parameters = parameters;
        Blob = blob;
        Label = label;
    }

    /// <summary>Position in the plan (0-based).</summary>
    public int Index { get; }

    /// <summary>What the step computes.</summary>
    public OperationKind Kind { get; }

    /// <summary>Shapes of the shared inputs.</summary>
    public ImmutableArray<TensorShape> Inputs { get; }

    /// <summary>Shape of the shared output.</summary>
    public TensorShape Output { get; }

    /// <summary>Bit-width n at which FSS gates evaluate their (opened, masked) input; 64 for Beaver steps.</summary>
    public int InputBits { get; }

    /// <summary>Integer parameters of the step (e.g. the shift f of a truncation).</summary>
    public ImmutableArray<long> Parameters { get; }

    /// <summary>Binary parameters of the step (e.g. a compiled spline description).</summary>
    public ImmutableArray<byte> Blob { get; }

    /// <summary>A caller-chosen label used in messages (e.g. "layer3.mlp.act").</summary>
    public string Label { get; }

    /// <summary>Describes the step for error messages, e.g. <c>step 3 'mlp.act' (Relu on [2, 5], n=32)</c>.</summary>
    /// <returns>The description.</returns>
    public override string ToString()
    {
        string label = Label.Length == 0 ? string.Empty : $" '{Label}'";
        return $"step {Index}{label} ({Kind} on {string.Join(" x ", Inputs.Select(s => s.ToString()))}, n={InputBits})";
    }

    internal void WriteCanonical(BinaryWriter writer)
    {
        writer.Write(Index);
        writer.Write((int)Kind);
        writer.Write(Inputs.Length);
        foreach (TensorShape shape in Inputs)
        {
            WriteShape(writer, shape);
        }

        WriteShape(writer, Output);
        writer.Write(InputBits);
        writer.Write(Parameters.Length);
        foreach (long p in Parameters)
        {
            writer.Write(p);
        }

        writer.Write(Blob.Length);
        writer.Write(Blob.AsSpan());
        writer.Write(Label);
    }

    private static void WriteShape(BinaryWriter writer, TensorShape shape)
    {
        writer.Write(shape.Rank);
        foreach (int d in shape.Dimensions)
        {
            writer.Write(d);
        }
    }
}
