using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace HssEe.Compute;

/// <summary>
/// The CPU compute backend: cache-blocked, register-tiled GEMM kernels vectorised with
/// <see cref="Vector512{T}"/> (AVX-512) or <see cref="Vector256{T}"/> (AVX2) with a scalar
/// fallback, multi-threaded over output blocks, and element-wise ring operations on
/// <see cref="TensorPrimitives"/>.
/// </summary>
/// <remarks>
/// <para>
/// Ring results are bit-identical to the naive loop on every instruction set: ring
/// arithmetic wraps modulo 2^64 and is associative, so the blocking and the summation order
/// do not change the result. Float32 results differ from a naive loop only by summation
/// order (the kernels use fused multiply-add where the hardware has it).
/// </para>
/// <para>
/// An instance holds no mutable state; its methods may be called concurrently from several
/// threads. Work buffers are allocated per call.
/// </para>
/// </remarks>
public sealed class CpuBackend : ComputeBackend
{
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
        => TensorPrimitives.Add(x, y, destination);

    /// <inheritdoc />
    protected override void RingSubtractCore(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination)
        => TensorPrimitives.Subtract(x, y, destination);

    /// <inheritdoc />
    protected override void RingMultiplyCore(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y, Span<ulong> destination)
        => TensorPrimitives.Multiply(x, y, destination);

    /// <inheritdoc />
    protected override void RingMultiplyScalarCore(ReadOnlySpan<ulong> x, ulong scalar, Span<ulong> destination)
        => TensorPrimitives.Multiply(x, scalar, destination);

    /// <inheritdoc />
    protected override void RingNegateCore(ReadOnlySpan<ulong> x, Span<ulong> destination)
        => TensorPrimitives.Negate(x, destination);
}
