using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;

namespace HssEe.Randomness;

/// <summary>
/// A cryptographic pseudorandom generator built on fixed-key AES: block <c>i</c> of the stream
/// is <c>H(seed XOR i)</c> with H the MMO^sigma hash over the library's fixed public AES-128 key
/// (AES-NI when available, the platform AES otherwise; both give identical output).
/// </summary>
/// <remarks>
/// <para><see cref="Create"/> draws the 128-bit seed from <see cref="RandomNumberGenerator"/>.
/// A caller-chosen seed is only accepted by <see cref="CreateDeterministicForTesting"/>, which is
/// meant for tests and benchmarks that need reproducible streams.</para>
/// <para>Instances are not thread-safe. <see cref="Dispose"/> zeroes the seed and the buffered
/// output; the seed never appears in <see cref="ToString"/> or the debugger view.</para>
/// </remarks>
[DebuggerDisplay("AesPrg (secret seed hidden)")]
public sealed class AesPrg : IDisposable
{
    /// <summary>Seed length in bytes (128 bits).</summary>
    public const int SeedSize = 16;

    private const int BufferBlocks = 64;
    private const int ParallelThresholdBlocks = 1 << 16;
    private const int ParallelChunkBlocks = 1 << 13;

    private readonly Vector128<byte>[] _buffer = new Vector128<byte>[BufferBlocks];
    private Vector128<byte> _seed;
    private ulong _counter;
    private int _bufferOffset = BufferBlocks * 16;
    private bool _disposed;

    private AesPrg(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != SeedSize)
        {
            throw new ArgumentException($"An AesPrg seed is {SeedSize} bytes, got {seed.Length}.", nameof(seed));
        }

        _seed = Vector128.Create(seed);
    }

    /// <summary>Creates a generator with a fresh seed from <see cref="RandomNumberGenerator"/>.</summary>
    /// <returns>A new generator; dispose it to wipe its state.</returns>
    public static AesPrg Create()
    {
        Span<byte> seed = stackalloc byte[SeedSize];
        try
        {
            RandomNumberGenerator.Fill(seed);
            return new AesPrg(seed);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>
    /// Creates a generator from a caller-chosen seed, for reproducible <b>tests and benchmarks only</b>.
    /// Never use it for real secrets: the output is exactly as secret as the seed.
    /// </summary>
    /// <param name="seed">Exactly <see cref="SeedSize"/> bytes.</param>
    /// <returns>A deterministic generator.</returns>
    public static AesPrg CreateDeterministicForTesting(ReadOnlySpan<byte> seed) => new(seed);

    /// <summary>Creates a generator from key material derived inside the library (EE keys, dealer seeds).</summary>
    internal static AesPrg FromDerivedSeed(ReadOnlySpan<byte> seed) => new(seed);

    /// <summary>Number of 16-byte blocks drawn from the stream so far.</summary>
    public ulong BlocksGenerated => _counter;

    /// <summary>Fills <paramref name="destination"/> with pseudorandom bytes.</summary>
    /// <param name="destination">Buffer to fill.</param>
    public void Fill(Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int fromBuffer = Math.Min(destination.Length, (BufferBlocks * 16) - _bufferOffset);
        if (fromBuffer > 0)
        {
            TakeFromBuffer(destination[..fromBuffer]);
            destination = destination[fromBuffer..];
        }

        int wholeBlocks = destination.Length / 16;
        if (wholeBlocks > 0)
        {
            Span<Vector128<byte>> blocks = MemoryMarshal.Cast<byte, Vector128<byte>>(destination[..(wholeBlocks * 16)]);
            Generate(blocks);
            destination = destination[(wholeBlocks * 16)..];
        }

        if (!destination.IsEmpty)
        {
            Refill();
            TakeFromBuffer(destination);
        }
    }

    /// <summary>Fills <paramref name="destination"/> with uniform elements of Z_2^64.</summary>
    /// <param name="destination">Buffer to fill.</param>
    public void Fill(Span<ulong> destination) => Fill(MemoryMarshal.AsBytes(destination));

    /// <summary>Returns a uniform 64-bit value.</summary>
    /// <returns>A uniform element of Z_2^64.</returns>
    public ulong NextUInt64()
    {
        Span<byte> b = stackalloc byte[8];
        Fill(b);
        ulong v = MemoryMarshal.Read<ulong>(b);
        CryptographicOperations.ZeroMemory(b);
        return v;
    }

    /// <summary>Returns a uniform value in [0, <paramref name="exclusiveBound"/>) without modulo bias (Lemire's method with rejection).</summary>
    /// <param name="exclusiveBound">Upper bound, at least 1.</param>
    /// <returns>A uniform value below the bound.</returns>
    public ulong NextUInt64(ulong exclusiveBound)
    {
        ArgumentOutOfRangeException.ThrowIfZero(exclusiveBound);
        ulong x = NextUInt64();
        ulong high = Math.BigMul(x, exclusiveBound, out ulong low);
        if (low < exclusiveBound)
        {
            ulong threshold = unchecked(0 - exclusiveBound) % exclusiveBound;
            while (low < threshold)
            {
                x = NextUInt64();
                high = Math.BigMul(x, exclusiveBound, out low);
            }
        }

        return high;
    }

    /// <summary>Returns a uniform integer in [0, <paramref name="exclusiveMax"/>) without bias.</summary>
    /// <param name="exclusiveMax">Upper bound, at least 1.</param>
    /// <returns>A uniform value below the bound.</returns>
    public int NextInt32(int exclusiveMax)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(exclusiveMax, 1);
        return (int)NextUInt64((ulong)exclusiveMax);
    }

    /// <summary>Returns a uniform double in [0, 1) with 53 random bits.</summary>
    /// <returns>A uniform double.</returns>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Returns a standard normal sample (Box-Muller on two 53-bit uniforms).</summary>
    /// <returns>A sample of N(0, 1).</returns>
    public double NextGaussian()
    {
        double u1 = ((NextUInt64() >> 11) + 1) * (1.0 / (1UL << 53)); // (0, 1]
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Wipes the seed and buffered output. Further use throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        _seed = default;
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(_buffer.AsSpan()));
        _bufferOffset = BufferBlocks * 16;
        _disposed = true;
    }

    /// <inheritdoc />
    public override string ToString() => "AesPrg (secret seed hidden)";

    private void TakeFromBuffer(Span<byte> destination)
    {
        Span<byte> buffered = MemoryMarshal.AsBytes(_buffer.AsSpan());
        buffered.Slice(_bufferOffset, destination.Length).CopyTo(destination);
        buffered.Slice(_bufferOffset, destination.Length).Clear();
        _bufferOffset += destination.Length;
    }

    private void Refill()
    {
        Generate(_buffer);
        _bufferOffset = 0;
    }

    private void Generate(Span<Vector128<byte>> blocks)
    {
        ulong start = _counter;
        if ((ulong)blocks.Length > ulong.MaxValue - start)
        {
            throw new InvalidOperationException("AesPrg stream exhausted (2^64 blocks); create a new generator.");
        }

        _counter = start + (ulong)blocks.Length;
        if (blocks.Length < ParallelThresholdBlocks)
        {
            FixedKeyAes.CounterStream(_seed, start, blocks);
            return;
        }

        // Counter mode parallelises: each chunk starts at its own counter.
        unsafe
        {
            fixed (Vector128<byte>* basePtr = blocks)
            {
                nint address = (nint)basePtr;
                int length = blocks.Length;
                Vector128<byte> seed = _seed;
                int chunks = (length + ParallelChunkBlocks - 1) / ParallelChunkBlocks;
                Parallel.For(0, chunks, c =>
                {
                    int offset = c * ParallelChunkBlocks;
                    int len = Math.Min(ParallelChunkBlocks, length - offset);
                    var part = new Span<Vector128<byte>>((Vector128<byte>*)address + offset, len);
                    FixedKeyAes.CounterStream(seed, start + (ulong)offset, part);
                });
            }
        }
    }
}
