namespace HssEe.Runtime;

/// <summary>
/// Exact-length frames for the in-process channel: a received frame is handed back after its payload is
/// copied out, and the next send of the same length reuses it instead of allocating (and zeroing, and
/// faulting in) a fresh large-object-heap array per message. A frame holds what the two parties exchanged
/// (in the library's protocols: masked openings, which both see); like a garbage-collected frame before, a
/// pooled one is not wiped, and it is overwritten in full before it is sent again. Only frames of
/// at least <see cref="MinimumLength"/> bytes are kept, at most <see cref="PerLength"/> per length and
/// <see cref="MaximumBytes"/> in all.
/// </summary>
internal static class FramePool
{
    /// <summary>Smaller frames are cheap to allocate and are not kept.</summary>
    public const int MinimumLength = 64 * 1024;

    /// <summary>Frames kept per length.</summary>
    public const int PerLength = 4;

    /// <summary>Bytes kept in all.</summary>
    public const long MaximumBytes = 256L << 20;

    private static readonly Dictionary<int, Stack<byte[]>> Free = [];
    private static readonly Lock Gate = new();
    private static long _bytes;

    /// <summary>A frame of exactly <paramref name="length"/> bytes with unspecified contents (the caller overwrites all of it).</summary>
    public static byte[] Rent(int length)
    {
        if (length >= MinimumLength)
        {
            lock (Gate)
            {
                if (Free.TryGetValue(length, out Stack<byte[]>? stack) && stack.TryPop(out byte[]? frame))
                {
                    _bytes -= length;
                    return frame;
                }
            }
        }

        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>Hands back a frame nobody references any more.</summary>
    public static void Return(byte[] frame)
    {
        if (frame.Length < MinimumLength)
        {
            return;
        }

        lock (Gate)
        {
            if (_bytes + frame.Length > MaximumBytes)
            {
                return;
            }

            if (!Free.TryGetValue(frame.Length, out Stack<byte[]>? stack))
            {
                stack = new Stack<byte[]>(PerLength);
                Free[frame.Length] = stack;
            }

            if (stack.Count < PerLength)
            {
                stack.Push(frame);
                _bytes += frame.Length;
            }
        }
    }
}
