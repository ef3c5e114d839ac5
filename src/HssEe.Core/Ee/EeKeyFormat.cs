using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace HssEe.Ee;

/// <summary>The versioned binary format of exported EE keys (documented on <see cref="EeKey.ExportSecretKeyMaterial"/>).</summary>
internal static class EeKeyFormat
{
    public const ushort Version = 1;
    public const int HeaderSize = 16; // magic 8, version 2, reserved 2, total length 4
    public const int ChecksumSize = 32;
    public const int MinimumSize = HeaderSize + EeKey.SeedSize + 2 + ChecksumSize;
    private const int BoundaryFixedSize = 1 + 1 + 4 + 4;

    public static ReadOnlySpan<byte> Magic => "HssEeKey"u8;

    public static byte[] Write(ReadOnlySpan<byte> seed, EeKeySpec spec)
    {
        int length = MinimumSize;
        foreach (EeBoundary b in spec)
        {
            length += BoundaryFixedSize + b.Name.Length;
        }

        byte[] data = new byte[length];
        Span<byte> s = data;
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt16LittleEndian(s[8..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(s[10..], 0);
        BinaryPrimitives.WriteInt32LittleEndian(s[12..], length);
        seed.CopyTo(s[HeaderSize..]);
        int p = HeaderSize + EeKey.SeedSize;
        BinaryPrimitives.WriteUInt16LittleEndian(s[p..], (ushort)spec.Count);
        p += 2;
        foreach (EeBoundary b in spec)
        {
            s[p++] = (byte)b.Name.Length;
            p += Encoding.ASCII.GetBytes(b.Name, s[p..]);
            s[p++] = (byte)b.Kind;
            BinaryPrimitives.WriteInt32LittleEndian(s[p..], b.Dimension);
            BinaryPrimitives.WriteInt32LittleEndian(s[(p + 4)..], b.Heads);
            p += 8;
        }

        SHA256.HashData(s[..p], s[p..]);
        return data;
    }

    public static EeKey Read(ReadOnlySpan<byte> data, Func<byte[], EeKeySpec, EeKey> create)
    {
        if (data.Length < MinimumSize)
        {
            throw new FormatException($"EE key data is too short: {data.Length} bytes, a version-{Version} key has at least {MinimumSize}.");
        }

        if (!data[..8].SequenceEqual(Magic))
        {
            throw new FormatException("Not an HssEe EE key: the magic bytes are not \"HssEeKey\".");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(data[8..]);
        if (version != Version)
        {
            throw new FormatException($"Unsupported EE key format version {version}; this library reads version {Version}.");
        }

        uint declared = BinaryPrimitives.ReadUInt32LittleEndian(data[12..]);
        if (declared != (uint)data.Length)
        {
            throw new FormatException($"EE key length mismatch: the header says {declared} bytes, got {data.Length} (truncated or padded data).");
        }

        int body = data.Length - ChecksumSize;
        Span<byte> hash = stackalloc byte[ChecksumSize];
        SHA256.HashData(data[..body], hash);
        if (!CryptographicOperations.FixedTimeEquals(hash, data[body..]))
        {
            throw new CryptographicException("EE key checksum mismatch: the data is corrupted.");
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(data[10..]) != 0)
        {
            throw new FormatException("EE key header: the reserved field must be 0.");
        }

        int p = HeaderSize + EeKey.SeedSize;
        int count = BinaryPrimitives.ReadUInt16LittleEndian(data[p..]);
        p += 2;
        var boundaries = new List<EeBoundary>(count);
        for (int i = 0; i < count; i++)
        {
            if (p + 1 > body)
            {
                throw new FormatException($"EE key specification is truncated at boundary {i} of {count}.");
            }

            int nameLength = data[p++];
            if (p + nameLength + BoundaryFixedSize - 1 > body)
            {
                throw new FormatException($"EE key specification is truncated at boundary {i} of {count}.");
            }

            string name = Encoding.ASCII.GetString(data.Slice(p, nameLength));
            p += nameLength;
            var kind = (EeTransformKind)data[p++];
            int dimension = BinaryPrimitives.ReadInt32LittleEndian(data[p..]);
            int heads = BinaryPrimitives.ReadInt32LittleEndian(data[(p + 4)..]);
            p += 8;
            try
            {
                boundaries.Add(new EeBoundary(name, kind, dimension, heads));
            }
            catch (ArgumentException e)
            {
                throw new FormatException($"EE key specification: boundary {i} is invalid: {e.Message}", e);
            }
        }

        if (p != body)
        {
            throw new FormatException($"EE key specification: {body - p} unexpected bytes after {count} boundaries.");
        }

        EeKeySpec spec;
        try
        {
            spec = new EeKeySpec(boundaries);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"EE key specification is invalid: {e.Message}", e);
        }

        byte[] seed = FeatureTransform.SecretArray<byte>(EeKey.SeedSize);
        try
        {
            data.Slice(HeaderSize, EeKey.SeedSize).CopyTo(seed);
            return create(seed, spec);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }
}
