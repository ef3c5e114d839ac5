using System.Collections.Immutable;
using System.Security.Cryptography;
using HssEe.Ring;

namespace HssEe.Protocols;

/// <summary>
/// A static two-party computation: an ordered list of <see cref="PlanStep"/>s with shapes and
/// bit-widths, identified by a stable SHA-256 hash of its canonical encoding. The dealer walks a
/// plan to emit key bundles; each party walks the same plan consuming its bundle in order.
/// </summary>
public sealed class Plan
{
    /// <summary>Version of the canonical encoding that the hash covers.</summary>
    public const int EncodingVersion = 1;

    private readonly byte[] _hash;

    internal Plan(ImmutableArray<PlanStep> steps, int fractionalBits)
    {
        Steps = steps;
        FractionalBits = fractionalBits;
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write("HssEe.Plan");
            writer.Write(EncodingVersion);
            writer.Write(fractionalBits);
            writer.Write(steps.Length);
            foreach (PlanStep step in steps)
            {
                step.WriteCanonical(writer);
            }
        }

        _hash = SHA256.HashData(buffer.ToArray());
    }

    /// <summary>The steps, in execution order.</summary>
    public ImmutableArray<PlanStep> Steps { get; }

    /// <summary>Fixed-point fractional bits f of the model's activations.</summary>
    public int FractionalBits { get; }

    /// <summary>SHA-256 of the plan's canonical encoding (32 bytes); bundles carry it.</summary>
    public ReadOnlySpan<byte> Hash => _hash;

    /// <summary>The hash as hex (for logs and messages).</summary>
    public string HashHex => Convert.ToHexString(_hash);

    /// <inheritdoc />
    public override string ToString() => $"Plan({Steps.Length} steps, f={FractionalBits}, hash {HashHex[..16]}...)";
}

/// <summary>Builds a <see cref="Plan"/> step by step.</summary>
public sealed class PlanBuilder
{
    private readonly List<PlanStep> _steps = [];

    /// <summary>Starts a plan whose activations carry <paramref name="fractionalBits"/> fractional bits.</summary>
    /// <param name="fractionalBits">f, 0 to 31 (products carry 2f bits and must stay below 2^63).</param>
    public PlanBuilder(int fractionalBits)
    {
        if (fractionalBits is < 0 or > 31)
        {
            throw new ArgumentOutOfRangeException(nameof(fractionalBits), fractionalBits, "Plans support 0 to 31 fractional bits.");
        }

        FractionalBits = fractionalBits;
    }

    /// <summary>Fractional bits of the plan.</summary>
    public int FractionalBits { get; }

    /// <summary>Number of steps added so far.</summary>
    public int Count => _steps.Count;

    /// <summary>Adds an element-wise product of two shared tensors of the same shape (result carries 2f bits).</summary>
    /// <param name="shape">Shape of both inputs.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Multiply(TensorShape shape, string label = "") => Add(OperationKind.Multiply, [shape, shape], shape, 64, [], [], label);

    /// <summary>Adds an element-wise square (result carries 2f bits).</summary>
    /// <param name="shape">Input shape.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Square(TensorShape shape, string label = "") => Add(OperationKind.Square, [shape], shape, 64, [], [], label);

    /// <summary>Adds a product of shared matrices <c>[m, k] x [k, n]</c> (result carries 2f bits).</summary>
    /// <param name="m">Rows of the left matrix.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Columns of the right matrix.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder MatMul(int m, int k, int n, string label = "") =>
        Add(OperationKind.MatMul, [new TensorShape(m, k), new TensorShape(k, n)], new TensorShape(m, n), 64, [], [], label);

    /// <summary>Adds a plan step of any kind (used by the gate helpers).</summary>
    internal PlanBuilder Add(OperationKind kind, TensorShape[] inputs, TensorShape output, int inputBits, long[] parameters, byte[] blob, string label)
    {
        ArgumentNullException.ThrowIfNull(label);
        if (inputBits is < 1 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(inputBits), inputBits, "Gate bit-widths are between 1 and 64.");
        }

        _steps.Add(new PlanStep(_steps.Count, kind, [.. inputs], output, inputBits, [.. parameters], [.. blob], label));
        return this;
    }

    /// <summary>Freezes the plan and computes its hash.</summary>
    /// <returns>The plan.</returns>
    public Plan Build() => new([.. _steps], FractionalBits);
}
