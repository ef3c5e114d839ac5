namespace HssEe.Compute;

/// <summary>
/// The seam for heavy kernels: ring GEMM of public fixed-point weights with shared
/// activations, element-wise ring operations over Z_2^64, and float32 GEMM for the Plain
/// and EE modes. Every backend gives bit-identical ring results.
/// </summary>
/// <remarks>
/// Matrices are row-major. The weight operand uses the PyTorch <c>Linear</c> layout
/// <c>[n, k]</c> (output features by input features), so a GEMM computes
/// <c>C[m, n] = sum_k A[m, k] * W[n, k]</c>. Public methods validate their arguments and then
/// call the protected <c>...Core</c> methods, which may assume valid input.
/// Ring arithmetic wraps modulo 2^64.
/// </remarks>
public abstract class ComputeBackend
{
    /// <summary>Creates a backend. Derived classes live in HssEe.Core, HssEe.Gpu or third-party assemblies.</summary>
    protected ComputeBackend()
    {
    }

    /// <summary>The default CPU backend (vectorised, all cores).</summary>
    public static ComputeBackend Cpu => CpuBackend.Shared;

    /// <summary>A short name of the backend and its configuration, e.g. <c>cpu(avx512, 2 threads)</c>.</summary>
    public abstract string Name { get; }

    /// <summary>
    /// Ring GEMM: <c>c[m, n] = sum_k a[m, k] * w[n, k] mod 2^64</c>. With fixed-point inputs of f
    /// fractional bits each, the result carries 2f fractional bits.
    /// </summary>
    /// <param name="a">Left operand, <c>m x k</c> row-major (typically a share of activations).</param>
    /// <param name="w">Weights, <c>n x k</c> row-major (public, fixed-point encoded).</param>
    /// <param name="c">Destination, <c>m x n</c> row-major; must not overlap the inputs.</param>
    /// <param name="m">Rows of <paramref name="a"/>.</param>
    /// <param name="k">Shared inner dimension.</param>
    /// <param name="n">Rows of <paramref name="w"/>.</param>
    public void RingGemm(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> w, Span<ulong> c, int m, int k, int n)
    {
        ValidateGemm(a.Length, w.Length, c.Length, m, k, n);
        ThrowIfOverlap(a, c, nameof(a), nameof(c));
        ThrowIfOverlap(w, c, nameof(w), nameof(c));
        RingGemmCore(a, w, c, m, k, n);
    }

    /// <summary>Float32 GEMM: <c>c[m, n] = sum_k a[m, k] * w[n, k]</c> (Plain and EE modes).</summary>
    /// <param name="a">Left operand, <c>m x k</c> row-major.</param>
    /// <param name="w">Weights, <c>n x k</c> row-major.</param>
    /// <param name="c">Destination, <c>m x n</c> row-major; must not overlap the inputs.</param>
    /// <param name="m">Rows of <paramref name="a"/>.</param>
    /// <param name="k">Shared inner dimension.</param>
    /// <param name="n">Rows of <paramref name="w"/>.</param>
    public void FloatGemm(ReadOnlySpan<float> a, ReadOnlySpan<float> w, Span<float> c, int m, int k, int n)
    {
        ValidateGemm(a.Length, w.Length, c.Length, m, k, n);
        ThrowIfOverlap(a, c, nameof(a), nameof(c));
        ThrowIfOverlap(w, c, nameof(w), nameof(c));
        FloatGemmCore(a, w, c, m, k, n);
    }

    /// <summary>Element-wise <c>destination[i] = x[i] + y[i] mod 2^64</c>. In place (destination equal to an input) is allowed.</summary>
    /// <param name="x">First operand.</param>
    /// <param name="y">Second operand, same length.</param>
    /// <param name="destination">Result, same length; may be exactly <paramref name="x"/> or <paramref name="y"/>, must not partially overlap.</param>
    public void RingAdd(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination)
    {
        ValidateBinary(x, y, destination);
        RingAddCore(x, y, destination);
    }

    /// <summary>Element-wise <c>destination[i] = x[i] - y[i] mod 2^64</c>. In place is allowed.</summary>
    /// <param name="x">First operand.</param>
    /// <param name="y">Second operand, same length.</param>
    /// <param name="destination">Result, same length; may be exactly an input, must not partially overlap.</param>
    public void RingSubtract(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination)
    {
        ValidateBinary(x, y, destination);
        RingSubtractCore(x, y, destination);
    }

    /// <summary>Element-wise <c>destination[i] = x[i] * y[i] mod 2^64</c>. In place is allowed.</summary>
    /// <param name="x">First operand.</param>
    /// <param name="y">Second operand, same length.</param>
    /// <param name="destination">Result, same length; may be exactly an input, must not partially overlap.</param>
    public void RingMultiply(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination)
    {
        ValidateBinary(x, y, destination);
        RingMultiplyCore(x, y, destination);
    }

    /// <summary>Element-wise <c>destination[i] = x[i] * scalar mod 2^64</c>. In place is allowed.</summary>
    /// <param name="x">Operand.</param>
    /// <param name="scalar">Public ring scalar (a negative integer s is passed as <c>unchecked((ulong)s)</c>).</param>
    /// <param name="destination">Result, same length; may be exactly <paramref name="x"/>, must not partially overlap.</param>
    public void RingMultiplyScalar(ReadOnlySpan<ulong> x, ulong scalar, Span<ulong> destination)
    {
        ValidateUnary(x, destination);
        RingMultiplyScalarCore(x, scalar, destination);
    }

    /// <summary>Element-wise <c>destination[i] = -x[i] mod 2^64</c>. In place is allowed.</summary>
    /// <param name="x">Operand.</param>
    /// <param name="destination">Result, same length; may be exactly <paramref name="x"/>, must not partially overlap.</param>
    public void RingNegate(ReadOnlySpan<ulong> x, Span<ulong> destination)
    {
        ValidateUnary(x, destination);
        RingNegateCore(x, destination);
    }

    /// <summary>Ring GEMM on validated arguments.</summary>
    /// <param name="a">Left operand, <c>m x k</c>.</param>
    /// <param name="w">Weights, <c>n x k</c>.</param>
    /// <param name="c">Destination, <c>m x n</c>.</param>
    /// <param name="m">Rows of a.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Rows of w.</param>
    protected abstract void RingGemmCore(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> w, Span<ulong> c, int m, int k, int n);

    /// <summary>Float32 GEMM on validated arguments.</summary>
    /// <param name="a">Left operand, <c>m x k</c>.</param>
    /// <param name="w">Weights, <c>n x k</c>.</param>
    /// <param name="c">Destination, <c>m x n</c>.</param>
    /// <param name="m">Rows of a.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Rows of w.</param>
    protected abstract void FloatGemmCore(ReadOnlySpan<float> a, ReadOnlySpan<float> w, Span<float> c, int m, int k, int n);

    /// <summary>Element-wise add on validated arguments.</summary>
    /// <param name="x">First operand.</param>
    /// <param name="y">Second operand.</param>
    /// <param name="destination">Result.</param>
    protected abstract void RingAddCore(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination);

    /// <summary>Element-wise subtract on validated arguments.</summary>
    /// <param name="x">First operand.</param>
    /// <param name="y">Second operand.</param>
    /// <param name="destination">Result.</param>
    protected abstract void RingSubtractCore(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination);

    /// <summary>Element-wise multiply on validated arguments.</summary>
    /// <param name="x">First operand.</param>
    /// <param name="y">Second operand.</param>
    /// <param name="destination">Result.</param>
    protected abstract void RingMultiplyCore(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination);

    /// <summary>Scalar multiply on validated arguments.</summary>
    /// <param name="x">Operand.</param>
    /// <param name="scalar">Ring scalar.</param>
    /// <param name="destination">Result.</param>
    protected abstract void RingMultiplyScalarCore(ReadOnlySpan<ulong> x, ulong scalar, Span<ulong> destination);

    /// <summary>Negate on validated arguments.</summary>
    /// <param name="x">Operand.</param>
    /// <param name="destination">Result.</param>
    protected abstract void RingNegateCore(ReadOnlySpan<ulong> x, Span<ulong> destination);

    /// <inheritdoc />
    public override string ToString() => Name;

    private static void ValidateGemm(int aLength, int wLength, int cLength, int m, int k, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if ((long)m * k != aLength)
        {
            throw new ArgumentException($"GEMM operand 'a' has {aLength} elements but shape [m={m}, k={k}] needs {(long)m * k}.", "a");
        }

        if ((long)n * k != wLength)
        {
            throw new ArgumentException($"GEMM operand 'w' has {wLength} elements but shape [n={n}, k={k}] needs {(long)n * k}.", "w");
        }

        if ((long)m * n != cLength)
        {
            throw new ArgumentException($"GEMM destination 'c' has {cLength} elements but shape [m={m}, n={n}] needs {(long)m * n}.", "c");
        }
    }

    private static void ValidateBinary(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination)
    {
        if (x.Length != y.Length)
        {
            throw new ArgumentException($"Operands differ in length: x has {x.Length} elements, y has {y.Length}.", nameof(y));
        }

        ValidateUnary(x, destination);
        ThrowIfPartialOverlap(y, destination, nameof(y));
    }

    private static void ValidateUnary(ReadOnlySpan<ulong> x, Span<ulong> destination)
    {
        if (destination.Length != x.Length)
        {
            throw new ArgumentException($"Destination has {destination.Length} elements but the operands have {x.Length}.", nameof(destination));
        }

        ThrowIfPartialOverlap(x, destination, nameof(x));
    }

    private static void ThrowIfPartialOverlap(ReadOnlySpan<ulong> input, ReadOnlySpan<ulong> destination, string inputName)
    {
        if (input.Overlaps(destination, out int offset) && offset != 0)
        {
            throw new ArgumentException($"Destination partially overlaps '{inputName}' (offset {offset}); only exact in-place use is allowed.", nameof(destination));
        }
    }

    private static void ThrowIfOverlap<T>(ReadOnlySpan<T> input, ReadOnlySpan<T> destination, string inputName, string destinationName)
    {
        if (input.Overlaps(destination))
        {
            throw new ArgumentException($"GEMM destination '{destinationName}' overlaps input '{inputName}'.", destinationName);
        }
    }
}
