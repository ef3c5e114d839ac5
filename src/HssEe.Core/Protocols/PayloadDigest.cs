using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using HssEe.Randomness;

namespace HssEe.Protocols;

/// <summary>
/// A fast 128-bit checksum of bulk key material (key bundle format versions 2 and 3): NH-Toeplitz
/// compression of 4 KiB chunks, then fixed-key AES over the compressed chunks.
/// </summary>
/// <remarks>
/// <para><b>Construction.</b> The data is cut into chunks of <see cref="ChunkBytes"/> bytes (the last one
/// zero-padded). For chunk c with 64-bit little-endian words m_0 .. m_511 and a fixed public key
/// stream K_0 .. K_512 (fixed-key AES in counter mode), lane l (0..7) of the two accumulators is
/// <c>N1_l = sum_{i = l mod 8} lo(m_i +32 K_i) * hi(m_i +32 K_i) mod 2^64</c> and
/// <c>N2_l = sum_{i = l mod 8} lo(m_i +32 K_{i+1}) * hi(m_i +32 K_{i+1}) mod 2^64</c>, where +32 adds the
/// 32-bit halves separately (NH of UMAC/VMAC with 32-bit words; the second pass with the key shifted
/// by one word is the Toeplitz extension). The 128 bytes (N1, N2) are 8 blocks B_{c,j}; the sum is
/// <c>acc = XOR_{c,j} H(B_{c,j} XOR T(8c + j))</c> with H the fixed-key MMO-sigma hash and T a position
/// tweak, and the digest is <c>H(acc XOR (length, domain))</c>.</para>
/// <para><b>Cost.</b> Two 32x32-bit multiplies per 8 bytes and one AES block per 512 bytes: memory
/// bound (format version 1 spent one AES block per 16 bytes, as much AES as a ReLU's DCF).</para>
/// <para><b>Strength.</b> For a key independent of the data, NH-Toeplitz with 32-bit words is
/// 2^-64-almost-universal per lane, so an accidental change inside one chunk survives the
/// compression with probability at most 2^-64; changed chunk outputs then change the AES sum except
/// with probability 2^-128 (fixed-key AES modelled as a random permutation). The key is public and
/// fixed, so this is a <b>corruption</b> check (truncation, bit rot, mix-ups), <b>not</b> a MAC:
/// deliberate tampering in transit is the authenticated transport's job (TLS), as the threat model
/// says. The record chain (headers and these digests) is hashed with SHA-256.</para>
/// </remarks>
internal sealed class PayloadDigest
{
    /// <summary>Bytes compressed per NH chunk.</summary>
    public const int ChunkBytes = 4096;

    private const int Words = ChunkBytes / 8;
    private const int BlocksPerChunk = 8;
    private const int PendingChunks = 64;
    private const int ParallelThreshold = 4 << 20;

    // The high half of every position tweak marks payload blocks, so no tweak equals the finalisation input.
    private const ulong TweakHigh = 0x5061796C6F616432UL; // "Payload2"
    private const ulong FinalHigh = 0x48737345_44696732UL; // "HssEDig2"

    private static readonly ulong[] Key = CreateKey();

    private readonly Kernel _kernel;
    private readonly byte[] _partial = new byte[ChunkBytes];
    private readonly Vector128<byte>[] _pending = new Vector128<byte>[PendingChunks * BlocksPerChunk];
    private int _partialLength;
    private int _pendingChunks;
    private ulong _chunks;
    private ulong _length;
    private Vector128<byte> _acc;

    /// <summary>The NH kernels (all give the same digest).</summary>
    internal enum Kernel
    {
        /// <summary>The widest the CPU supports.</summary>
        Auto,

        /// <summary>512-bit lanes.</summary>
        Avx512,

        /// <summary>256-bit lanes.</summary>
        Avx2,

        /// <summary>Scalar reference.</summary>
        Scalar,
    }

    /// <summary>Starts an incremental digest.</summary>
    public PayloadDigest()
        : this(Kernel.Auto)
    {
    }

    /// <summary>Starts an incremental digest with a given kernel (tests).</summary>
    internal PayloadDigest(Kernel kernel)
    {
        _kernel = Resolve(kernel);
    }

    /// <summary>Whether <paramref name="kernel"/> runs on this CPU.</summary>
    internal static bool Supports(Kernel kernel) => kernel switch
    {
        Kernel.Avx512 => Avx512F.IsSupported,
        Kernel.Avx2 => Avx2.IsSupported,
        _ => true,
    };

    /// <summary>The digest of <paramref name="data"/> (parallel over chunks for large inputs).</summary>
    public static byte[] Compute(ReadOnlySpan<byte> data) => Compute(data, Kernel.Auto);

    /// <summary>The digest of <paramref name="data"/> with a given kernel.</summary>
    internal static byte[] Compute(ReadOnlySpan<byte> data, Kernel kernel)
    {
        kernel = Resolve(kernel);
        int whole = data.Length / ChunkBytes;
        if (data.Length < ParallelThreshold || Environment.ProcessorCount == 1)
        {
            var digest = new PayloadDigest(kernel);
            digest.Append(data);
            return digest.Finish();
        }

        Vector128<byte> acc = ParallelSum(data[..(whole * ChunkBytes)], kernel);
        var rest = new PayloadDigest(kernel) { _chunks = (ulong)whole, _length = (ulong)(whole * ChunkBytes), _acc = acc };
        rest.Append(data[(whole * ChunkBytes)..]);
        return rest.Finish();
    }

    /// <summary>Adds bytes to the digest.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        _length += (ulong)data.Length;
        if (_partialLength > 0)
        {
            int take = Math.Min(ChunkBytes - _partialLength, data.Length);
            data[..take].CopyTo(_partial.AsSpan(_partialLength));
            _partialLength += take;
            data = data[take..];
            if (_partialLength < ChunkBytes)
            {
                return;
            }

            AddChunk(_partial);
            _partialLength = 0;
        }

        while (data.Length >= ChunkBytes)
        {
            AddChunk(data[..ChunkBytes]);
            data = data[ChunkBytes..];
        }

        data.CopyTo(_partial);
        _partialLength = data.Length;
    }

    /// <summary>The 16-byte digest of everything appended.</summary>
    public byte[] Finish()
    {
        if (_partialLength > 0)
        {
            _partial.AsSpan(_partialLength).Clear();
            AddChunk(_partial);
            _partialLength = 0;
        }

        Flush();
        Span<Vector128<byte>> last = stackalloc Vector128<byte>[1];
        last[0] = _acc ^ Vector128.Create(_length, FinalHigh).AsByte();
        FixedKeyAes.HashInPlace(last);
        var result = new byte[16];
        last[0].CopyTo(result);
        CryptographicOperations.ZeroMemory(_partial);
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(_pending.AsSpan()));
        return result;
    }

    private void AddChunk(ReadOnlySpan<byte> chunk)
    {
        Compress(chunk, MemoryMarshal.Cast<Vector128<byte>, ulong>(_pending.AsSpan(_pendingChunks * BlocksPerChunk, BlocksPerChunk)), _kernel);
        _pendingChunks++;
        if (_pendingChunks == PendingChunks)
        {
            Flush();
        }
    }

    private void Flush()
    {
        if (_pendingChunks == 0)
        {
            return;
        }

        _acc ^= FixedKeyAes.HashXorSum(_pending.AsSpan(0, _pendingChunks * BlocksPerChunk), _chunks * BlocksPerChunk, TweakHigh);
        _chunks += (ulong)_pendingChunks;
        _pendingChunks = 0;
    }

    private static Kernel Resolve(Kernel kernel) => kernel switch
    {
        Kernel.Auto => Avx512F.IsSupported ? Kernel.Avx512 : Avx2.IsSupported ? Kernel.Avx2 : Kernel.Scalar,
        _ when !Supports(kernel) => throw new PlatformNotSupportedException($"The {kernel} digest kernel does not run on this CPU."),
        _ => kernel,
    };

    private static unsafe Vector128<byte> ParallelSum(ReadOnlySpan<byte> data, Kernel kernel)
    {
        int chunks = data.Length / ChunkBytes;
        const int PerTask = 256; // 1 MiB
        int tasks = (chunks + PerTask - 1) / PerTask;
        var partial = new Vector128<byte>[tasks];
        fixed (byte* p = data)
        {
            nint address = (nint)p;
            Parallel.For(0, tasks, t =>
            {
                int first = t * PerTask;
                int count = Math.Min(PerTask, chunks - first);
                var blocks = new Vector128<byte>[count * BlocksPerChunk];
                Span<ulong> words = MemoryMarshal.Cast<Vector128<byte>, ulong>(blocks.AsSpan());
                var span = new ReadOnlySpan<byte>((byte*)address + ((long)first * ChunkBytes), count * ChunkBytes);
                for (int c = 0; c < count; c++)
                {
                    Compress(span.Slice(c * ChunkBytes, ChunkBytes), words.Slice(c * 2 * BlocksPerChunk, 2 * BlocksPerChunk), kernel);
                }

                partial[t] = FixedKeyAes.HashXorSum(blocks, (ulong)first * BlocksPerChunk, TweakHigh);
            });
        }

        Vector128<byte> acc = Vector128<byte>.Zero;
        foreach (Vector128<byte> v in partial)
        {
            acc ^= v;
        }

        return acc;
    }

    /// <summary>Writes (N1_0..7, N2_0..7) of one full chunk into <paramref name="output"/> (16 words).</summary>
    private static void Compress(ReadOnlySpan<byte> chunk, Span<ulong> output, Kernel kernel)
    {
        switch (kernel)
        {
            case Kernel.Avx512:
                CompressAvx512(chunk, output);
                break;
            case Kernel.Avx2:
                CompressAvx2(chunk, output);
                break;
            default:
                CompressScalar(chunk, output);
                break;
        }
    }

    private static void CompressScalar(ReadOnlySpan<byte> chunk, Span<ulong> output)
    {
        Span<ulong> n1 = output[..8], n2 = output[8..16];
        n1.Clear();
        n2.Clear();
        for (int i = 0; i < Words; i++)
        {
            ulong m = BinaryPrimitives.ReadUInt64LittleEndian(chunk[(8 * i)..]);
            n1[i & 7] += Nh(m, Key[i]);
            n2[i & 7] += Nh(m, Key[i + 1]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Nh(ulong m, ulong k)
    {
        ulong lo = (uint)((uint)m + (uint)k);
        ulong hi = (uint)((uint)(m >> 32) + (uint)(k >> 32));
        return lo * hi;
    }

    private static unsafe void CompressAvx512(ReadOnlySpan<byte> chunk, Span<ulong> output)
    {
        Vector512<ulong> a1 = Vector512<ulong>.Zero, b1 = Vector512<ulong>.Zero, a2 = Vector512<ulong>.Zero, b2 = Vector512<ulong>.Zero;
        fixed (byte* p = chunk)
        fixed (ulong* k = Key)
        {
            for (int v = 0; v < Words / 8; v += 2)
            {
                Vector512<uint> m0 = Vector512.Load((uint*)(p + (64 * v)));
                Vector512<uint> m1 = Vector512.Load((uint*)(p + (64 * v) + 64));
                Vector512<uint> t0 = m0 + Vector512.Load((uint*)(k + (8 * v)));
                Vector512<uint> u0 = m0 + Vector512.Load((uint*)(k + (8 * v) + 1));
                Vector512<uint> t1 = m1 + Vector512.Load((uint*)(k + (8 * v) + 8));
                Vector512<uint> u1 = m1 + Vector512.Load((uint*)(k + (8 * v) + 9));
                a1 += Avx512F.Multiply(t0, Vector512.ShiftRightLogical(t0.AsUInt64(), 32).AsUInt32());
                a2 += Avx512F.Multiply(u0, Vector512.ShiftRightLogical(u0.AsUInt64(), 32).AsUInt32());
                b1 += Avx512F.Multiply(t1, Vector512.ShiftRightLogical(t1.AsUInt64(), 32).AsUInt32());
                b2 += Avx512F.Multiply(u1, Vector512.ShiftRightLogical(u1.AsUInt64(), 32).AsUInt32());
            }
        }

        (a1 + b1).CopyTo(output);
        (a2 + b2).CopyTo(output[8..]);
    }

    private static unsafe void CompressAvx2(ReadOnlySpan<byte> chunk, Span<ulong> output)
    {
        Vector256<ulong> lo1 = Vector256<ulong>.Zero, hi1 = Vector256<ulong>.Zero, lo2 = Vector256<ulong>.Zero, hi2 = Vector256<ulong>.Zero;
        fixed (byte* p = chunk)
        fixed (ulong* k = Key)
        {
            for (int v = 0; v < Words / 8; v++)
            {
                Vector256<uint> m0 = Vector256.Load((uint*)(p + (64 * v)));
                Vector256<uint> m1 = Vector256.Load((uint*)(p + (64 * v) + 32));
                Vector256<uint> t0 = m0 + Vector256.Load((uint*)(k + (8 * v)));
                Vector256<uint> t1 = m1 + Vector256.Load((uint*)(k + (8 * v) + 4));
                Vector256<uint> u0 = m0 + Vector256.Load((uint*)(k + (8 * v) + 1));
                Vector256<uint> u1 = m1 + Vector256.Load((uint*)(k + (8 * v) + 5));
                lo1 += Avx2.Multiply(t0, Vector256.ShiftRightLogical(t0.AsUInt64(), 32).AsUInt32());
                hi1 += Avx2.Multiply(t1, Vector256.ShiftRightLogical(t1.AsUInt64(), 32).AsUInt32());
                lo2 += Avx2.Multiply(u0, Vector256.ShiftRightLogical(u0.AsUInt64(), 32).AsUInt32());
                hi2 += Avx2.Multiply(u1, Vector256.ShiftRightLogical(u1.AsUInt64(), 32).AsUInt32());
            }
        }

        lo1.CopyTo(output);
        hi1.CopyTo(output[4..]);
        lo2.CopyTo(output[8..]);
        hi2.CopyTo(output[12..]);
    }

    private static ulong[] CreateKey()
    {
        var seed = Vector128.Create(0x4E48546F65706C69UL, 0x747A4B6579563221UL).AsByte(); // "NHToeplitzKeyV2!"
        var blocks = new Vector128<byte>[(Words + 2) / 2];
        FixedKeyAes.CounterStream(seed, 0, blocks);
        return MemoryMarshal.Cast<Vector128<byte>, ulong>(blocks.AsSpan()).ToArray();
    }
}
