using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace HssEe.Runtime;

/// <summary>
/// One server's end of the server-to-server link: frames and validates messages over an
/// <see cref="IChannel"/>, enforces a receive timeout, and counts bytes, messages and rounds.
/// </summary>
/// <remarks>
/// <para>Every message carries a 16-byte header (magic, version, kind, sequence number, round
/// stamp, payload length). A receive states the exact payload length it expects; a message of
/// another length, out of sequence, or malformed throws <see cref="ProtocolException"/>. A
/// silent peer gives <see cref="ChannelTimeoutException"/> after <see cref="ReceiveTimeout"/>, a
/// closed peer <see cref="PeerClosedException"/>, and a peer that called
/// <see cref="AbortAsync"/> <see cref="PeerFailedException"/>. Nothing waits forever.</para>
/// <para>One send and one receive may be in flight at a time (as in <see cref="ExchangeAsync(ReadOnlyMemory{ulong}, Memory{ulong}, CancellationToken)"/>).</para>
/// </remarks>
public sealed class PartyChannel : IAsyncDisposable
{
    /// <summary>Size of the header in front of every payload, in bytes.</summary>
    public const int HeaderSize = 16;

    /// <summary>The default receive timeout (30 seconds).</summary>
    public static readonly TimeSpan DefaultReceiveTimeout = TimeSpan.FromSeconds(30);

    private const ushort Magic = 0x4548; // "HE"
    private const byte Version = 1;
    private const byte KindData = 1;
    private const byte KindAbort = 2;
    private const int MaxAbortText = 1024;

    private readonly IChannel _transport;
    private uint _sendSequence;
    private uint _receiveSequence;
    private long _bytesSent;
    private long _bytesReceived;
    private long _messagesSent;
    private long _messagesReceived;
    private long _frameBytesSent;
    private int _depth;
    private bool _disposed;

    /// <summary>Wraps a transport for one party.</summary>
    /// <param name="party">The party this end belongs to.</param>
    /// <param name="transport">The message link to the other party.</param>
    /// <param name="receiveTimeout">How long a receive waits for the peer; null for <see cref="DefaultReceiveTimeout"/>.</param>
    public PartyChannel(Party party, IChannel transport, TimeSpan? receiveTimeout = null)
    {
        party.Validate(nameof(party));
        ArgumentNullException.ThrowIfNull(transport);
        TimeSpan timeout = receiveTimeout ?? DefaultReceiveTimeout;
        if (timeout <= TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(receiveTimeout), timeout, "The receive timeout must be positive.");
        }

        if (timeout == Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(receiveTimeout), timeout, "An infinite receive timeout is not allowed: a silent peer would hang the party.");
        }

        Party = party;
        _transport = transport;
        ReceiveTimeout = timeout;
    }

    /// <summary>The party this end belongs to.</summary>
    public Party Party { get; }

    /// <summary>How long a receive waits before throwing <see cref="ChannelTimeoutException"/>.</summary>
    public TimeSpan ReceiveTimeout { get; }

    /// <summary>A snapshot of this end's counters.</summary>
    public ChannelStatistics Statistics => new(
        Interlocked.Read(ref _bytesSent),
        Interlocked.Read(ref _bytesReceived),
        Interlocked.Read(ref _messagesSent),
        Interlocked.Read(ref _messagesReceived),
        Interlocked.Read(ref _frameBytesSent),
        Volatile.Read(ref _depth));

    /// <summary>Sends one message of bytes.</summary>
    /// <param name="payload">The payload.</param>
    /// <param name="cancellationToken">Cancels the send.</param>
    /// <returns>A task that completes when the message is handed to the transport.</returns>
    public ValueTask SendAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
        => SendFrameAsync(KindData, payload.Span, cancellationToken);

    /// <summary>Sends one message of ring elements (little-endian, 8 bytes each).</summary>
    /// <param name="payload">The ring elements.</param>
    /// <param name="cancellationToken">Cancels the send.</param>
    /// <returns>A task that completes when the message is handed to the transport.</returns>
    public ValueTask SendAsync(ReadOnlyMemory<ulong> payload, CancellationToken cancellationToken = default)
        => SendFrameAsync(KindData, MemoryMarshal.AsBytes(payload.Span), cancellationToken);

    /// <summary>Receives one message whose payload must be exactly <paramref name="destination"/>'s length.</summary>
    /// <param name="destination">Where the payload goes.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the payload is in <paramref name="destination"/>.</returns>
    public async ValueTask ReceiveAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        byte[] frame = await ReceiveFrameAsync(destination.Length, cancellationToken).ConfigureAwait(false);
        frame.AsSpan(HeaderSize).CopyTo(destination.Span);
        Recycle(frame);
    }

    /// <summary>Receives one message of exactly <paramref name="destination"/>.Length ring elements.</summary>
    /// <param name="destination">Where the elements go.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the elements are in <paramref name="destination"/>.</returns>
    public async ValueTask ReceiveAsync(Memory<ulong> destination, CancellationToken cancellationToken = default)
    {
        byte[] frame = await ReceiveFrameAsync(checked(destination.Length * sizeof(ulong)), cancellationToken).ConfigureAwait(false);
        frame.AsSpan(HeaderSize).CopyTo(MemoryMarshal.AsBytes(destination.Span));
        Recycle(frame);
    }

    /// <summary>
    /// Sends <paramref name="send"/> and receives the peer's message of <paramref name="receive"/>.Length
    /// elements concurrently: the one-round exchange of a masked opening.
    /// </summary>
    /// <param name="send">Elements to send.</param>
    /// <param name="receive">Where the peer's elements go.</param>
    /// <param name="cancellationToken">Cancels the exchange.</param>
    /// <returns>A task that completes when both directions are done.</returns>
    public async ValueTask ExchangeAsync(ReadOnlyMemory<ulong> send, Memory<ulong> receive, CancellationToken cancellationToken = default)
    {
        ValueTask sending = SendAsync(send, cancellationToken);
        ValueTask receiving = ReceiveAsync(receive, cancellationToken);
        try
        {
            await sending.ConfigureAwait(false);
        }
        finally
        {
            await receiving.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Tells the peer that this party's side failed, so that its pending receive throws
    /// <see cref="PeerFailedException"/> at once instead of timing out. Sends only the exception's
    /// type name and message (at most 1024 characters); best effort, never throws.
    /// </summary>
    /// <param name="reason">Why this party stopped.</param>
    /// <returns>A task that completes when the abort is sent or could not be.</returns>
    public async ValueTask AbortAsync(Exception reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        string text = $"{reason.GetType().Name}: {reason.Message}";
        if (text.Length > MaxAbortText)
        {
            text = text[..MaxAbortText];
        }

        try
        {
            using var cts = new CancellationTokenSource(ReceiveTimeout);
            await SendFrameAsync(KindAbort, Encoding.UTF8.GetBytes(text), cts.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Best effort: the link may already be gone.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <summary>Closes the underlying transport.</summary>
    /// <returns>A task that completes when closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            await _transport.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Shows the party and counters.</summary>
    /// <returns>A description.</returns>
    public override string ToString() => $"PartyChannel({Party}, {Statistics})";

    private ValueTask SendFrameAsync(byte kind, ReadOnlySpan<byte> payload, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // Every byte of the frame is written below. Over the in-process channel the receiving end hands it
        // back to the pool, so steady message sizes stop allocating.
        byte[] frame = _transport is IOwnedFrameTransport ? FramePool.Rent(HeaderSize + payload.Length) : GC.AllocateUninitializedArray<byte>(HeaderSize + payload.Length);
        WriteHeader(frame, kind, _sendSequence, (uint)_depth, payload.Length);
        payload.CopyTo(frame.AsSpan(HeaderSize));
        _sendSequence++;
        if (kind == KindData)
        {
            Interlocked.Add(ref _bytesSent, payload.Length);
            Interlocked.Increment(ref _messagesSent);
        }

        Interlocked.Add(ref _frameBytesSent, frame.Length);
        return _transport is IOwnedFrameTransport owned ? owned.SendOwnedAsync(frame, cancellationToken) : _transport.SendAsync(frame, cancellationToken);
    }

    private async ValueTask<byte[]> ReceiveFrameAsync(int expectedLength, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        uint sequence = _receiveSequence;
        string what = $"message #{sequence} ({expectedLength} bytes) from party {Party.Peer()}";
        byte[]? frame;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(ReceiveTimeout);
            try
            {
                frame = await _transport.ReceiveAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ChannelTimeoutException(
                    $"Party {Party} waited {ReceiveTimeout.TotalSeconds:0.###} s for {what}; the peer is silent or stopped.", ex);
            }
        }

        if (frame is null)
        {
            throw new PeerClosedException($"Party {Party.Peer()} closed the channel while party {Party} was waiting for {what}.");
        }

        if (frame.Length < HeaderSize)
        {
            throw new ProtocolException($"Party {Party} received a {frame.Length}-byte frame, shorter than the {HeaderSize}-byte header, while waiting for {what}.");
        }

        ushort magic = BinaryPrimitives.ReadUInt16LittleEndian(frame);
        byte version = frame[2];
        byte kind = frame[3];
        uint seq = BinaryPrimitives.ReadUInt32LittleEndian(frame.AsSpan(4));
        uint stamp = BinaryPrimitives.ReadUInt32LittleEndian(frame.AsSpan(8));
        int length = BinaryPrimitives.ReadInt32LittleEndian(frame.AsSpan(12));
        if (magic != Magic || version != Version)
        {
            throw new ProtocolException($"Party {Party} received a frame with magic 0x{magic:X4} version {version} (expected 0x{Magic:X4} version {Version}) while waiting for {what}.");
        }

        if (length < 0 || length != frame.Length - HeaderSize)
        {
            throw new ProtocolException($"Party {Party} received a corrupt frame: header says {length} payload bytes, frame carries {frame.Length - HeaderSize}.");
        }

        if (kind == KindAbort)
        {
            string reason = Encoding.UTF8.GetString(frame, HeaderSize, length);
            throw new PeerFailedException($"Party {Party.Peer()} failed while party {Party} was waiting for {what}: {reason}");
        }

        if (kind != KindData)
        {
            throw new ProtocolException($"Party {Party} received a frame of unknown kind {kind} while waiting for {what}.");
        }

        if (seq != sequence)
        {
            throw new ProtocolException($"Party {Party} received message #{seq} from party {Party.Peer()} but expected #{sequence}: messages were lost, duplicated or reordered.");
        }

        if (length != expectedLength)
        {
            throw new ProtocolException($"Party {Party} expected {what} but received {length} bytes: the parties disagree on the protocol step or shape.");
        }

        _receiveSequence++;
        Interlocked.Add(ref _bytesReceived, length);
        Interlocked.Increment(ref _messagesReceived);
        int arrived = (int)Math.Min(stamp + 1, int.MaxValue);
        if (arrived > _depth)
        {
            Volatile.Write(ref _depth, arrived);
        }

        return frame;
    }

    /// <summary>Frames that came over the in-process channel were built by the peer's <see cref="SendFrameAsync"/> and are no longer referenced.</summary>
    private void Recycle(byte[] frame)
    {
        if (_transport is IOwnedFrameTransport)
        {
            FramePool.Return(frame);
        }
    }

    private static void WriteHeader(Span<byte> frame, byte kind, uint sequence, uint stamp, int length)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(frame, Magic);
        frame[2] = Version;
        frame[3] = kind;
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[8..], stamp);
        BinaryPrimitives.WriteInt32LittleEndian(frame[12..], length);
    }
}
