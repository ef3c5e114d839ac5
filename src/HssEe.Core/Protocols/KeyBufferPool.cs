using System.Security.Cryptography;

namespace HssEe.Protocols;

/// <summary>
/// Reuses the large pinned buffers that hold key records during the online phase.
/// </summary>
/// <remarks>
/// <para>A ReLU over 10^6 elements reads about 170 MB of keys per party. Each record needs a
/// fresh pinned array, and the first write to each of its pages costs a page fault: 1.5 to 12 us
/// per 4 KiB page measured on our CI-class VM. For large records that costs more than the
/// evaluation itself. Buffers given back here are wiped first (every byte, with
/// <see cref="CryptographicOperations.ZeroMemory"/>), so a retained buffer never holds key
/// material. The next record of a similar size reuses the buffer, and its pages are already
/// mapped. A caller that zeroed part of a buffer while using it (single-use keys wiped as they are
/// evaluated) can say so, and only the rest is wiped here.</para>
/// <para>Only buffers of at least <see cref="MinimumPooledBytes"/> are pooled. The pool retains
/// at most <see cref="MaxRetainedBytes"/> bytes in total (an eighth of the memory the GC may use,
/// capped at 4 GiB). Beyond that, returned buffers are wiped and dropped.</para>
/// </remarks>
internal static class KeyBufferPool
{
    /// <summary>Smallest buffer worth pooling (smaller ones are cheap to allocate).</summary>
    public const int MinimumPooledBytes = 1 << 20;

    private static readonly RetainedArrays<byte> Free = new(Math.Min(4L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8));

    /// <summary>Cap on the bytes kept for reuse.</summary>
    public static long MaxRetainedBytes => Free.MaxBytes;

    /// <summary>Bytes currently retained (all zero).</summary>
    public static long RetainedBytes => Free.RetainedBytes;

    /// <summary>
    /// A pinned array of at least <paramref name="length"/> bytes whose bytes from
    /// <paramref name="length"/> on are zero. The caller fills the first <paramref name="length"/> bytes.
    /// </summary>
    public static byte[] Rent(int length)
    {
        if (length >= MinimumPooledBytes && Free.TakeBestFit(length) is { } found)
        {
            return found;
        }

        byte[] fresh = GC.AllocateUninitializedArray<byte>(length, pinned: true);
        return fresh;
    }

    /// <summary>Wipes <paramref name="buffer"/> and keeps it for reuse if it is large and the cap allows.</summary>
    public static void Return(byte[] buffer) => Return(buffer, 0, buffer.Length);

    /// <summary>
    /// As <see cref="Return(byte[])"/> when only bytes [<paramref name="from"/>, <paramref name="to"/>) can be
    /// nonzero: the caller guarantees the rest is zero (bytes past the rented length were zero when rented, and
    /// a prefix may have been wiped as it was used).
    /// </summary>
    public static void Return(byte[] buffer, int from, int to)
    {
        CryptographicOperations.ZeroMemory(buffer.AsSpan(from, to - from));
        if (buffer.Length < MinimumPooledBytes)
        {
            return;
        }

        Free.Keep(buffer);
    }
}
