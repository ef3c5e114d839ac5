using BenchmarkDotNet.Attributes;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Benchmarks;

/// <summary>Split and reconstruct throughput. Bytes per operation = 8 x Elements (one ring element = 8 bytes).</summary>
[Config(typeof(Config))]
public class SharingBenchmarks
{
    private RingTensor _secret = null!;
    private Share _a = null!;
    private Share _b = null!;

    /// <summary>Number of ring elements shared.</summary>
    [Params(1 << 20, 1 << 24)]
    public int Elements { get; set; }

    /// <summary>Prepares a secret and its shares.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _secret = new RingTensor(new TensorShape(Elements));
        (_a, _b) = SecretSharing.Split(_secret, 12);
    }

    /// <summary>Client split (fresh RandomNumberGenerator-seeded PRG for share A, B = x - A).</summary>
    /// <returns>The shares.</returns>
    [Benchmark]
    public (Share, Share) Split() => SecretSharing.Split(_secret, 12);

    /// <summary>Client reconstruct (A + B).</summary>
    /// <returns>The secret.</returns>
    [Benchmark]
    public RingTensor Reconstruct() => SecretSharing.Reconstruct(_a, _b);
}
