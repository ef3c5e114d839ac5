using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace HssEe.Protocols;

/// <summary>
/// Process-wide reuse of the large temporaries of the gates' online phase (masked values, openings,
/// expanded dealer shares), wiped on return.
/// </summary>
/// <remarks>
/// <para>A gate over 10^6 elements rents several arrays of 8 to 16 MB per party. <see cref="ArrayPool{T}.Shared"/>
/// parks a returned array in the returning thread's local slot, where a rent on another thread does not find
/// it; the async continuations of the two parties hop between threads, so a later gate often got a fresh
/// array, and the first write to each fresh 4 KiB page faults (1.5 to 12 us on our CI-class VM; up to a
/// third of a 10^6-element ReLU). This pool keeps arrays of at least <see cref="MinimumPooledBytes"/> in one
/// shared list instead. Smaller requests go to <see cref="ArrayPool{T}.Shared"/>.</para>
/// <para>Every array is wiped with <see cref="CryptographicOperations.ZeroMemory"/> when returned, so a retained
/// array never holds a share, a mask or an opened value. The pool retains at most
/// <see cref="MaxRetainedBytes"/> (a sixteenth of the memory the GC may use, capped at 1 GiB); beyond that,
/// smaller retained arrays are evicted first when that makes room, else the returned array is dropped.</para>
/// </remarks>
/// <typeparam name="T">Element type.</typeparam>
internal static class ScratchPool<T>
    where T : unmanaged
{
    /// <summary>Smallest array (in bytes) kept in this pool; smaller ones use the shared array pool.</summary>
    public const int MinimumPooledBytes = 1 << 20;

    private static readonly RetainedArrays<T> Free = new(Math.Min(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 16));

    /// <summary>Cap on the bytes kept for reuse.</summary>
    public static long MaxRetainedBytes => Free.MaxBytes;

    /// <summary>Bytes currently retained (all zero).</summary>
    public static long RetainedBytes => Free.RetainedBytes;

    /// <summary>An array of at least <paramref name="length"/> elements, all zero.</summary>
    /// <param name="length">Elements needed.</param>
    /// <returns>The array; give it back with <see cref="Return"/>.</returns>
    public static T[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (Bytes(length) < MinimumPooledBytes)
        {
            T[] small = ArrayPool<T>.Shared.Rent(length);
            small.AsSpan(0, length).Clear();
            return small;
        }

        return Free.TakeBestFit(length) ?? new T[length];
    }

    /// <summary>Wipes <paramref name="array"/> (every element) and keeps it for reuse if it is large and the cap allows.</summary>
    /// <param name="array">An array from <see cref="Rent"/>.</param>
    public static void Return(T[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (Bytes(array.Length) < MinimumPooledBytes)
        {
            ArrayPool<T>.Shared.Return(array, clearArray: true);
            return;
        }

        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(array.AsSpan()));
        Free.Keep(array);
    }

    private static long Bytes(int length) => RetainedArrays<T>.Bytes(length);
}
