using System.Threading.Channels;

namespace HssEe.Runtime;

/// <summary>
/// An in-memory <see cref="IChannel"/> pair for running both servers in one process (tests,
/// benchmarks, demos). Messages are copied on send. Disposing one end closes it: the other end
/// then receives null (peer closed) once it has read what was already sent.
/// </summary>
public sealed class InProcessChannel : IChannel, IOwnedFrameTransport
{
    private readonly ChannelWriter<byte[]> _outbound;
    private readonly ChannelReader<byte[]> _inbound;

    private InProcessChannel(ChannelWriter<byte[]> outbound, ChannelReader<byte[]> inbound)
    {
        _outbound = outbound;
        _inbound = inbound;
    }

    /// <summary>Creates two connected ends: what one sends, the other receives.</summary>
    /// <returns>The end for party A and the end for party B.</returns>
    public static (InProcessChannel A, InProcessChannel B) CreatePair()
    {
        var aToB = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var bToA = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        return (new InProcessChannel(aToB.Writer, bToA.Reader), new InProcessChannel(bToA.Writer, aToB.Reader));
    }

    /// <inheritdoc />
    public ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken) => SendOwnedAsync(message.ToArray(), cancellationToken);

    /// <inheritdoc/>
    ValueTask IOwnedFrameTransport.SendOwnedAsync(byte[] frame, CancellationToken cancellationToken) => SendOwnedAsync(frame, cancellationToken);

    private ValueTask SendOwnedAsync(byte[] frame, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!_outbound.TryWrite(frame))
        {
            throw new ChannelClosedException("This end of the in-process channel is closed.");
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public async ValueTask<byte[]?> ReceiveAsync(CancellationToken cancellationToken)
    {
        if (await _inbound.WaitToReadAsync(cancellationToken).ConfigureAwait(false) && _inbound.TryRead(out byte[]? message))
        {
            return message;
        }

        return null;
    }

    /// <summary>Closes this end; the peer sees the link closed.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        _outbound.TryComplete();
        return ValueTask.CompletedTask;
    }
}
