using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using HssEe.Randomness;

namespace HssEe.Benchmarks;

/// <summary>
/// The AES bound of this machine and the PRG built on it. One operation = 65 536 blocks
/// (1 MiB), so blocks/s = 65 536 / mean time. Raw AES-NI encryption is the bound that the
/// fixed-key hash, the PRG and (later) DPF/DCF evaluation are reported against.
/// </summary>
[Config(typeof(Config))]
public class AesPrgBenchmarks
{
    private const int Blocks = 1 << 16;
    private readonly Vector128<byte>[] _blocks = new Vector128<byte>[Blocks];
    private readonly byte[] _bytes = new byte[Blocks * 16];
    private AesCore _aes = null!;
    private AesPrg _prg = null!;

    /// <summary>Creates the AES instance and PRG.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _aes = new AesCore(FixedKeyAes.Key());
        _prg = AesPrg.CreateDeterministicForTesting(new byte[16]);
    }

    /// <summary>Disposes.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _aes.Dispose();
        _prg.Dispose();
    }

    /// <summary>Raw AES-128 (AES-NI, 8 blocks in flight): the bound.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Blocks)]
    public void AesNiEncrypt() => _aes.EncryptInPlace(_blocks);

    /// <summary>Fixed-key MMO^sigma hash (AES-NI).</summary>
    [Benchmark(OperationsPerInvoke = Blocks)]
    public void FixedKeyHash() => FixedKeyAes.HashInPlace(_blocks);

    /// <summary>Fixed-key hash on the portable path (platform AES).</summary>
    [Benchmark(OperationsPerInvoke = Blocks)]
    public void FixedKeyHashPortable() => FixedKeyAes.HashInPlacePortable(_blocks);

    /// <summary>PRG stream fill (counter mode, parallel above 1 MiB; exactly 1 MiB here, so one thread).</summary>
    [Benchmark(OperationsPerInvoke = Blocks)]
    public void PrgFill() => _prg.Fill(_bytes);
}
