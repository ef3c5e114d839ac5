using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace HssEe.Compute;

/// <summary>
/// The CPU compute backend: cache-blocked, register-tiled GEMM kernels vectorised with
/// <see cref="Vector512{T}"/> (AVX-512) or <see cref="Vector256{T}"/> (AVX2) with a scalar
/// fallback, multi-threaded over output blocks, and element-wise ring operations on
/// <see cref="TensorPrimitives"/>, split over threads when the operands are large.
/// </summary>
/// <remarks>
/// <para>
/// GEMM follows the BLIS loop nest: A is packed into 8-row micro-panels, W (the
/// <c>[n, k]</c> weights) is transposed into k-major micro-panels of 48 float or 24 ring
/// columns just before use, and a register tile of 8 x 48 floats (24 FMA accumulators) or
/// 8 x 24 ring elements (24 <c>vpmullq</c> + <c>vpaddq</c> accumulators) sweeps them. One to
/// three rows of A take a dot-product path that streams W once without packing.
/// </para>
/// <para>
/// Ring results are bit-identical to the naive loop on every instruction set: ring
/// arithmetic wraps modulo 2^64 and is associative, so the blocking and the summation order
/// do not change the result. Float32 results differ from a naive loop only by summation
/// order (the kernels use fused multiply-add where the hardware has it). Neither depends on
/// the thread count: every output element is summed in the same order however the work is split.
/// </para>
/// <para>
/// An instance holds no mutable state; its methods may be called concurrently from several
/// threads. Packing buffers are kept per thread between calls.
/// </para>
/// </remarks>
public sealed class CpuBackend : ComputeBackend
{
    /// <summary>Elements per thread below which element-wise operations stay on the calling thread.</summary>
    private const int ElementwiseChunk = 1 << 17;

    private readonly int _maxDegreeOfParallelism;
    private readonly string _name;

    /// <summary>Creates a CPU backend.</summary>
    /// <param name="maxDegreeOfParallelism">
    /// The most threads one call uses; <c>-1</c> (the default) uses
    /// <see cref="Environment.ProcessorCount"/>, <c>1</c> runs on the calling thread only.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxDegreeOfParallelism"/> is 0 or less than -1.</exception>
    public CpuBackend(int maxDegreeOfParallelism = -1)
    {
        if (maxDegreeOfParallelism == -1)
        {
            maxDegreeOfParallelism = Environment.ProcessorCount;
        }
        else if (maxDegreeOfParallelism < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxDegreeOfParallelism), maxDegreeOfParallelism, "Must be -1 (all processors) or at least 1.");
        }

        _maxDegreeOfParallelism = maxDegreeOfParallelism;
        _name = $"cpu({InstructionSet}, {maxDegreeOfParallelism} {(maxDegreeOfParallelism == 1 ? "thread" : "threads")})";
    }

    /// <summary>The shared default instance (all processors), returned by <see cref="ComputeBackend.Cpu"/>.</summary>
    internal static CpuBackend Shared { get; } = new();

    /// <summary>The most threads one call of this backend uses.</summary>
    public int MaxDegreeOfParallelism => _maxDegreeOfParallelism;

    /// <summary>
    /// The vector width the GEMM kernels run with in this process: <c>avx512</c>, <c>avx2</c>
    /// or <c>scalar</c> on x86 (<c>vector512</c>, <c>vector256</c> or <c>scalar</c> elsewhere).
    /// Element-wise operations additionally use 128-bit vectors where only those are accelerated.
    /// </summary>
    public static string InstructionSet => GemmDispatch.Current switch
    {
        GemmIsa.Vector512 => X86Base.IsSupported ? "avx512" : "vector512",
        GemmIsa.Vector256 => X86Base.IsSupported ? "avx2" : "vector256",
        _ => "scalar",
    };

    /// <inheritdoc />
    public override string Name => _name;

    /// <inheritdoc />
    protected override void RingGemmCore(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> w, Span<ulong> c, int m, int k, int n)
        => RingGemmKernels.Run(a, w, c, m, k, n, _maxDegreeOfParallelism);

    /// <inheritdoc />
    protected override void FloatGemmCore(ReadOnlySpan<float> a, ReadOnlySpan<float> w, Span<float> c, int m, int k, int n)
        => FloatGemmKernels.Run(a, w, c, m, k, n, _maxDegreeOfParallelism);

    /// <inheritdoc />
    protected override void RingAddCore(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination)
        => Elementwise(ElementwiseOp.Add, x, y, 0, destination);

    /// <inheritdoc />
    protected override void RingSubtractCore(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination)
        => Elementwise(ElementwiseOp.Subtract, x, y, 0, destination);

    /// <inheritdoc />
    protected override void RingMultiplyCore(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination)
        => Elementwise(ElementwiseOp.Multiply, x, y, 0, destination);

    /// <inheritdoc />
    protected override void RingMultiplyScalarCore(ReadOnlySpan<ulong> x, ulong scalar, Span<ulong> destination)
        => Elementwise(ElementwiseOp.MultiplyScalar, x, x, scalar, destination);

    /// <inheritdoc />
    protected override void RingNegateCore(ReadOnlySpan<ulong> x, Span<ulong> destination)
        => Elementwise(ElementwiseOp.Negate, x, x, 0, destination);

    /// <summary>One element-wise operation on <see cref="TensorPrimitives"/> (which wraps for <see cref="ulong"/>).</summary>
    private static void Apply(ElementwiseOp op, ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, ulong scalar, Span<ulong> destination)
    {
        switch (op)
        {
            case ElementwiseOp.Add:
                TensorPrimitives.Add(x, y, destination);
                break;
            case ElementwiseOp.Subtract:
                TensorPrimitives.Subtract(x, y, destination);
                break;
            case ElementwiseOp.Multiply:
                TensorPrimitives.Multiply(x, y, destination);
                break;
            case ElementwiseOp.MultiplyScalar:
                TensorPrimitives.Multiply(x, scalar, destination);
                break;
            default:
                TensorPrimitives.Negate(x, destination);
                break;
        }
    }

    /// <summary>
    /// Runs an element-wise operation, split into contiguous chunks over several threads when
    /// the operands are large (the loops are memory-bound, and a second core adds bandwidth).
    /// Chunks are disjoint, so exact in-place use stays correct.
    /// </summary>
    private unsafe void Elementwise(ElementwiseOp op, ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, ulong scalar, Span<ulong> destination)
    {
        int length = destination.Length;
        int chunks = (int)Math.Min(_maxDegreeOfParallelism, length / ElementwiseChunk);
        if (chunks < 2)
        {
            Apply(op, x, y, scalar, destination);
            return;
        }

        fixed (ulong* px = x)
        fixed (ulong* py = y)
        fixed (ulong* pd = destination)
        {
            ElementwiseParallel(op, (nint)px, (nint)py, scalar, (nint)pd, length, chunks);
        }
    }

    /// <summary>The element-wise operation over <paramref name="chunks"/> threads (a separate method, so the one-thread path allocates no closure).</summary>
    private static unsafe void ElementwiseParallel(ElementwiseOp op, nint x, nint y, ulong scalar, nint destination, int length, int chunks)
        => Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, chunk =>
        {
            // Boundaries on 8-element (64-byte) multiples.
            int start = (int)((long)length * chunk / chunks) & ~7;
            int end = chunk == chunks - 1 ? length : (int)((long)length * (chunk + 1) / chunks) & ~7;
            int count = end - start;
            Apply(
                op,
                new ReadOnlySpan<ulong>((ulong*)x + start, count),
                new ReadOnlySpan<ulong>((ulong*)y + start, count),
                scalar,
                new Span<ulong>((ulong*)destination + start, count));
        });

    private enum ElementwiseOp
    {
        Add,
        Subtract,
        Multiply,
        MultiplyScalar,
        Negate,
    }
}
