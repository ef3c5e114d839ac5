namespace HssEe.Fss;

/// <summary>What is wrong with serialised FSS key data (see <see cref="FssKeyFormatException.Error"/>).</summary>
public enum FssKeyFormatError
{
    /// <summary>No specific reason recorded.</summary>
    Unspecified = 0,

    /// <summary>The data does not start with the FSS key magic bytes.</summary>
    BadMagic,

    /// <summary>The format version is not one this library reads.</summary>
    UnsupportedVersion,

    /// <summary>The header is internally inconsistent or holds out-of-range values (corrupted data).</summary>
    InvalidHeader,

    /// <summary>The data ends before the length that the header declares.</summary>
    Truncated,

    /// <summary>The data is longer than the header declares (trailing bytes).</summary>
    LengthMismatch,

    /// <summary>The SHA-256 checksum does not match: some byte was changed.</summary>
    ChecksumMismatch,

    /// <summary>The keys are of another function family (DPF instead of DCF or vice versa).</summary>
    WrongKind,

    /// <summary>The keys belong to the other party.</summary>
    WrongParty,

    /// <summary>The keys have another input bit-width (domain) n than expected.</summary>
    WrongInputBits,

    /// <summary>The keys have another output bit-width ell than expected.</summary>
    WrongOutputBits,

    /// <summary>The keys have another payload length m than expected.</summary>
    WrongPayloadLength,
}

/// <summary>
/// Serialised FSS key data was rejected: <see cref="Error"/> says why and the message names
/// the field, the value found and the value expected.
/// </summary>
public sealed class FssKeyFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public FssKeyFormatException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong.</param>
    public FssKeyFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The cause.</param>
    public FssKeyFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with a reason and message.</summary>
    /// <param name="error">Why the data was rejected.</param>
    /// <param name="message">What is wrong, naming the field and values.</param>
    public FssKeyFormatException(FssKeyFormatError error, string message)
        : base(message)
    {
        Error = error;
    }

    /// <summary>Why the data was rejected.</summary>
    public FssKeyFormatError Error { get; }
}
