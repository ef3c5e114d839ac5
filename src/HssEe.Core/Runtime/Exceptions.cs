namespace HssEe.Runtime;

/// <summary>The two-party protocol was violated or broken: a malformed, unexpected or wrong-length message.</summary>
public class ProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProtocolException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public ProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public ProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The peer reported that its side of the computation failed (it sent an abort message).</summary>
public sealed class PeerFailedException : ProtocolException
{
    /// <summary>Creates the exception.</summary>
    public PeerFailedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What the peer reported.</param>
    public PeerFailedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What the peer reported.</param>
    /// <param name="innerException">The cause.</param>
    public PeerFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The peer closed the link before a message this party was waiting for arrived.</summary>
public sealed class PeerClosedException : ProtocolException
{
    /// <summary>Creates the exception.</summary>
    public PeerClosedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What was being waited for.</param>
    public PeerClosedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What was being waited for.</param>
    /// <param name="innerException">The cause.</param>
    public PeerClosedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>This end of a channel is closed and cannot send.</summary>
public sealed class ChannelClosedException : ProtocolException
{
    /// <summary>Creates the exception.</summary>
    public ChannelClosedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">Details.</param>
    public ChannelClosedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">Details.</param>
    /// <param name="innerException">The cause.</param>
    public ChannelClosedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The peer did not send an expected message within the receive timeout (silent or stopped peer).</summary>
public sealed class ChannelTimeoutException : TimeoutException
{
    /// <summary>Creates the exception.</summary>
    public ChannelTimeoutException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What was being waited for and for how long.</param>
    public ChannelTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What was being waited for and for how long.</param>
    /// <param name="innerException">The cause.</param>
    public ChannelTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A two-party run failed. <see cref="FailedParty"/> is the party whose own code failed first;
/// <see cref="Exception.InnerException"/> is that failure, and <see cref="PeerException"/> what the
/// other party saw (usually a <see cref="PeerFailedException"/>).
/// </summary>
public sealed class TwoPartyException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TwoPartyException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">Details.</param>
    public TwoPartyException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">Details.</param>
    /// <param name="innerException">The cause.</param>
    public TwoPartyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a failed run.</summary>
    /// <param name="failedParty">The party whose code failed first.</param>
    /// <param name="failure">That party's exception.</param>
    /// <param name="peerException">The other party's exception, if it failed too.</param>
    public TwoPartyException(Party failedParty, Exception failure, Exception? peerException)
        : base(Describe(failedParty, failure, peerException), failure)
    {
        FailedParty = failedParty;
        PeerException = peerException;
    }

    /// <summary>The party whose code failed first.</summary>
    public Party FailedParty { get; }

    /// <summary>What the other party saw, if it failed as well.</summary>
    public Exception? PeerException { get; }

    private static string Describe(Party failedParty, Exception failure, Exception? peer)
    {
        ArgumentNullException.ThrowIfNull(failure);
        string text = $"Party {failedParty} failed: {failure.GetType().Name}: {failure.Message}";
        return peer is null ? text : text + $" (party {failedParty.Peer()} then saw {peer.GetType().Name}: {peer.Message})";
    }
}
