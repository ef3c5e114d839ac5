namespace HssEe.Runtime;

/// <summary>
/// Traffic counted by one party's <see cref="PartyChannel"/>. Payload bytes are what the
/// protocol sends (the "online bytes"); frame bytes add the fixed 16-byte header of each message.
/// </summary>
/// <param name="BytesSent">Payload bytes sent.</param>
/// <param name="BytesReceived">Payload bytes received.</param>
/// <param name="MessagesSent">Messages sent.</param>
/// <param name="MessagesReceived">Messages received.</param>
/// <param name="FrameBytesSent">Bytes sent including message headers.</param>
/// <param name="Rounds">
/// Communication rounds on this party's critical path: the length of the longest chain of
/// messages, each sent after the previous one was received, that ends at this party. A
/// simultaneous exchange (both send, then both receive) is one round; a request and its reply are two.
/// </param>
public readonly record struct ChannelStatistics(
    long BytesSent,
    long BytesReceived,
    long MessagesSent,
    long MessagesReceived,
    long FrameBytesSent,
    int Rounds);

/// <summary>The cost of a two-party computation: both parties' traffic.</summary>
/// <param name="A">Party A's counters.</param>
/// <param name="B">Party B's counters.</param>
public readonly record struct CostReport(ChannelStatistics A, ChannelStatistics B)
{
    /// <summary>Total payload bytes sent by both parties (online communication).</summary>
    public long OnlineBytes => A.BytesSent + B.BytesSent;

    /// <summary>Communication rounds of the run (the longer critical path of the two).</summary>
    public int Rounds => Math.Max(A.Rounds, B.Rounds);

    /// <summary>Total messages sent by both parties.</summary>
    public long Messages => A.MessagesSent + B.MessagesSent;

    /// <summary>A one-line summary, e.g. <c>online 16.0 KiB, 1 round, 2 messages</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() =>
        $"online {FormatBytes(OnlineBytes)}, {Rounds} round{(Rounds == 1 ? string.Empty : "s")}, {Messages} message{(Messages == 1 ? string.Empty : "s")}";

    /// <summary>Formats a byte count with binary units.</summary>
    /// <param name="bytes">Byte count.</param>
    /// <returns>For example <c>1.5 MiB</c>.</returns>
    public static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:F1} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):F1} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):F2} GiB",
    };
}
