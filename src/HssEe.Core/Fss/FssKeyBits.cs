using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace HssEe.Fss;

/// <summary>
/// Shared low-level pieces of the DPF/DCF trees: PRG tweaks, seed masks and the little-endian
/// bit-stream reader/writer used for the tightly packed payload correction words and t bits.
/// </summary>
internal static class FssKeyBits
{
    /// <summary>Bytes kept after the last key of a collection, so unaligned 8-byte reads of a packed word never leave the array.</summary>
    public const int Slack = 16;

    /// <summary>Tweak of the left child seed (XORed into the low 64 bits of the parent seed).</summary>
    public const ulong LeftTweak = 0;

    /// <summary>Tweak of the right child seed.</summary>
    public const ulong RightTweak = 1;

    /// <summary>First payload-stream tweak; payload block j uses <c>PayloadTweak + j</c>.</summary>
    public const ulong PayloadTweak = 2;

    /// <summary>Clears bit 0 (the t bit) of a block; the other 127 bits are the seed.</summary>
    public static Vector128<ulong> ClearT => Vector128.Create(~1UL, ulong.MaxValue);

    /// <summary>A tweak as a block: <paramref name="tweak"/> in the low 64 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Tweak(ulong tweak) => Vector128.CreateScalar(tweak).AsByte();

    /// <summary><c>2^bits - 1</c> for bits in [1, 64].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mask(int bits) => bits >= 64 ? ulong.MaxValue : (1UL << bits) - 1;

    /// <summary>
    /// Reads <paramref name="bits"/> (1..64) bits starting at bit <paramref name="bitOffset"/> of the
    /// little-endian bit stream at <paramref name="region"/>, masked with <paramref name="mask"/>.
    /// Reads up to 9 bytes from <c>bitOffset / 8</c>: the caller guarantees they are inside the buffer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Read(ref byte region, long bitOffset, int bits, ulong mask)
    {
        nint byteOffset = (nint)(bitOffset >> 3);
        int shift = (int)(bitOffset & 7);
        ulong value = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref region, byteOffset)) >> shift;
        if (shift + bits > 64)
        {
            value |= (ulong)Unsafe.Add(ref region, byteOffset + 8) << (64 - shift);
        }

        return value & mask;
    }

    /// <summary>Reads one bit (0 or 1) of the stream at <paramref name="region"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReadBit(ref byte region, long bitOffset) =>
        (ulong)(Unsafe.Add(ref region, (nint)(bitOffset >> 3)) >> (int)(bitOffset & 7)) & 1;

    /// <summary>
    /// ORs the low <paramref name="bits"/> bits of <paramref name="value"/> into the stream at
    /// <paramref name="region"/> from bit <paramref name="bitOffset"/>; touches only the bytes that hold
    /// those bits (so threads writing adjacent keys never race). The target bits must be zero.
    /// </summary>
    public static unsafe void Write(byte* region, long bitOffset, int bits, ulong value)
    {
        UInt128 shifted = (UInt128)(value & Mask(bits)) << (int)(bitOffset & 7);
        byte* first = region + (bitOffset >> 3);
        int count = (int)(((bitOffset & 7) + bits + 7) >> 3);
        for (int k = 0; k < count; k++)
        {
            first[k] |= (byte)(shifted >> (8 * k));
        }
    }

    /// <summary>Bytes needed for <paramref name="bits"/> bits.</summary>
    public static long BytesFor(long bits) => (bits + 7) >> 3;

    /// <summary>
    /// Validates a caller's maximum degree of parallelism (-1: all processors, else at least 1)
    /// and returns the effective degree.
    /// </summary>
    public static int Degree(int maxDegreeOfParallelism, string paramName)
    {
        if (maxDegreeOfParallelism == -1)
        {
            return Environment.ProcessorCount;
        }

        if (maxDegreeOfParallelism < 1)
        {
            throw new ArgumentOutOfRangeException(paramName, maxDegreeOfParallelism, "The maximum degree of parallelism is -1 (all processors) or at least 1.");
        }

        return maxDegreeOfParallelism;
    }

    /// <summary>
    /// Runs <paramref name="body"/>(start, length) over [0, <paramref name="count"/>) in chunks of a multiple of
    /// <paramref name="align"/>, on up to <paramref name="degree"/> threads (inline when one thread suffices).
    /// </summary>
    public static void ForChunks(int count, int degree, int align, int minChunk, Action<int, int> body)
    {
        if (count <= 0)
        {
            return;
        }

        int chunk = Math.Max(minChunk, (int)Math.Min(int.MaxValue, ((long)count + (4L * degree) - 1) / (4L * degree)));
        chunk = (chunk + align - 1) / align * align;
        int chunks = (int)(((long)count + chunk - 1) / chunk);
        if (degree <= 1 || chunks <= 1)
        {
            body(0, count);
            return;
        }

        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = degree }, c =>
        {
            int start = c * chunk;
            body(start, Math.Min(chunk, count - start));
        });
    }
}
