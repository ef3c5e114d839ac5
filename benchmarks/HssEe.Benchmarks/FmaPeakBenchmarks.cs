using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;

namespace HssEe.Benchmarks;

/// <summary>
/// The FMA peak of this machine: many independent fused multiply-add chains held in
/// registers (no memory traffic), on one thread and on all threads. Also the ring
/// counterpart: independent 64-bit multiply + add chains (<c>vpmullq</c> + <c>vpaddq</c> on
/// AVX-512), the bound of the ring GEMM kernel. A multiply-add counts as 2 operations per lane.
/// </summary>
[Config(typeof(Config))]
[GflopsColumn]
public class FmaPeakBenchmarks
{
    /// <summary>Loop iterations per chain and invocation (about 10 ms on one thread of a 4 GHz AVX-512 core).</summary>
    public const int Iterations = 1 << 22;

    /// <summary>Independent Vector512 chains (needs 32 vector registers, which AVX-512 has).</summary>
    public const int Chains512 = 24;

    /// <summary>Independent Vector256 chains (fits the 16 registers of AVX2).</summary>
    public const int Chains256 = 12;

    /// <summary>Independent ring chains (each needs a temporary register).</summary>
    public const int RingChains512 = 12;

    /// <summary>Processors used by the all-threads benchmarks.</summary>
    public static int ProcessorCount => Environment.ProcessorCount;

    /// <summary>Operations of one invocation.</summary>
    /// <param name="benchmarkCase">The case.</param>
    /// <returns>Operations.</returns>
    public static double FlopsPerOperation(BenchmarkCase benchmarkCase)
    {
        ArgumentNullException.ThrowIfNull(benchmarkCase);
        return FlopsPerOperation(benchmarkCase.Descriptor.WorkloadMethod.Name);
    }

    /// <summary>Operations of one invocation of the named benchmark method.</summary>
    /// <param name="method">Method name.</param>
    /// <returns>Operations.</returns>
    public static double FlopsPerOperation(string method) => method switch
    {
        nameof(Vector512Fma1Thread) => 2.0 * Iterations * Chains512 * Vector512<float>.Count,
        nameof(Vector512FmaAllThreads) => 2.0 * Iterations * Chains512 * Vector512<float>.Count * ProcessorCount,
        nameof(Vector256Fma1Thread) => 2.0 * Iterations * Chains256 * Vector256<float>.Count,
        nameof(Vector256FmaAllThreads) => 2.0 * Iterations * Chains256 * Vector256<float>.Count * ProcessorCount,
        nameof(RingMulAdd512_1Thread) => 2.0 * Iterations * RingChains512 * Vector512<ulong>.Count,
        nameof(RingMulAdd512AllThreads) => 2.0 * Iterations * RingChains512 * Vector512<ulong>.Count * ProcessorCount,
        _ => double.NaN,
    };

    /// <summary>Vector512 FMA, one thread.</summary>
    /// <returns>A sum, so the work is not dead code.</returns>
    [Benchmark]
    public float Vector512Fma1Thread() => Fma512(Iterations);

    /// <summary>Vector512 FMA, all threads.</summary>
    /// <returns>A sum.</returns>
    [Benchmark]
    public float Vector512FmaAllThreads() => OnAllThreads(Fma512);

    /// <summary>Vector256 FMA, one thread.</summary>
    /// <returns>A sum.</returns>
    [Benchmark]
    public float Vector256Fma1Thread() => Fma256(Iterations);

    /// <summary>Vector256 FMA, all threads.</summary>
    /// <returns>A sum.</returns>
    [Benchmark]
    public float Vector256FmaAllThreads() => OnAllThreads(Fma256);

    /// <summary>Vector512 ulong multiply + add, one thread.</summary>
    /// <returns>A sum.</returns>
    [Benchmark]
    public float RingMulAdd512_1Thread() => RingMulAdd512(Iterations);

    /// <summary>Vector512 ulong multiply + add, all threads.</summary>
    /// <returns>A sum.</returns>
    [Benchmark]
    public float RingMulAdd512AllThreads() => OnAllThreads(RingMulAdd512);

    private static float OnAllThreads(Func<int, float> kernel)
    {
        int threads = ProcessorCount;
        var results = new float[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => results[t] = kernel(Iterations));
        return results.Sum();
    }

    /// <summary>24 independent Vector512 FMA chains.</summary>
    /// <param name="iterations">Loop iterations.</param>
    /// <returns>The sum of the chains.</returns>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static float Fma512(int iterations)
    {
        Vector512<float> m = Vector512.Create(0.99999994f);
        Vector512<float> a = Vector512.Create(1e-3f);
        Vector512<float> c0 = Vector512.Create(1f), c1 = c0 + c0, c2 = c1 + c0, c3 = c2 + c0, c4 = c3 + c0, c5 = c4 + c0;
        Vector512<float> c6 = c5 + c0, c7 = c6 + c0, c8 = c7 + c0, c9 = c8 + c0, c10 = c9 + c0, c11 = c10 + c0;
        Vector512<float> d0 = c0 * a, d1 = c1 * a, d2 = c2 * a, d3 = c3 * a, d4 = c4 * a, d5 = c5 * a;
        Vector512<float> d6 = c6 * a, d7 = c7 * a, d8 = c8 * a, d9 = c9 * a, d10 = c10 * a, d11 = c11 * a;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a);
            c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a);
            c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a);
            c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a);
            c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a);
            c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a);
            c11 = Vector512.FusedMultiplyAdd(c11, m, a);
            d0 = Vector512.FusedMultiplyAdd(d0, m, a);
            d1 = Vector512.FusedMultiplyAdd(d1, m, a);
            d2 = Vector512.FusedMultiplyAdd(d2, m, a);
            d3 = Vector512.FusedMultiplyAdd(d3, m, a);
            d4 = Vector512.FusedMultiplyAdd(d4, m, a);
            d5 = Vector512.FusedMultiplyAdd(d5, m, a);
            d6 = Vector512.FusedMultiplyAdd(d6, m, a);
            d7 = Vector512.FusedMultiplyAdd(d7, m, a);
            d8 = Vector512.FusedMultiplyAdd(d8, m, a);
            d9 = Vector512.FusedMultiplyAdd(d9, m, a);
            d10 = Vector512.FusedMultiplyAdd(d10, m, a);
            d11 = Vector512.FusedMultiplyAdd(d11, m, a);
        }

        Vector512<float> s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
        s += d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8 + d9 + d10 + d11;
        return Vector512.Sum(s);
    }

    /// <summary>12 independent Vector256 FMA chains.</summary>
    /// <param name="iterations">Loop iterations.</param>
    /// <returns>The sum of the chains.</returns>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static float Fma256(int iterations)
    {
        Vector256<float> m = Vector256.Create(0.99999994f);
        Vector256<float> a = Vector256.Create(1e-3f);
        Vector256<float> c0 = Vector256.Create(1f), c1 = c0 + c0, c2 = c1 + c0, c3 = c2 + c0, c4 = c3 + c0, c5 = c4 + c0;
        Vector256<float> c6 = c5 + c0, c7 = c6 + c0, c8 = c7 + c0, c9 = c8 + c0, c10 = c9 + c0, c11 = c10 + c0;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, a);
            c1 = Vector256.FusedMultiplyAdd(c1, m, a);
            c2 = Vector256.FusedMultiplyAdd(c2, m, a);
            c3 = Vector256.FusedMultiplyAdd(c3, m, a);
            c4 = Vector256.FusedMultiplyAdd(c4, m, a);
            c5 = Vector256.FusedMultiplyAdd(c5, m, a);
            c6 = Vector256.FusedMultiplyAdd(c6, m, a);
            c7 = Vector256.FusedMultiplyAdd(c7, m, a);
            c8 = Vector256.FusedMultiplyAdd(c8, m, a);
            c9 = Vector256.FusedMultiplyAdd(c9, m, a);
            c10 = Vector256.FusedMultiplyAdd(c10, m, a);
            c11 = Vector256.FusedMultiplyAdd(c11, m, a);
        }

        Vector256<float> s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
        return Vector256.Sum(s);
    }

    /// <summary>12 independent Vector512 ulong multiply-add chains (<c>c = c + c * m</c>).</summary>
    /// <param name="iterations">Loop iterations.</param>
    /// <returns>A value derived from the chains.</returns>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static float RingMulAdd512(int iterations)
    {
        Vector512<ulong> m = Vector512.Create(0x9E3779B97F4A7C15UL);
        Vector512<ulong> c0 = Vector512.Create(1UL), c1 = c0 + c0, c2 = c1 + c0, c3 = c2 + c0, c4 = c3 + c0, c5 = c4 + c0;
        Vector512<ulong> c6 = c5 + c0, c7 = c6 + c0, c8 = c7 + c0, c9 = c8 + c0, c10 = c9 + c0, c11 = c10 + c0;
        for (int i = 0; i < iterations; i++)
        {
            c0 += c0 * m;
            c1 += c1 * m;
            c2 += c2 * m;
            c3 += c3 * m;
            c4 += c4 * m;
            c5 += c5 * m;
            c6 += c6 * m;
            c7 += c7 * m;
            c8 += c8 * m;
            c9 += c9 * m;
            c10 += c10 * m;
            c11 += c11 * m;
        }

        Vector512<ulong> s = c0 ^ c1 ^ c2 ^ c3 ^ c4 ^ c5 ^ c6 ^ c7 ^ c8 ^ c9 ^ c10 ^ c11;
        return Vector512.Sum(s) >> 40;
    }
}
