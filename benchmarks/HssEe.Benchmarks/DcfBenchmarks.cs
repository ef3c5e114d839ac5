using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using HssEe.Fss;
using HssEe.Randomness;

namespace HssEe.Benchmarks;

/// <summary>
/// DCF key generation and batched evaluation of 2^16 keys (m = 1, ell = 64) at n = 64, 40 and 16;
/// the reported time is per key (<c>OperationsPerInvoke = 65 536</c>). <c>Threads = 0</c> means all processors.
/// </summary>
/// <remarks>
/// AES blocks (fixed-key MMO hashes) per operation, from <see cref="Dcf.AesBlocksPerEvaluation"/> and
/// <see cref="Dcf.AesBlocksPerKeyGeneration"/>: evaluation 2n (128 / 80 / 32 at n = 64 / 40 / 16: one block
/// for the chosen child seed and one payload block per level), key generation 6n per key pair (384 / 240 / 96).
/// The AES bound of an evaluation is (AES-NI blocks/s of <see cref="AesPrgBenchmarks.AesNiEncrypt"/>) / 2n;
/// the target is at least 70 % of it. <see cref="Quick"/> prints the same figures with a stopwatch.
/// </remarks>
[Config(typeof(Config))]
public class DcfBenchmarks
{
    /// <summary>Keys per batch.</summary>
    public const int Keys = 1 << 16;

    private AesPrg _prg = null!;
    private ulong[] _alphas = [];
    private ulong[] _points = [];
    private ulong[] _outputs = [];
    private DcfKeyCollection _keysA = null!;
    private DcfKeyCollection _keysB = null!;
    private FssKeyParameters _parameters;

    /// <summary>Input bits n.</summary>
    [Params(64, 40, 16)]
    public int N { get; set; } = 64;

    /// <summary>Threads; 0 means all processors.</summary>
    [Params(0, 1)]
    public int Threads { get; set; }

    private int Degree => Threads == 0 ? -1 : Threads;

    /// <summary>Generates the keys and points.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _parameters = new FssKeyParameters(N, 64, 1);
        _prg = AesPrg.CreateDeterministicForTesting(new byte[16]);
        _alphas = RandomPoints(_prg, Keys, N);
        _points = RandomPoints(_prg, Keys, N);
        _outputs = new ulong[Keys];
        (_keysA, _keysB) = Dcf.GenerateBatch(_parameters, _alphas, [1UL], _prg);
    }

    /// <summary>Disposes the keys.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _keysA.Dispose();
        _keysB.Dispose();
        _prg.Dispose();
    }

    /// <summary>Dealer: one key pair (both parties' keys), time per pair.</summary>
    [Benchmark(OperationsPerInvoke = Keys)]
    public void KeyGeneration()
    {
        (DcfKeyCollection a, DcfKeyCollection b) = Dcf.GenerateBatch(_parameters, _alphas, [1UL], _prg, Degree);
        a.Dispose();
        b.Dispose();
    }

    /// <summary>One party: evaluate key i at point i for 2^16 keys, time per key.</summary>
    [Benchmark(OperationsPerInvoke = Keys)]
    public void EvaluateBatch() => Dcf.EvaluateBatch(_keysA, _points, _outputs, Degree);

    /// <summary>
    /// Stopwatch harness (best of <paramref name="repetitions"/>): AES-NI blocks/s (raw encryption and the
    /// fixed-key hash), then DCF key generation and batched evaluation of 2^16 keys at n = 64, 40, 16 on one and
    /// all threads: keys/s, ns/key, AES blocks/key and the fraction of the AES bound.
    /// </summary>
    /// <param name="output">Where to print.</param>
    /// <param name="repetitions">Timed runs per figure.</param>
    public static void Quick(TextWriter output, int repetitions = 5)
    {
        ArgumentNullException.ThrowIfNull(output);
        int threads = Environment.ProcessorCount;
        var blocks = new Vector128<byte>[Keys];
        using var aes = new AesCore(FixedKeyAes.Key());
        Vector128<byte>[] small = new Vector128<byte>[64];

        // Warm up so that tiered compilation has promoted the AES loops before anything is timed.
        for (int round = 0; round < 3; round++)
        {
            long until = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 5);
            while (Stopwatch.GetTimestamp() < until)
            {
                aes.EncryptInPlace(small);
                FixedKeyAes.HashInPlace(small);
            }

            Thread.Sleep(150);
        }

        double aesMs = Best(() => aes.EncryptInPlace(blocks), repetitions * 4);
        double hashMs = Best(() => FixedKeyAes.HashInPlace(blocks), repetitions * 4);
        double aesL1Ms = Best(() => { for (int r = 0; r < Keys / 64; r++) { aes.EncryptInPlace(small); } }, repetitions * 4);
        double hashL1Ms = Best(() => { for (int r = 0; r < Keys / 64; r++) { FixedKeyAes.HashInPlace(small); } }, repetitions * 4);
        double aesRate = Keys / aesMs * 1e3;
        output.WriteLine(Invariant($"{Environment.ProcessorCount} processors, AES-NI {FixedKeyAes.UsesAesNi}; best of {repetitions}"));
        output.WriteLine(Invariant($"AES-NI encrypt, 1 MiB buffer (AesPrgBenchmarks.AesNiEncrypt, the bound used below): {aesRate / 1e6:F1} M blocks/s ({aesMs * 1e6 / Keys:F2} ns/block); fixed-key hash: {Keys / hashMs / 1e3:F1} M blocks/s"));
        output.WriteLine(Invariant($"AES-NI encrypt, 64-block buffer in L1: {Keys / aesL1Ms / 1e3:F1} M blocks/s ({aesL1Ms * 1e6 / Keys:F2} ns/block); fixed-key hash: {Keys / hashL1Ms / 1e3:F1} M blocks/s ({hashL1Ms * 1e6 / Keys:F2} ns/block)"));
        using AesPrg prg = AesPrg.CreateDeterministicForTesting(new byte[16]);
        foreach (int n in new[] { 64, 40, 16 })
        {
            var p = new FssKeyParameters(n, 64, 1);
            ulong[] alphas = RandomPoints(prg, Keys, n);
            ulong[] points = RandomPoints(prg, Keys, n);
            var outputs = new ulong[Keys];
            int evalBlocks = Dcf.AesBlocksPerEvaluation(p);
            int genBlocks = Dcf.AesBlocksPerKeyGeneration(p);
            (DcfKeyCollection a, DcfKeyCollection b) = Dcf.GenerateBatch(p, alphas, [1UL], prg);
            using (a)
            using (b)
            {
                foreach (int t in threads == 1 ? new[] { 1 } : new[] { 1, threads })
                {
                    double genMs = Best(
                        () =>
                        {
                            (DcfKeyCollection x, DcfKeyCollection y) = Dcf.GenerateBatch(p, alphas, [1UL], prg, t);
                            x.Dispose();
                            y.Dispose();
                        },
                        repetitions);
                    double evalMs = Best(() => Dcf.EvaluateBatch(a, points, outputs, t), repetitions);
                    double bound = aesRate * t / evalBlocks;
                    double evalRate = Keys / evalMs * 1e3;
                    output.WriteLine(Invariant(
                        $"n={n,2} {t} thread(s): keygen {Keys / genMs * 1e3 / 1e6,6:F3} M pairs/s ({genMs * 1e6 / Keys,7:F0} ns/pair, {genBlocks} blocks/pair, {(double)Keys * genBlocks / genMs * 1e3 / (aesRate * t) * 100,5:F1}% of AES) | eval {evalRate / 1e6,6:F3} M keys/s ({evalMs * 1e6 / Keys,6:F0} ns/key, {evalBlocks} blocks/key, {evalRate / bound * 100,5:F1}% of AES bound {bound / 1e6:F3} M keys/s)"));
                }
            }
        }
    }

    private static ulong[] RandomPoints(AesPrg prg, int count, int n)
    {
        var values = new ulong[count];
        prg.Fill(values);
        ulong mask = n == 64 ? ulong.MaxValue : (1UL << n) - 1;
        for (int i = 0; i < count; i++)
        {
            values[i] &= mask;
        }

        return values;
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

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
