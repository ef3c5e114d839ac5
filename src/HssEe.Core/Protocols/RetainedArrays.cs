namespace HssEe.Protocols;

/// <summary>
/// The free list behind <see cref="KeyBufferPool"/> and <see cref="ScratchPool{T}"/>: wiped arrays kept for
/// reuse up to a byte cap, handed out best-fit. Callers wipe arrays before <see cref="Keep"/>; thread-safe.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
internal sealed class RetainedArrays<T>
    where T : unmanaged
{
    private readonly List<T[]> _free = [];
    private long _retained;

    /// <param name="maxBytes">Cap on the bytes kept.</param>
    public RetainedArrays(long maxBytes) => MaxBytes = maxBytes;

    /// <summary>Cap on the bytes kept.</summary>
    public long MaxBytes { get; }

    /// <summary>Bytes currently kept.</summary>
    public long RetainedBytes
    {
        get
        {
            lock (_free)
            {
                return _retained;
            }
        }
    }

    /// <summary>Bytes of an array of <paramref name="length"/> elements.</summary>
    public static long Bytes(int length) => (long)length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    /// <summary>Removes and returns the smallest kept array of <paramref name="length"/> to 1.5 <paramref name="length"/> elements, or null.</summary>
    public T[]? TakeBestFit(int length)
    {
        lock (_free)
        {
            int best = -1;
            for (int i = 0; i < _free.Count; i++)
            {
                int size = _free[i].Length;
                if (size >= length && size <= length + (length / 2) && (best < 0 || size < _free[best].Length))
                {
                    best = i;
                }
            }

            if (best < 0)
            {
                return null;
            }

            T[] found = _free[best];
            _free.RemoveAt(best);
            _retained -= Bytes(found.Length);
            return found;
        }
    }

    /// <summary>
    /// Keeps an already wiped array if the cap allows, evicting smaller kept arrays first when that makes room
    /// (large arrays are the expensive ones to fault in again); otherwise drops it.
    /// </summary>
    public void Keep(T[] array)
    {
        long bytes = Bytes(array.Length);
        lock (_free)
        {
            if (_retained + bytes > MaxBytes)
            {
                _free.Sort((x, y) => x.Length.CompareTo(y.Length));
                while (_free.Count > 0 && _retained + bytes > MaxBytes && _free[0].Length <= array.Length)
                {
                    _retained -= Bytes(_free[0].Length);
                    _free.RemoveAt(0);
                }

                if (_retained + bytes > MaxBytes)
                {
                    return;
                }
            }

            _free.Add(array);
            _retained += bytes;
        }
    }
}
