using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using HssEe.Fss;
using HssEe.Randomness;
using HssEe.Sharing;

namespace HssEe.Benchmarks;

/// <summary>
/// The one-bit comparison DCF (the key of the sign, ReLU and comparison gates): batched evaluation of
/// 2^16 keys, one point each, at n = 64, 63, 40, 31, 16 and 15, time per key (<c>OperationsPerInvoke = 65 536</c>;
/// the batch is 11 MiB at n = 16 and 59 MiB at n = 64 per party, so keys stream from L3 or memory),
/// against its AES bound <b>in the same run</b>: <see cref="AesBound"/> pushes exactly the AES blocks one
/// evaluation needs (d + 1 = n - 7 per key for n >= 8) through the 8-way AES-NI loop on the same number of threads,
/// so the Ratio column is (evaluation time) / (bound time) and the fraction of the bound is 1 / Ratio.
/// <c>Threads = 0</c> means all processors. Key generation per pair is reported beside it.
/// </summary>
[Config(typeof(Config))]
public class BitDcfBenchmarks
{
    /// <summary>Keys per batch.</summary>
    public const int Keys = 1 << 16;

    private byte[] _keysA = [];
    private byte[] _keysB = [];
    private ulong[] _alphas = [];
    private ulong[] _points = [];
    private byte[] _outputs = [];
    private Vector128<byte>[][] _blocks = [];
    private AesPrg _prg = null!;

    /// <summary>Input bits n.</summary>
    [Params(64, 63, 40, 31, 16, 15)]
    public int N { get; set; } = 31;

    /// <summary>Threads; 0 means all processors.</summary>
    [Params(0, 1)]
    public int Threads { get; set; }

    /// <summary>
    /// Keys per batch for <see cref="Setup"/>: <see cref="Keys"/> under BenchmarkDotNet (its per-key scaling is the
    /// constant <c>OperationsPerInvoke</c>); <c>--quick-dcf</c> sets other sizes to compare keys read from cache with
    /// keys streamed from memory.
    /// </summary>
    public int BatchKeys { get; set; } = Keys;

    private int Degree => Threads == 0 ? Environment.ProcessorCount : Threads;

    /// <summary>Makes the keys, points and the bound's buffers.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _prg = AesPrg.CreateDeterministicForTesting(new byte[16]);
        ulong mask = N == 64 ? ulong.MaxValue : (1UL << N) - 1;
        _alphas = new ulong[BatchKeys];
        _points = new ulong[BatchKeys];
        _prg.Fill(_alphas);
        _prg.Fill(_points);
        for (int i = 0; i < BatchKeys; i++)
        {
            _alphas[i] &= mask;
            _points[i] &= mask;
        }

        _keysA = new byte[BitDcf.BatchBytes(N, BatchKeys)];
        _keysB = new byte[_keysA.Length];
        _outputs = new byte[BatchKeys];
        BitDcf.Generate(N, _alphas, _prg, _keysA, _keysB);

        // The bound: (d + 1) blocks per key, split over the threads, hashed in 64-block (L1) batches.
        int perThread = checked(BatchKeys * (BitDcf.Depth(N) + 1) / Degree);
        _blocks = new Vector128<byte>[Degree][];
        for (int t = 0; t < Degree; t++)
        {
            _blocks[t] = new Vector128<byte>[64];
        }

        BlocksPerThread = perThread;
    }

    private int BlocksPerThread { get; set; }

    /// <summary>Disposes the PRG.</summary>
    [GlobalCleanup]
    public void Cleanup() => _prg.Dispose();

    /// <summary>The AES bound: the evaluation's AES blocks (fixed-key hash, AES-NI, 8 in flight), per key.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Keys)]
    public void AesBound()
    {
        Parallel.For(0, Degree, new ParallelOptions { MaxDegreeOfParallelism = Degree }, t =>
        {
            Vector128<byte>[] buffer = _blocks[t];
            for (int done = 0; done < BlocksPerThread; done += buffer.Length)
            {
                FixedKeyAes.HashInPlace(buffer);
            }
        });
    }

    /// <summary>One party: key i at point i for 2^16 keys, time per key.</summary>
    [Benchmark(OperationsPerInvoke = Keys)]
    public void Evaluate() => BitDcf.Evaluate(N, Party.A, _keysA, _points, _outputs, Degree);

    /// <summary>Dealer: one key pair, time per pair.</summary>
    [Benchmark(OperationsPerInvoke = Keys)]
    public void KeyGeneration() => BitDcf.Generate(N, _alphas, _prg, _keysA, _keysB);
}
