using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace HssEe.Fss;

/// <summary>
/// One party's keys for many FSS functions with the same <see cref="Parameters"/>, stored flat:
/// key <c>i</c> is the <see cref="KeySize"/> bytes at offset <c>i * KeySize</c> of one pinned
/// byte array (no object per key). Keys are secret: <see cref="Dispose()"/> zeroes them and
/// <see cref="ToString"/> never shows key bytes.
/// </summary>
/// <remarks>
/// <para><b>Serialised format, version 1</b> (all integers little-endian), written by <see cref="Write(Stream)"/>:
/// a 40-byte header — magic <c>"HssEeFSS"</c> (8), version u16, kind u8 (<see cref="FssKeyKind"/>),
/// party u8 (0 = A, 1 = B), n u8, ell u8, reserved u16 = 0, m u32, key count u32, key size u32,
/// reserved u32 = 0, key-material length u64 (= count * key size) — then the key material (the keys
/// back to back, <see cref="KeySize"/> bytes each), then SHA-256 of header and key material (32 bytes).</para>
/// <para>The checksum is SHA-256 (hardware SHA extensions on current x64 CPUs, already part of the
/// BCL so no extra dependency): it is collision resistant, so neither random corruption nor a crafted
/// edit of header or key bytes goes unnoticed, and at 1-2 GB/s it costs far less than generating
/// the keys. It is not a MAC: authenticity must come from the channel or storage that carries the
/// keys. Readers verify the checksum before they look at kind, party or parameters, so a changed
/// byte is always reported as corruption, never as a misleading field mismatch.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public abstract class FssKeyCollection : IDisposable
{
    private readonly byte[] _data;
    private bool _disposed;

    private protected FssKeyCollection(FssKeyKind kind, Party party, FssKeyParameters parameters, int count, int keySize, byte[] data)
    {
        Debug.Assert(data.Length >= ((long)count * keySize) + FssKeyBits.Slack, "key data too short");
        Kind = kind;
        Party = party;
        Parameters = parameters;
        Count = count;
        KeySize = keySize;
        _data = data;
    }

    /// <summary>The function family (DPF or DCF).</summary>
    public FssKeyKind Kind { get; }

    /// <summary>The party these keys belong to.</summary>
    public Party Party { get; }

    /// <summary>The parameters (n, ell, m) shared by every key.</summary>
    public FssKeyParameters Parameters { get; }

    /// <summary>Input bit-width n.</summary>
    public int InputBits => Parameters.InputBits;

    /// <summary>Output bit-width ell.</summary>
    public int OutputBits => Parameters.OutputBits;

    /// <summary>Payload length m.</summary>
    public int PayloadLength => Parameters.PayloadLength;

    /// <summary>Number of keys.</summary>
    public int Count { get; }

    /// <summary>Bytes of one key (the formula is documented on <see cref="Dcf"/> and <see cref="Dpf"/>).</summary>
    public int KeySize { get; }

    /// <summary>Bytes of key material: <c>Count * KeySize</c>.</summary>
    public long KeyMaterialSize => (long)Count * KeySize;

    /// <summary>Exact bytes that <see cref="Write(Stream)"/> produces: 40-byte header + key material + 32-byte checksum.</summary>
    public long SerializedSize => FssKeyFormat.HeaderSize + KeyMaterialSize + FssKeyFormat.ChecksumSize;

    /// <summary>True once <see cref="Dispose()"/> has wiped the keys.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>The flat key array (key material plus <see cref="FssKeyBits.Slack"/> zero bytes).</summary>
    internal byte[] Data
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _data;
        }
    }

    /// <summary>The raw array even after disposal (tests check that it was zeroed).</summary>
    internal byte[] DataForTests => _data;

    /// <summary>
    /// Reads a collection of either kind in the format described on <see cref="FssKeyCollection"/>.
    /// </summary>
    /// <param name="stream">Source; read up to the end of the checksum, no further.</param>
    /// <param name="expectedParty">When given, keys of the other party are rejected.</param>
    /// <param name="expectedParameters">When given, keys with another n, ell or m are rejected.</param>
    /// <returns>A <see cref="DcfKeyCollection"/> or a <see cref="DpfKeyCollection"/>.</returns>
    /// <exception cref="FssKeyFormatException">The data is malformed, truncated, corrupted or of the wrong party or parameters.</exception>
    public static FssKeyCollection Read(Stream stream, Party? expectedParty = null, FssKeyParameters? expectedParameters = null) =>
        FssKeyFormat.Read(stream, null, expectedParty, expectedParameters);

    /// <summary>Reads a collection of either kind from a buffer holding exactly one serialised collection.</summary>
    /// <param name="data">The serialised bytes.</param>
    /// <param name="expectedParty">When given, keys of the other party are rejected.</param>
    /// <param name="expectedParameters">When given, keys with another n, ell or m are rejected.</param>
    /// <returns>A <see cref="DcfKeyCollection"/> or a <see cref="DpfKeyCollection"/>.</returns>
    /// <exception cref="FssKeyFormatException">The data is malformed, truncated, corrupted, too long or of the wrong party or parameters.</exception>
    public static FssKeyCollection Read(ReadOnlySpan<byte> data, Party? expectedParty = null, FssKeyParameters? expectedParameters = null) =>
        FssKeyFormat.Read(data, null, expectedParty, expectedParameters);

    /// <summary>Writes the collection in the versioned format described on <see cref="FssKeyCollection"/>.</summary>
    /// <param name="stream">Destination.</param>
    public void Write(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        FssKeyFormat.Write(this, stream);
    }

    /// <summary>Serialises the collection into a new array of <see cref="SerializedSize"/> bytes.</summary>
    /// <returns>The serialised bytes (secret: wipe them when done).</returns>
    public byte[] ToArray()
    {
        byte[] result = new byte[checked((int)SerializedSize)];
        using var stream = new MemoryStream(result);
        Write(stream);
        return result;
    }

    /// <summary>Copies the raw key material (<see cref="KeyMaterialSize"/> bytes: the keys back to back, no header or checksum).</summary>
    /// <param name="destination">At least <see cref="KeyMaterialSize"/> bytes.</param>
    public void CopyKeyMaterialTo(Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _data.AsSpan(0, checked((int)KeyMaterialSize)).CopyTo(destination);
    }

    /// <summary>Zeroes every key byte. Further use throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <inheritdoc />
    public override string ToString()
    {
        string name = Kind == FssKeyKind.Dcf ? "DCF" : "DPF";
        string state = _disposed ? "disposed" : "key material hidden";
        return string.Create(CultureInfo.InvariantCulture, $"{name} keys (party {Party}, {Parameters}): {Count} keys of {KeySize} bytes; {state}");
    }

    /// <summary>Zeroes the keys.</summary>
    /// <param name="disposing">True from <see cref="Dispose()"/>.</param>
    protected virtual void Dispose(bool disposing)
    {
        if (!_disposed)
        {
            CryptographicOperations.ZeroMemory(_data);
            _disposed = true;
        }
    }

    /// <summary>Validates a key range [start, start + count).</summary>
    private protected void CheckRange(int start, int count, string startName)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (start < 0 || count < 0 || start > Count - count)
        {
            throw new ArgumentOutOfRangeException(startName, start, $"Keys [{start}, {(long)start + count}) are outside this collection of {Count} keys.");
        }
    }

    /// <summary>Copies keys [start, start + count) into a new pinned array with slack.</summary>
    private protected byte[] CopyRange(int start, int count)
    {
        CheckRange(start, count, nameof(start));
        byte[] copy = AllocateKeyData(count, KeySize);
        _data.AsSpan(start * KeySize, count * KeySize).CopyTo(copy);
        return copy;
    }

    /// <summary>A zeroed, pinned array for <paramref name="count"/> keys plus slack (pinned: the GC never leaves copies of the secrets behind).</summary>
    internal static byte[] AllocateKeyData(int count, int keySize)
    {
        long length = ((long)count * keySize) + FssKeyBits.Slack;
        if (length > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"{count} keys of {keySize} bytes do not fit one array ({Array.MaxLength} bytes); split the batch.");
        }

        return GC.AllocateArray<byte>((int)length, pinned: true);
    }
}
