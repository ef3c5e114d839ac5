using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;

namespace HssEe.Fss;

/// <summary>The versioned binary format of FSS key collections (documented on <see cref="FssKeyCollection"/>).</summary>
internal static class FssKeyFormat
{
    public const ushort Version = 1;
    public const int HeaderSize = 40;
    public const int ChecksumSize = 32;

    public static ReadOnlySpan<byte> Magic => "HssEeFSS"u8;

    public static int KeySizeOf(FssKeyKind kind, FssKeyParameters parameters) => kind switch
    {
        FssKeyKind.Dcf => new DcfKeyLayout(parameters).KeySize,
        FssKeyKind.Dpf => new DpfKeyLayout(parameters).KeySize,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown FSS key kind."),
    };

    public static void Write(FssKeyCollection keys, Stream stream)
    {
        Span<byte> header = stackalloc byte[HeaderSize];
        WriteHeader(header, keys.Kind, keys.Party, keys.Parameters, keys.Count, keys.KeySize);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(header);
        stream.Write(header);
        ReadOnlySpan<byte> body = keys.Data.AsSpan(0, checked((int)keys.KeyMaterialSize));
        hash.AppendData(body);
        stream.Write(body);
        Span<byte> checksum = stackalloc byte[ChecksumSize];
        hash.GetHashAndReset(checksum);
        stream.Write(checksum);
    }

    public static FssKeyCollection Read(Stream stream, FssKeyKind? expectedKind, Party? expectedParty, FssKeyParameters? expectedParameters)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> header = stackalloc byte[HeaderSize];
        int got = stream.ReadAtLeast(header, HeaderSize, throwOnEndOfStream: false);
        if (got < HeaderSize)
        {
            throw Error(FssKeyFormatError.Truncated, $"FSS key data is truncated: the stream ended after {got} bytes, inside the {HeaderSize}-byte header.");
        }

        Header h = ParseHeader(header);
        long needed = h.BodyLength + ChecksumSize;
        if (stream.CanSeek && stream.Length - stream.Position < needed)
        {
            throw Error(FssKeyFormatError.Truncated, Invariant($"FSS key data is truncated: the header declares {h.Count} keys of {h.KeySize} bytes ({needed} bytes of keys and checksum after the header) but only {stream.Length - stream.Position} bytes follow."));
        }

        byte[] data = FssKeyCollection.AllocateKeyData(h.Count, h.KeySize);
        try
        {
            int body = (int)h.BodyLength;
            int read = stream.ReadAtLeast(data.AsSpan(0, body), body, throwOnEndOfStream: false);
            if (read < body)
            {
                throw Error(FssKeyFormatError.Truncated, Invariant($"FSS key data is truncated: the header declares {h.BodyLength} bytes of keys ({h.Count} x {h.KeySize}) but the stream ended after {read}."));
            }

            Span<byte> checksum = stackalloc byte[ChecksumSize];
            read = stream.ReadAtLeast(checksum, ChecksumSize, throwOnEndOfStream: false);
            if (read < ChecksumSize)
            {
                throw Error(FssKeyFormatError.Truncated, Invariant($"FSS key data is truncated: the stream ended {read} bytes into the {ChecksumSize}-byte checksum."));
            }

            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            hash.AppendData(header);
            hash.AppendData(data.AsSpan(0, body));
            Span<byte> actual = stackalloc byte[ChecksumSize];
            hash.GetHashAndReset(actual);
            VerifyChecksum(actual, checksum);
            CheckExpectations(h, expectedKind, expectedParty, expectedParameters);
            return Create(h, data);
        }
        catch
        {
            CryptographicOperations.ZeroMemory(data);
            throw;
        }
    }

    public static FssKeyCollection Read(ReadOnlySpan<byte> data, FssKeyKind? expectedKind, Party? expectedParty, FssKeyParameters? expectedParameters)
    {
        if (data.Length < HeaderSize)
        {
            throw Error(FssKeyFormatError.Truncated, $"FSS key data is truncated: {data.Length} bytes, shorter than the {HeaderSize}-byte header.");
        }

        Header h = ParseHeader(data[..HeaderSize]);
        long total = HeaderSize + h.BodyLength + ChecksumSize;
        if (data.Length < total)
        {
            throw Error(FssKeyFormatError.Truncated, Invariant($"FSS key data is truncated: the header declares {h.Count} keys of {h.KeySize} bytes ({total} bytes in all) but the buffer holds {data.Length}."));
        }

        if (data.Length > total)
        {
            throw Error(FssKeyFormatError.LengthMismatch, Invariant($"FSS key data has {data.Length - total} unexpected bytes after the checksum: the header declares {total} bytes in all, the buffer holds {data.Length}."));
        }

        int body = (int)h.BodyLength;
        Span<byte> actual = stackalloc byte[ChecksumSize];
        SHA256.HashData(data[..(HeaderSize + body)], actual);
        VerifyChecksum(actual, data[(HeaderSize + body)..]);
        CheckExpectations(h, expectedKind, expectedParty, expectedParameters);
        byte[] keys = FssKeyCollection.AllocateKeyData(h.Count, h.KeySize);
        data.Slice(HeaderSize, body).CopyTo(keys);
        return Create(h, keys);
    }

    internal static void WriteHeader(Span<byte> s, FssKeyKind kind, Party party, FssKeyParameters p, int count, int keySize)
    {
        s.Clear();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt16LittleEndian(s[8..], Version);
        s[10] = (byte)kind;
        s[11] = (byte)party;
        s[12] = (byte)p.InputBits;
        s[13] = (byte)p.OutputBits;
        BinaryPrimitives.WriteUInt32LittleEndian(s[16..], (uint)p.PayloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], (uint)count);
        BinaryPrimitives.WriteUInt32LittleEndian(s[24..], (uint)keySize);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], (ulong)count * (ulong)keySize);
    }

    private static Header ParseHeader(ReadOnlySpan<byte> s)
    {
        if (!s[..8].SequenceEqual(Magic))
        {
            throw Error(FssKeyFormatError.BadMagic, "Not HssEe FSS key data: the first 8 bytes are not the magic \"HssEeFSS\".");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(s[8..]);
        if (version != Version)
        {
            throw Error(FssKeyFormatError.UnsupportedVersion, $"Unsupported FSS key format version {version}; this library reads version {Version}.");
        }

        byte kind = s[10];
        if (kind is not ((byte)FssKeyKind.Dpf or (byte)FssKeyKind.Dcf))
        {
            throw Error(FssKeyFormatError.InvalidHeader, $"FSS key header: unknown kind {kind} (1 = DPF, 2 = DCF); the data is corrupted.");
        }

        byte party = s[11];
        if (party > 1)
        {
            throw Error(FssKeyFormatError.InvalidHeader, $"FSS key header: party {party} is neither 0 (A) nor 1 (B); the data is corrupted.");
        }

        int n = s[12], ell = s[13];
        uint m = BinaryPrimitives.ReadUInt32LittleEndian(s[16..]);
        if (n is < 1 or > 64 || ell is < 1 or > 64 || m is < 1 or > FssKeyParameters.MaxPayloadLength)
        {
            throw Error(FssKeyFormatError.InvalidHeader, Invariant($"FSS key header: parameters n={n}, ell={ell}, m={m} are out of range (n, ell in [1, 64], m in [1, {FssKeyParameters.MaxPayloadLength}]); the data is corrupted."));
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(s[14..]) != 0 || BinaryPrimitives.ReadUInt32LittleEndian(s[28..]) != 0)
        {
            throw Error(FssKeyFormatError.InvalidHeader, "FSS key header: the reserved fields must be 0; the data is corrupted.");
        }

        var parameters = new FssKeyParameters(n, ell, (int)m);
        var fssKind = (FssKeyKind)kind;
        int keySize = KeySizeOf(fssKind, parameters);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(s[20..]);
        uint declaredKeySize = BinaryPrimitives.ReadUInt32LittleEndian(s[24..]);
        ulong declaredBody = BinaryPrimitives.ReadUInt64LittleEndian(s[32..]);
        if (declaredKeySize != (uint)keySize)
        {
            throw Error(FssKeyFormatError.InvalidHeader, Invariant($"FSS key header: key size {declaredKeySize} bytes, but a {fssKind} key with {parameters} has {keySize}; the data is corrupted."));
        }

        if (count > int.MaxValue || declaredBody != (ulong)count * (ulong)keySize)
        {
            throw Error(FssKeyFormatError.InvalidHeader, Invariant($"FSS key header: key-material length {declaredBody} is not count {count} x key size {keySize}; the data is corrupted."));
        }

        if (declaredBody + FssKeyBits.Slack > (ulong)Array.MaxLength)
        {
            throw Error(FssKeyFormatError.InvalidHeader, Invariant($"FSS key header: {count} keys of {keySize} bytes exceed one array; the data is corrupted or the collection must be split."));
        }

        return new Header(fssKind, (Party)party, parameters, (int)count, keySize, (long)declaredBody);
    }

    private static void VerifyChecksum(ReadOnlySpan<byte> actual, ReadOnlySpan<byte> stored)
    {
        if (!CryptographicOperations.FixedTimeEquals(actual, stored))
        {
            throw Error(FssKeyFormatError.ChecksumMismatch, "FSS key data is corrupted: the SHA-256 checksum over header and keys does not match.");
        }
    }

    private static void CheckExpectations(Header h, FssKeyKind? kind, Party? party, FssKeyParameters? parameters)
    {
        if (kind is { } k && h.Kind != k)
        {
            throw Error(FssKeyFormatError.WrongKind, $"Wrong FSS key kind: the data holds {h.Kind} keys, a {k} key collection was expected.");
        }

        if (party is { } p && h.Party != p)
        {
            throw Error(FssKeyFormatError.WrongParty, $"Wrong party: these FSS keys belong to party {h.Party}, but the reader is party {p}.");
        }

        if (parameters is { } e)
        {
            if (h.Parameters.InputBits != e.InputBits)
            {
                throw Error(FssKeyFormatError.WrongInputBits, Invariant($"Wrong FSS key domain: the keys have n={h.Parameters.InputBits} input bits, n={e.InputBits} was expected."));
            }

            if (h.Parameters.OutputBits != e.OutputBits)
            {
                throw Error(FssKeyFormatError.WrongOutputBits, Invariant($"Wrong FSS key output width: the keys have ell={h.Parameters.OutputBits} output bits, ell={e.OutputBits} was expected."));
            }

            if (h.Parameters.PayloadLength != e.PayloadLength)
            {
                throw Error(FssKeyFormatError.WrongPayloadLength, Invariant($"Wrong FSS key payload length: the keys have m={h.Parameters.PayloadLength}, m={e.PayloadLength} was expected."));
            }
        }
    }

    private static FssKeyCollection Create(Header h, byte[] data) => h.Kind switch
    {
        FssKeyKind.Dcf => new DcfKeyCollection(h.Party, h.Parameters, h.Count, data),
        _ => new DpfKeyCollection(h.Party, h.Parameters, h.Count, data),
    };

    private static FssKeyFormatException Error(FssKeyFormatError error, string message) => new(error, message);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private readonly record struct Header(FssKeyKind Kind, Party Party, FssKeyParameters Parameters, int Count, int KeySize, long BodyLength);
}
