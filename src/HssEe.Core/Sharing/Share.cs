using System.Diagnostics;
using System.Numerics.Tensors;
using HssEe.Compute;
using HssEe.Ring;

namespace HssEe.Sharing;

/// <summary>
/// One party's additive share of a secret ring tensor: the secret is the sum of party A's and
/// party B's shares modulo 2^64. The share knows its <see cref="Party"/> and the number of
/// fixed-point fractional bits its value carries, so operations that must happen on one side
/// only (adding a public constant) or only between compatible values cannot be done wrong.
/// </summary>
/// <remarks>
/// All operations here are local (no communication) and return new shares. Products with
/// public fixed-point values add the public value's fractional bits to
/// <see cref="FractionalBits"/>; the caller truncates with an FSS gate afterwards.
/// <see cref="Dispose"/> wipes the share's storage; <see cref="ToString"/> never shows elements.
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class Share : IDisposable
{
    private readonly RingTensor _value;
    private bool _disposed;

    /// <summary>Wraps a party's share value.</summary>
    /// <param name="party">The party holding this share.</param>
    /// <param name="value">The share's ring elements (taken without copy).</param>
    /// <param name="fractionalBits">Fixed-point fractional bits of the shared value (0 for plain integers), 0 to 62.</param>
    public Share(Party party, RingTensor value, int fractionalBits)
    {
        party.Validate(nameof(party));
        ArgumentNullException.ThrowIfNull(value);
        if (fractionalBits is < 0 or > FixedPointFormat.MaxFractionalBits)
        {
            throw new ArgumentOutOfRangeException(nameof(fractionalBits), fractionalBits, $"Fractional bits must be between 0 and {FixedPointFormat.MaxFractionalBits}.");
        }

        Party = party;
        _value = value;
        FractionalBits = fractionalBits;
    }

    /// <summary>The party that holds this share.</summary>
    public Party Party { get; }

    /// <summary>Fixed-point fractional bits carried by the shared value.</summary>
    public int FractionalBits { get; }

    /// <summary>The shape of the shared tensor.</summary>
    public TensorShape Shape => Value.Shape;

    /// <summary>This party's ring elements (uniformly random on their own).</summary>
    public RingTensor Value
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _value;
        }
    }

    /// <summary>Adds another share of the same party, shape and scale.</summary>
    /// <param name="other">Share to add.</param>
    /// <returns>A share of the sum.</returns>
    public Share Add(Share other)
    {
        CheckCompatible(other, "Add");
        var result = new RingTensor(Shape);
        TensorPrimitives.Add<ulong>(Value.Span, other.Value.Span, result.Span);
        return new Share(Party, result, FractionalBits);
    }

    /// <summary>Subtracts another share of the same party, shape and scale.</summary>
    /// <param name="other">Share to subtract.</param>
    /// <returns>A share of the difference.</returns>
    public Share Subtract(Share other)
    {
        CheckCompatible(other, "Subtract");
        var result = new RingTensor(Shape);
        TensorPrimitives.Subtract<ulong>(Value.Span, other.Value.Span, result.Span);
        return new Share(Party, result, FractionalBits);
    }

    /// <summary>Negates the shared value.</summary>
    /// <returns>A share of the negation.</returns>
    public Share Negate()
    {
        var result = new RingTensor(Shape);
        TensorPrimitives.Negate<ulong>(Value.Span, result.Span);
        return new Share(Party, result, FractionalBits);
    }

    /// <summary>
    /// Adds a public constant to the shared value: party A adds it to its share, party B's share
    /// is copied unchanged. Both parties call this with the same constant.
    /// </summary>
    /// <param name="constant">Public ring tensor of the same shape, encoded with <see cref="FractionalBits"/> fractional bits.</param>
    /// <returns>A share of (secret + constant).</returns>
    public Share AddPublic(RingTensor constant)
    {
        ArgumentNullException.ThrowIfNull(constant);
        TensorShape.ThrowIfDifferent(Shape, constant.Shape, nameof(constant), "Share.AddPublic (share vs public constant)");
        var result = Value.Clone();
        if (Party == Party.A)
        {
            TensorPrimitives.Add<ulong>(result.Span, constant.Span, result.Span);
        }

        return new Share(Party, result, FractionalBits);
    }

    /// <summary>Multiplies the shared value by a public integer (the scale is unchanged).</summary>
    /// <param name="factor">Public integer factor.</param>
    /// <returns>A share of (factor * secret).</returns>
    public Share MultiplyPublic(long factor)
    {
        var result = new RingTensor(Shape);
        TensorPrimitives.Multiply<ulong>(Value.Span, unchecked((ulong)factor), result.Span);
        return new Share(Party, result, FractionalBits);
    }

    /// <summary>
    /// Multiplies the shared value by a public real scalar encoded in <paramref name="format"/>.
    /// The result carries <c>FractionalBits + format.FractionalBits</c> fractional bits and must be
    /// truncated by the caller.
    /// </summary>
    /// <param name="factor">Public real factor.</param>
    /// <param name="format">Fixed-point format of the factor.</param>
    /// <returns>A share of (factor * secret) at the higher scale.</returns>
    public Share MultiplyPublic(double factor, FixedPointFormat format)
    {
        int bits = CheckedScale(FractionalBits + format.FractionalBits, "MultiplyPublic");
        var result = new RingTensor(Shape);
        TensorPrimitives.Multiply<ulong>(Value.Span, format.Encode(factor), result.Span);
        return new Share(Party, result, bits);
    }

    /// <summary>
    /// The linear layer on a shared activation matrix: <c>Y[m, n] = sum_k X[m, k] * W[n, k]</c> with
    /// public fixed-point weights W (PyTorch <c>Linear</c> layout <c>[out, in]</c>). Local: each
    /// party multiplies its own share. The result carries
    /// <c>FractionalBits + weightFractionalBits</c> fractional bits (2f), to be truncated by the caller.
    /// </summary>
    /// <param name="weights">Public weights, shape <c>[n, k]</c>.</param>
    /// <param name="weightFractionalBits">Fractional bits of the weight encoding.</param>
    /// <param name="backend">Compute backend; <see cref="ComputeBackend.Cpu"/> when null.</param>
    /// <returns>A share of shape <c>[..., n]</c> (all leading axes of this share kept).</returns>
    public Share MatMulPublic(RingTensor weights, int weightFractionalBits, ComputeBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.Shape.Rank != 2)
        {
            throw new ArgumentException($"Weights must be a matrix [out, in]; got shape {weights.Shape}.", nameof(weights));
        }

        if (Shape.Rank < 1)
        {
            throw new InvalidOperationException($"MatMulPublic needs a share of rank >= 1; this share has shape {Shape}.");
        }

        int k = Shape[-1];
        int n = weights.Shape[0];
        if (weights.Shape[1] != k)
        {
            throw new ArgumentException($"Shape mismatch in Share.MatMulPublic: activations {Shape} have inner dimension {k}, weights {weights.Shape} expect {weights.Shape[1]}.", nameof(weights));
        }

        int bits = CheckedScale(FractionalBits + weightFractionalBits, "MatMulPublic");
        int m = RowsOf(Shape);
        int[] dims = Shape.Dimensions.ToArray();
        dims[^1] = n;
        var result = new RingTensor(new TensorShape(dims));
        (backend ?? ComputeBackend.Cpu).RingGemm(Value.Span, weights.Span, result.Span, m, k, n);
        return new Share(Party, result, bits);
    }

    /// <summary>Wipes the share's storage. Later access throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _value.Clear();
            _disposed = true;
        }
    }

    /// <summary>Shows party, shape and scale only.</summary>
    /// <returns>For example <c>Share(A, [2, 3], f=12)</c>.</returns>
    public override string ToString() => $"Share({Party}, {_value.Shape}, f={FractionalBits})";

    private static int RowsOf(TensorShape shape)
    {
        int rows = 1;
        for (int i = 0; i < shape.Rank - 1; i++)
        {
            rows *= shape[i];
        }

        return rows;
    }

    private static int CheckedScale(int bits, string operation)
    {
        if (bits > FixedPointFormat.MaxFractionalBits)
        {
            throw new InvalidOperationException($"{operation} would carry {bits} fractional bits (more than {FixedPointFormat.MaxFractionalBits}); truncate first.");
        }

        return bits;
    }

    private void CheckCompatible(Share other, string operation)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Party != Party)
        {
            throw new ArgumentException($"Share.{operation} mixes party {Party}'s share with party {other.Party}'s share; each party combines only its own shares.", nameof(other));
        }

        TensorShape.ThrowIfDifferent(Shape, other.Shape, nameof(other), $"Share.{operation}");
        if (other.FractionalBits != FractionalBits)
        {
            throw new ArgumentException($"Share.{operation} mixes scales: f={FractionalBits} and f={other.FractionalBits}; truncate or rescale first.", nameof(other));
        }
    }
}
