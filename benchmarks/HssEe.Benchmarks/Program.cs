using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Running;
using HssEe.Compute;

namespace HssEe.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release -- [--short|--standard|--dry] [BenchmarkDotNet arguments]</c>,
/// e.g. <c>--filter *Gemm*</c>. <c>--short</c> (the default) and <c>--standard</c> pick the job
/// of <see cref="Config"/>; <c>--dry</c> runs every benchmark once to check that it runs.
/// <c>--quick</c> skips BenchmarkDotNet and times the FMA peak and the GEMM shapes with a
/// stopwatch (best of a few runs), for tuning. <c>--quick-dcf [repetitions] [keys]</c> measures the comparison DCF
/// and its AES bound alternately in one process (see <see cref="QuickDcf"/>).
/// </summary>
public static class Program
{
    /// <summary>Runs the benchmarks.</summary>
    /// <param name="args">Command line.</param>
    public static void Main(string[] args)
    {
        var rest = new List<string>();
        bool quick = false;
        bool quickDcf = false;
        foreach (string arg in args)
        {
            switch (arg)
            {
                case "--quick":
                    quick = true;
                    break;
                case "--quick-dcf":
                    quickDcf = true;
                    break;
                case "--short":
                    Config.JobKind = "short";
                    break;
                case "--standard":
                    Config.JobKind = "standard";
                    break;
                case "--dry":
                    Config.JobKind = "dry";
                    break;
                default:
                    rest.Add(arg);
                    break;
            }
        }

        if (quickDcf)
        {
            QuickDcf(
                rest.Count > 0 ? int.Parse(rest[0], CultureInfo.InvariantCulture) : 40,
                rest.Count > 1 ? int.Parse(rest[1], CultureInfo.InvariantCulture) : BitDcfBenchmarks.Keys);
            return;
        }

        if (quick)
        {
            Quick(rest.Count > 0 ? int.Parse(rest[0], CultureInfo.InvariantCulture) : 5);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run([.. rest]);
    }

    /// <summary>Stopwatch timings: FMA peak, then float and ring GEMM at the benchmark shapes on 1 and all threads.</summary>
    private static void Quick(int repetitions)
    {
        Console.WriteLine($"{ComputeBackend.Cpu.Name}, {Environment.ProcessorCount} processors, best of {repetitions}");
        int threads = Environment.ProcessorCount;
        PrintPeak("Vector512 FMA, 1 thread", () => FmaPeakBenchmarks.Fma512(FmaPeakBenchmarks.Iterations), nameof(FmaPeakBenchmarks.Vector512Fma1Thread), repetitions);
        PrintPeak($"Vector512 FMA, {threads} threads", () => new FmaPeakBenchmarks().Vector512FmaAllThreads(), nameof(FmaPeakBenchmarks.Vector512FmaAllThreads), repetitions);
        PrintPeak("Vector256 FMA, 1 thread", () => FmaPeakBenchmarks.Fma256(FmaPeakBenchmarks.Iterations), nameof(FmaPeakBenchmarks.Vector256Fma1Thread), repetitions);
        PrintPeak("Vector512 ulong mul+add, 1 thread", () => FmaPeakBenchmarks.RingMulAdd512(FmaPeakBenchmarks.Iterations), nameof(FmaPeakBenchmarks.RingMulAdd512_1Thread), repetitions);
        PrintPeak($"Vector512 ulong mul+add, {threads} threads", () => new FmaPeakBenchmarks().RingMulAdd512AllThreads(), nameof(FmaPeakBenchmarks.RingMulAdd512AllThreads), repetitions);

        foreach (string shape in new[] { "1x4096x4096", "32x4096x4096", "128x4096x11008" })
        {
            (int m, int k, int n) = GemmBenchmarks.ParseShape(shape);
            var random = new Random(42);
            float[] af = GemmBenchmarks.RandomFloats(random, m * k);
            float[] wf = GemmBenchmarks.RandomFloats(random, n * k);
            var cf = new float[m * n];
            ulong[] a = GemmBenchmarks.RandomRing(random, m * k);
            ulong[] w = GemmBenchmarks.RandomRing(random, n * k);
            var c = new ulong[m * n];
            foreach (int t in threads == 1 ? new[] { 1 } : new[] { 1, threads })
            {
                var backend = new CpuBackend(t);
                double floatMs = Best(() => backend.FloatGemm(af, wf, cf, m, k, n), repetitions);
                double ringMs = Best(() => backend.RingGemm(a, w, c, m, k, n), repetitions);
                double ops = 2.0 * m * k * n;
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{shape,-15} {t} thread(s): float {floatMs,8:F2} ms {ops / floatMs / 1e6,7:F1} GFLOP/s | ring {ringMs,8:F2} ms {ops / ringMs / 1e6,7:F1} Gop/s | ring/float {ringMs / floatMs:F2}"));
            }
        }
    }

    /// <summary>
    /// The comparison DCF against its AES bound with the two measured alternately (bound, evaluation,
    /// bound, ...) in one process, so that both see the same machine: on a shared VM, BenchmarkDotNet's
    /// case-after-case order lets a slow minute land on one side of the ratio only. Prints the minima and
    /// the medians of each side and the fraction of the bound at both.
    /// </summary>
    private static void QuickDcf(int repetitions, int keys)
    {
        if (repetitions < 1 || keys < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(keys), $"--quick-dcf [repetitions] [keys]: both must be positive (got {repetitions} and {keys}).");
        }

        Console.WriteLine($"Comparison DCF, {keys} keys, one point each; bound and evaluation alternate, {repetitions} repetitions each");
        Console.WriteLine("   n  threads | bound ns/key (min / median) | evaluation ns/key (min / median) | % of bound (min / median)");
        foreach (int n in new[] { 64, 40, 16 })
        {
            foreach (int threads in new[] { 1, Environment.ProcessorCount })
            {
                var bench = new BitDcfBenchmarks { N = n, Threads = threads, BatchKeys = keys };
                bench.Setup();
                try
                {
                    bench.AesBound();
                    bench.Evaluate();
                    var bound = new List<double>();
                    var evaluation = new List<double>();
                    for (int i = 0; i < repetitions; i++)
                    {
                        long start = Stopwatch.GetTimestamp();
                        bench.AesBound();
                        bound.Add(Stopwatch.GetElapsedTime(start).TotalNanoseconds / keys);
                        start = Stopwatch.GetTimestamp();
                        bench.Evaluate();
                        evaluation.Add(Stopwatch.GetElapsedTime(start).TotalNanoseconds / keys);
                    }

                    bound.Sort();
                    evaluation.Sort();
                    double bMin = bound[0], bMed = bound[repetitions / 2], eMin = evaluation[0], eMed = evaluation[repetitions / 2];
                    Console.WriteLine(string.Create(
                        CultureInfo.InvariantCulture,
                        $"{n,4} {threads,8} | {bMin,12:F2} / {bMed,6:F2}        | {eMin,15:F2} / {eMed,6:F2}         | {100 * bMin / eMin,5:F1}% / {100 * bMed / eMed,5:F1}%"));
                }
                finally
                {
                    bench.Cleanup();
                }
            }
        }
    }

    private static void PrintPeak(string label, Func<float> run, string method, int repetitions)
    {
        double ms = Best(() => run(), repetitions);
        double gflops = FmaPeakBenchmarks.FlopsPerOperation(method) / ms / 1e6;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label,-36} {gflops,7:F1} GFLOP/s"));
    }

    private static double Best(Action action, int repetitions)
    {
        action();
        double best = double.MaxValue;
        for (int i = 0; i < repetitions; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        return best;
    }
}
