using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using HssEe.Compute;

namespace HssEe.Benchmarks;

/// <summary>
/// Ring GEMM (Z_2^64, public weights times a shared activation) against float32 GEMM (the
/// baseline, so the Ratio column reads "ring time / float time") at the shapes of a LLaMA-7B
/// linear layer: one token (GEMV), 32 tokens, and 128 tokens through the 4096 -> 11008 MLP
/// projection. <c>Threads = 0</c> means all processors.
/// </summary>
[Config(typeof(Config))]
[GflopsColumn]
public class GemmBenchmarks
{
    private float[] _af = [];
    private float[] _wf = [];
    private float[] _cf = [];
    private ulong[] _a = [];
    private ulong[] _w = [];
    private ulong[] _c = [];
    private CpuBackend _backend = null!;
    private int _m;
    private int _k;
    private int _n;

    /// <summary>The shape, <c>M x K x N</c> (C is M x N, W is N x K).</summary>
    [Params("1x4096x4096", "32x4096x4096", "128x4096x11008")]
    public string Shape { get; set; } = "1x4096x4096";

    /// <summary>Threads of the backend; 0 means all processors.</summary>
    [Params(0, 1)]
    public int Threads { get; set; }

    /// <summary>Operations of one benchmark invocation: <c>2 M K N</c>.</summary>
    /// <param name="benchmarkCase">The case.</param>
    /// <returns>Operations.</returns>
    public static double FlopsPerOperation(BenchmarkCase benchmarkCase)
    {
        ArgumentNullException.ThrowIfNull(benchmarkCase);
        (int m, int k, int n) = ParseShape((string)benchmarkCase.Parameters["Shape"]);
        return 2.0 * m * k * n;
    }

    /// <summary>Parses <c>M x K x N</c>.</summary>
    /// <param name="shape">The text.</param>
    /// <returns>The dimensions.</returns>
    public static (int M, int K, int N) ParseShape(string shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        string[] parts = shape.Split('x');
        return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture), int.Parse(parts[2], CultureInfo.InvariantCulture));
    }

    /// <summary>Allocates random operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        (_m, _k, _n) = ParseShape(Shape);
        _backend = new CpuBackend(Threads == 0 ? -1 : Threads);
        var random = new Random(42);
        _af = RandomFloats(random, _m * _k);
        _wf = RandomFloats(random, _n * _k);
        _cf = new float[_m * _n];
        _a = RandomRing(random, _m * _k);
        _w = RandomRing(random, _n * _k);
        _c = new ulong[_m * _n];
    }

    /// <summary>Float32 GEMM (Plain / EE modes).</summary>
    [Benchmark(Baseline = true)]
    public void FloatGemm() => _backend.FloatGemm(_af, _wf, _cf, _m, _k, _n);

    /// <summary>Ring GEMM over Z_2^64 with full 64-bit operands (HSS-EE mode, one party).</summary>
    [Benchmark]
    public void RingGemm() => _backend.RingGemm(_a, _w, _c, _m, _k, _n);

    internal static float[] RandomFloats(Random random, int length)
    {
        var values = new float[length];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (random.NextSingle() * 2) - 1;
        }

        return values;
    }

    internal static ulong[] RandomRing(Random random, int length)
    {
        var values = new ulong[length];
        random.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}
