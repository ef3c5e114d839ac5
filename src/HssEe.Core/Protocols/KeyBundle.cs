using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace HssEe.Protocols;

/// <summary>A key bundle is malformed, belongs to another party or plan, is truncated, or is misused.</summary>
public sealed class KeyBundleException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KeyBundleException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong.</param>
    public KeyBundleException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The cause.</param>
    public KeyBundleException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The binary format of key bundles (version 5, little-endian), streamed so that a large
/// model's keys need not sit in memory twice:
/// <list type="bullet">
/// <item>header (72 bytes): magic <c>"HSSEEKB1"</c>, u16 version, u8 party, u8 reserved,
/// 32-byte plan hash, u32 step count, u32 fractional bits, u32 reserved, 16-byte random bundle id
/// (shared by the two parties' bundles of one dealing);</item>
/// <item>one record per plan step: u32 step index, u16 operation kind, u16 reserved, u64 payload
/// length, the payload (the step's key material), and a 32-byte chained checksum
/// <c>SHA-256(previous checksum || record header || D(payload))</c>, where D is the fast 128-bit
/// NH + fixed-key-AES checksum of the payload (<see cref="PayloadDigest"/>; version 1 used one AES
/// block per 16 bytes instead; version 2 stored a table activation's dealer shares with party B, version 3
/// stores them with party A and their seed with party B, version 4 merges them into 2 degree + 2 values per
/// element and adds parabolic tables and top-bits truncations, version 5 lets the one-bit comparison keys resolve
/// their last 8 input bits in a two-block leaf (same sizes, another layout) and deals a clipped table activation whose
/// left tail is 0 two fewer rows of dealer shares); the chain starts from SHA-256 of the header;</item>
/// <item>an end record: index 0xFFFFFFFF, kind 0, length 0, and its chained checksum.</item>
/// </list>
/// A reader verifies each record before handing its keys out, so a corrupted, truncated,
/// reordered or foreign record is refused before any of its keys is used. A process opens each
/// (bundle id, party) once: replaying a bundle, which would reuse its masks, is refused.
/// </summary>
public static class KeyBundleFormat
{
    /// <summary>Format version written and accepted.</summary>
    public const ushort Version = 5;

    /// <summary>Header size in bytes.</summary>
    public const int HeaderSize = 72;

    /// <summary>Record header size in bytes (before the payload).</summary>
    public const int RecordHeaderSize = 16;

    /// <summary>Checksum size in bytes after each record.</summary>
    public const int ChecksumSize = 32;

    internal const uint EndIndex = uint.MaxValue;

    internal static ReadOnlySpan<byte> Magic => "HSSEEKB1"u8;
}

/// <summary>Writes one party's key bundle for a plan, record by record (used by the dealer).</summary>
internal sealed class KeyBundleWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly Plan _plan;
    private byte[] _chain;
    private int _nextStep;
    private bool _completed;

    public KeyBundleWriter(Stream stream, Party party, Plan plan, ReadOnlySpan<byte> bundleId)
    {
        _stream = stream;
        _plan = plan;
        Party = party;
        Span<byte> header = stackalloc byte[KeyBundleFormat.HeaderSize];
        header.Clear();
        KeyBundleFormat.Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header[8..], KeyBundleFormat.Version);
        header[10] = (byte)party;
        plan.Hash.CopyTo(header[12..]);
        BinaryPrimitives.WriteUInt32LittleEndian(header[44..], (uint)plan.Steps.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[48..], (uint)plan.FractionalBits);
        bundleId.CopyTo(header[56..]);
        _stream.Write(header);
        _chain = SHA256.HashData(header);
        BytesWritten = KeyBundleFormat.HeaderSize;
    }

    public Party Party { get; }

    public long BytesWritten { get; private set; }

    /// <summary>Writes the key material of the next step.</summary>
    public void WriteStep(PlanStep step, ReadOnlySpan<byte> payload)
    {
        if (_completed || step.Index != _nextStep || !ReferenceEquals(_plan.Steps[step.Index], step))
        {
            throw new InvalidOperationException($"Dealer wrote keys for {step} out of order (next expected step {_nextStep}).");
        }

        WriteRecord((uint)step.Index, (ushort)step.Kind, payload);
        _nextStep++;
    }

    public void Complete()
    {
        if (_nextStep != _plan.Steps.Length)
        {
            throw new InvalidOperationException($"Dealer completed the bundle after {_nextStep} of {_plan.Steps.Length} steps.");
        }

        WriteRecord(KeyBundleFormat.EndIndex, 0, default);
        _stream.Flush();
        _completed = true;
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_chain);

    private void WriteRecord(uint index, ushort kind, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[KeyBundleFormat.RecordHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, index);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], kind);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], (ulong)payload.Length);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(_chain);
        hash.AppendData(header);
        hash.AppendData(PayloadDigest.Compute(payload));
        _chain = hash.GetHashAndReset();
        _stream.Write(header);
        _stream.Write(payload);
        _stream.Write(_chain);
        BytesWritten += KeyBundleFormat.RecordHeaderSize + payload.Length + KeyBundleFormat.ChecksumSize;
    }
}

/// <summary>
/// Reads one party's key bundle in plan order, verifying party, plan hash, order and checksums.
/// A step's keys can be read once: the reader only moves forward. A plain <see cref="MemoryStream"/> with an exposed
/// buffer is read in place (each record verified and used where it lies, and wiped there); any other stream is read
/// into pooled buffers.
/// </summary>
internal sealed class KeyBundleReader
{
    private const long MaxRecordPayload = 1L << 34;
    private const int ReadPiece = 1 << 18; // 256 KiB: digested while still in L2
    private readonly Stream _stream;
    private readonly MemoryStream? _memory;
    private readonly Plan _plan;
    private byte[] _chain;
    private int _nextStep;
    private bool _ended;

    public KeyBundleReader(Stream stream, Party party, Plan plan)
    {
        _stream = stream;

        // A plain MemoryStream whose buffer is exposed (one the dealer wrote into): its records are used in place.
        _memory = stream.GetType() == typeof(MemoryStream) && ((MemoryStream)stream).TryGetBuffer(out _) ? (MemoryStream)stream : null;
        _plan = plan;
        Party = party;
        var header = new byte[KeyBundleFormat.HeaderSize];
        ReadExactly(header, "the bundle header");
        if (!header.AsSpan(0, 8).SequenceEqual(KeyBundleFormat.Magic))
        {
            throw new KeyBundleException("Not an HssEe key bundle: wrong magic bytes.");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(8));
        if (version != KeyBundleFormat.Version)
        {
            throw new KeyBundleException($"Key bundle version {version} is not supported (this library reads version {KeyBundleFormat.Version}).");
        }

        var bundleParty = (Party)header[10];
        if (bundleParty != party)
        {
            throw new KeyBundleException($"This key bundle belongs to party {FormatParty(header[10])}, but party {party} tried to use it.");
        }

        if (!header.AsSpan(12, 32).SequenceEqual(plan.Hash))
        {
            throw new KeyBundleException($"This key bundle was generated for plan {Convert.ToHexString(header, 12, 8)}..., not for this plan ({plan.HashHex[..16]}...).");
        }

        uint steps = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(44));
        uint bits = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(48));
        if (steps != plan.Steps.Length || bits != plan.FractionalBits)
        {
            throw new KeyBundleException($"Key bundle header disagrees with the plan: {steps} steps, f={bits} vs {plan.Steps.Length} steps, f={plan.FractionalBits}.");
        }

        string id = Convert.ToHexString(header, 56, 16) + "/" + party;
        lock (OpenedBundles)
        {
            if (!OpenedBundles.Add(id))
            {
                throw new KeyBundleException($"Key bundle {id[..16]}... of party {party} was already opened in this process: its keys are single-use (reuse would leak the masks).");
            }
        }

        _chain = SHA256.HashData(header);
        KeyBytes = KeyBundleFormat.HeaderSize;
    }

    private static readonly HashSet<string> OpenedBundles = [];

    public Party Party { get; }

    /// <summary>Bytes of the bundle read so far.</summary>
    public long KeyBytes { get; private set; }

    /// <summary>True when the records are used where they lie in the bundle's memory stream (no copy; wiped there).</summary>
    public bool InPlace => _memory is not null;

    /// <summary>Reads and verifies the key record of <paramref name="step"/>, which must be the next step.</summary>
    public StepKeys ReadStep(PlanStep step)
    {
        if (_ended || _nextStep >= _plan.Steps.Length)
        {
            throw new KeyBundleException($"Party {Party} asked for keys of {step}, past the end of the plan ({_plan.Steps.Length} steps).");
        }

        if (step.Index != _nextStep)
        {
            throw new KeyBundleException(step.Index < _nextStep
                ? $"Keys of {step} were already used: every key is single-use (reuse would leak the mask)."
                : $"Keys of {step} requested before step {_nextStep}: steps must run in plan order.");
        }

        (uint index, ushort kind, byte[] payload, int start, int length) = ReadRecord($"the keys of {step}");
        if (index != step.Index || kind != (ushort)step.Kind)
        {
            if (_memory is null)
            {
                KeyBufferPool.Return(payload);
            }

            throw new KeyBundleException($"Key bundle record {index} (kind {kind}) does not match {step}: the bundle is out of order or for another plan.");
        }

        _nextStep++;
        return _memory is null ? new StepKeys(step, payload, length) : StepKeys.Borrow(step, payload, start, length);
    }

    /// <summary>Verifies the end record once all steps were read.</summary>
    public void ReadEnd()
    {
        if (_nextStep != _plan.Steps.Length)
        {
            throw new KeyBundleException($"Party {Party} finished after {_nextStep} of {_plan.Steps.Length} plan steps.");
        }

        (uint index, _, _, _, int length) = ReadRecord("the end of the bundle");
        if (index != KeyBundleFormat.EndIndex || length != 0)
        {
            throw new KeyBundleException("The key bundle has records after the last plan step.");
        }

        _ended = true;
    }

    /// <summary>
    /// Reads and verifies the next record: its payload is (array, start, length), in a pooled pinned buffer with
    /// zeroed slack (start 0) or, in place, in the memory stream's own buffer.
    /// </summary>
    private (uint Index, ushort Kind, byte[] Payload, int Start, int Length) ReadRecord(string what)
    {
        var header = new byte[KeyBundleFormat.RecordHeaderSize];
        ReadExactly(header, what);
        uint index = BinaryPrimitives.ReadUInt32LittleEndian(header);
        ushort kind = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(4));
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8));
        if (length > MaxRecordPayload)
        {
            throw new KeyBundleException($"Key bundle record for {what} claims {length} bytes: corrupt.");
        }

        if (length > (ulong)(Array.MaxLength - Fss.FssKeyBits.Slack))
        {
            throw new KeyBundleException($"Key bundle record for {what} is larger than this reader supports ({length} bytes).");
        }

        int size = (int)length;
        if (_memory is not null)
        {
            return ReadRecordInPlace(header, index, kind, size, what);
        }

        // Pinned, with zeroed slack after the payload: FSS key collections can wrap it without a copy.
        // Pooled: large records reuse wiped buffers whose pages are already mapped.
        byte[] payload = KeyBufferPool.Rent(size + Fss.FssKeyBits.Slack);
        payload.AsSpan(size).Clear();
        var digest = new PayloadDigest();
        try
        {
            // Digest each piece right after reading it, while it is still in cache.
            for (int offset = 0; offset < size; offset += ReadPiece)
            {
                Span<byte> piece = payload.AsSpan(offset, Math.Min(ReadPiece, size - offset));
                ReadExactly(piece, what);
                digest.Append(piece);
            }

            VerifyRecord(header, digest.Finish(), size, what);
        }
        catch
        {
            KeyBufferPool.Return(payload);
            throw;
        }

        return (index, kind, payload, 0, size);
    }

    /// <summary>The payload where it lies in the memory stream's buffer: digested there, not copied.</summary>
    private (uint Index, ushort Kind, byte[] Payload, int Start, int Length) ReadRecordInPlace(byte[] header, uint index, ushort kind, int size, string what)
    {
        MemoryStream memory = _memory!;
        if (!memory.TryGetBuffer(out ArraySegment<byte> buffer))
        {
            throw new KeyBundleException($"The key bundle's memory stream stopped exposing its buffer while reading {what}.");
        }

        long position = memory.Position, available = Math.Max(0, memory.Length - position);
        if (available < size)
        {
            throw new KeyBundleException($"Key bundle truncated while reading {what} ({available} of {size} bytes).");
        }

        int start = buffer.Offset + (int)position;
        byte[] digest = PayloadDigest.Compute(buffer.Array.AsSpan(start, size));
        memory.Position = position + size;
        VerifyRecord(header, digest, size, what);
        return (index, kind, buffer.Array!, start, size);
    }

    /// <summary>
    /// Reads the record's stored checksum and compares it with SHA-256(chain || header || payload digest); on a match
    /// the chain and the count of bytes read move on, otherwise the record is refused.
    /// </summary>
    private void VerifyRecord(byte[] header, byte[] digest, int size, string what)
    {
        var checksum = new byte[KeyBundleFormat.ChecksumSize];
        ReadExactly(checksum, what);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(_chain);
        hash.AppendData(header);
        hash.AppendData(digest);
        byte[] expected = hash.GetHashAndReset();
        if (!CryptographicOperations.FixedTimeEquals(expected, checksum))
        {
            throw new KeyBundleException($"Key bundle checksum mismatch at {what}: the bundle is corrupted or was tampered with.");
        }

        _chain = expected;
        KeyBytes += KeyBundleFormat.RecordHeaderSize + (long)size + KeyBundleFormat.ChecksumSize;
    }

    private void ReadExactly(Span<byte> buffer, string what)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = _stream.Read(buffer[total..]);
            if (n == 0)
            {
                throw new KeyBundleException($"Key bundle truncated while reading {what} ({total} of {buffer.Length} bytes).");
            }

            total += n;
        }
    }

    private static string FormatParty(byte b) => b switch
    {
        0 => "A",
        1 => "B",
        _ => $"#{b} (invalid)",
    };
}

/// <summary>
/// The key material of one plan step, consumed front to back exactly once and wiped on dispose: either a pooled,
/// pinned copy of the record (slack zeroed) or, <see cref="InPlace"/>, the record where it lies in the bundle's
/// memory-stream buffer (pinned while the keys live, and wiped there).
/// </summary>
internal sealed class StepKeys : IDisposable
{
    private byte[] _payload;
    private readonly int _start;
    private readonly int _length;
    private int _offset;
    private int _wipedPrefix;
    private GCHandle _pin;
    private byte[]? _leadingCopy;

    /// <param name="step">The step.</param>
    /// <param name="payload">Pinned buffer holding the payload, followed by at least <see cref="Fss.FssKeyBits.Slack"/> zero bytes.</param>
    /// <param name="length">Payload length.</param>
    public StepKeys(PlanStep step, byte[] payload, int length)
    {
        Step = step;
        _payload = payload;
        _length = length;
    }

    private StepKeys(PlanStep step, byte[] buffer, int start, int length)
    {
        Step = step;
        _payload = buffer;
        _start = start;
        _length = length;
        _pin = GCHandle.Alloc(buffer, GCHandleType.Pinned);
        InPlace = true;
    }

    /// <summary>Keys at [<paramref name="start"/>, + <paramref name="length"/>) of a bundle's buffer, used and wiped there.</summary>
    public static StepKeys Borrow(PlanStep step, byte[] buffer, int start, int length) => new(step, buffer, start, length);

    public PlanStep Step { get; }

    /// <summary>True when the keys are used in the bundle's own buffer (no slack after them: the next record follows).</summary>
    public bool InPlace { get; }

    public int Length => _length;

    public int Remaining => _length - _offset;

    /// <summary>
    /// Takes the first <paramref name="count"/> bytes as (array, offset) without a copy: only valid at offset 0. The
    /// array is pinned; the keys may be wiped in place (then say so with <see cref="MarkLeadingWiped"/>).
    /// </summary>
    public (byte[] Array, int Offset) TakeLeading(int count)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        if (_offset != 0)
        {
            throw new InvalidOperationException("Leading key material must be taken first.");
        }

        return TakeSegment(count);
    }

    /// <summary>
    /// Takes the first <paramref name="count"/> bytes as a whole array that starts with them and has
    /// <see cref="Fss.FssKeyBits.Slack"/> zero bytes after them, for an FSS key collection to wrap: the record's own
    /// buffer, or (<see cref="InPlace"/>) a pooled copy that disposal wipes. Only valid at offset 0.
    /// </summary>
    public byte[] TakeLeadingArray(int count)
    {
        (byte[] array, int offset) = TakeLeading(count);
        if (!InPlace)
        {
            return array;
        }

        byte[] copy = KeyBufferPool.Rent(count + Fss.FssKeyBits.Slack);
        array.AsSpan(offset, count).CopyTo(copy);
        copy.AsSpan(count).Clear();
        _leadingCopy = copy;
        return copy;
    }

    /// <summary>Takes the next <paramref name="count"/> bytes.</summary>
    public ReadOnlySpan<byte> TakeBytes(int count)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        if (count < 0 || count > Remaining)
        {
            throw new KeyBundleException($"Key material of {Step} exhausted: needed {count} more bytes, {Remaining} left.");
        }

        ReadOnlySpan<byte> span = _payload.AsSpan(_start + _offset, count);
        _offset += count;
        return span;
    }

    /// <summary>Takes the next <paramref name="count"/> bytes as (array, offset), a view that stays valid until disposal.</summary>
    public (byte[] Array, int Offset) TakeSegment(int count)
    {
        int offset = _start + _offset;
        _ = TakeBytes(count);
        return (_payload, offset);
    }

    /// <summary>Copies the next ring elements into <paramref name="destination"/>.</summary>
    public void TakeRing(Span<ulong> destination) => TakeBytes(destination.Length * sizeof(ulong)).CopyTo(MemoryMarshal.AsBytes(destination));

    /// <summary>Throws unless every byte was consumed (guards against dealer/party disagreement).</summary>
    public void EnsureConsumed()
    {
        if (Remaining != 0)
        {
            throw new KeyBundleException($"{Step} left {Remaining} bytes of key material unused: dealer and party disagree on the step.");
        }
    }

    private bool Disposed { get; set; }

    /// <summary>
    /// Records that the first <paramref name="count"/> bytes (taken with <see cref="TakeLeading"/>) were zeroed
    /// while they were used, so disposal wipes only the rest.
    /// </summary>
    public void MarkLeadingWiped(int count)
    {
        if (count < 0 || count > _offset)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "Only key material already taken can be marked wiped.");
        }

        _wipedPrefix = count;
    }

    public void Dispose()
    {
        if (Disposed)
        {
            return;
        }

        if (_leadingCopy is not null)
        {
            KeyBufferPool.Return(_leadingCopy);
            _leadingCopy = null;
        }

        if (InPlace)
        {
            // The record in the bundle's buffer: wiped there (the bytes after it are the next record's).
            CryptographicOperations.ZeroMemory(_payload.AsSpan(_start + _wipedPrefix, _length - _wipedPrefix));
            _pin.Free();
        }
        else
        {
            // Only [prefix, length + slack) can hold key bytes: the rest of a pooled buffer was zero when rented.
            KeyBufferPool.Return(_payload, _wipedPrefix, Math.Min(_payload.Length, _length + Fss.FssKeyBits.Slack));
        }

        _payload = [];
        _offset = 0;
        Disposed = true;
    }
}
