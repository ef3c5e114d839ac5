namespace HssEe.Runtime;

/// <summary>
/// A reliable, ordered, message-oriented link between the two servers. HssEe has no network
/// layer: services implement this over their own transport (TLS, gRPC, a queue), and
/// <see cref="InProcessChannel"/> provides one for running both parties in one process.
/// </summary>
/// <remarks>
/// Implementations deliver each sent message whole and in order, and must not keep a reference
/// to the <c>message</c> memory after <see cref="SendAsync"/> completes. They need not be
/// thread-safe beyond one concurrent send and one concurrent receive. Framing, validation,
/// timeouts and byte/round accounting are added on top by <see cref="PartyChannel"/>.
/// </remarks>
public interface IChannel : IAsyncDisposable
{
    /// <summary>Sends one whole message.</summary>
    /// <param name="message">The message bytes (copy them if needed after return).</param>
    /// <param name="cancellationToken">Cancels the send.</param>
    /// <returns>A task that completes when the message is handed to the transport.</returns>
    ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken);

    /// <summary>Receives the next whole message, or null once the peer has closed the link.</summary>
    /// <param name="cancellationToken">Cancels the wait (used for timeouts).</param>
    /// <returns>The message, or null when the peer closed.</returns>
    ValueTask<byte[]?> ReceiveAsync(CancellationToken cancellationToken);
}

/// <summary>
/// A transport that can take ownership of a freshly built frame instead of copying it (the in-process
/// channel): <see cref="PartyChannel"/> never touches a frame again after sending it.
/// </summary>
internal interface IOwnedFrameTransport
{
    /// <summary>Sends <paramref name="frame"/>, which the caller gives up.</summary>
    ValueTask SendOwnedAsync(byte[] frame, CancellationToken cancellationToken);
}
