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
/// returned arrays are wiped and dropped.</para>
/// </remarks>
/// <typeparam name="T">Element type.</typeparam>
internal static class ScratchPool<T>
    where T : unmanaged
{
    /// <summary>Smallest array (in bytes) kept in this pool; smaller ones use the shared array pool.</summary>
    public const int MinimumPooledBytes = 1 << 20;

    private static readonly List<T[]> Free = [];
    private static long _retained;

    /// <summary>Cap on the bytes kept for reuse.</summary>
    public static long MaxRetainedBytes { get; } = Math.Min(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 16);

    /// <summary>Bytes currently retained (all zero).</summary>
    public static long RetainedBytes
    {
        get
        {
            lock (Free)
            {
                return _retained;
            }
        }
    }

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

        lock (Free)
        {
            int best = -1;
            for (int i = 0; i < Free.Count; i++)
            {
                int size = Free[i].Length;
                if (size >= length && size <= length + (length / 2) && (best < 0 || size < Free[best].Length))
                {
                    best = i;
                }
            }

            if (best >= 0)
            {
                T[] found = Free[best];
                Free.RemoveAt(best);
                _retained -= Bytes(found.Length);
                return found;
            }
        }

        return new T[length];
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
        long bytes = Bytes(array.Length);
        lock (Free)
        {
            if (_retained + bytes > MaxRetainedBytes)
            {
                return;
            }

            Free.Add(array);
            _retained += bytes;
        }
    }

    private static long Bytes(int length) => (long)length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
}
