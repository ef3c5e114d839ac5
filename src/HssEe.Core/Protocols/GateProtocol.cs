using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using HssEe.Randomness;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>One two-party operation: how the dealer makes its keys and how a party evaluates it.</summary>
internal interface IGateProtocol
{
    /// <summary>Writes party A's and party B's key material for <paramref name="step"/>.</summary>
    void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b);

    /// <summary>Runs the step for one party; <paramref name="keys"/> are this party's keys of the step.</summary>
    Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken);
}

/// <summary>What a gate needs while it runs on one party.</summary>
internal sealed class GateContext
{
    public GateContext(Party party, Runtime.PartyChannel channel, Compute.ComputeBackend backend)
    {
        Party = party;
        Channel = channel;
        Backend = backend;
    }

    public Party Party { get; }

    public Runtime.PartyChannel Channel { get; }

    public Compute.ComputeBackend Backend { get; }

    public bool IsA => Party == Party.A;
}

/// <summary>A growable buffer of one party's key material for one step; wiped when disposed.</summary>
internal sealed class KeyMaterial : IDisposable
{
    private byte[] _buffer = new byte[256];
    private int _length;

    public int Length => _length;

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    public void WriteBytes(ReadOnlySpan<byte> data)
    {
        Ensure(data.Length);
        data.CopyTo(_buffer.AsSpan(_length));
        _length += data.Length;
    }

    public void WriteRing(ReadOnlySpan<ulong> values) => WriteBytes(MemoryMarshal.AsBytes(values));

    /// <summary>Appends <paramref name="count"/> zero bytes and returns them, for key generators that write in place.</summary>
    public Span<byte> Append(int count)
    {
        Ensure(count);
        Span<byte> appended = _buffer.AsSpan(_length, count);
        appended.Clear();
        _length += count;
        return appended;
    }

    public void Reset()
    {
        CryptographicOperations.ZeroMemory(_buffer.AsSpan(0, _length));
        _length = 0;
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_buffer);
        _length = 0;
    }

    private void Ensure(int extra)
    {
        if (_length + extra <= _buffer.Length)
        {
            return;
        }

        long size = Math.Max((long)_buffer.Length * 2, (long)_length + extra);
        if (size > Array.MaxLength)
        {
            throw new InvalidOperationException("Key material of one step exceeds the maximum array size; split the step.");
        }

        byte[] bigger = new byte[size];
        _buffer.AsSpan(0, _length).CopyTo(bigger);
        CryptographicOperations.ZeroMemory(_buffer);
        _buffer = bigger;
    }
}

/// <summary>Shared helpers of the gates: masked openings and seed-compressed key material.</summary>
internal static class GateMath
{
    /// <summary>Mask of the low <paramref name="bits"/> bits.</summary>
    public static ulong Mask(int bits) => bits >= 64 ? ulong.MaxValue : (1UL << bits) - 1;

    /// <summary>Bytes per element when n-bit values are sent packed.</summary>
    public static int BytesPerElement(int bits) => (bits + 7) / 8;

    /// <summary>
    /// Opens <c>(values_A + values_B) mod 2^bits</c>: each party sends its values reduced to
    /// <paramref name="bits"/> bits in ceil(bits/8) bytes per element, one round.
    /// </summary>
    public static async Task<ulong[]> OpenAsync(GateContext context, ulong[] mine, int bits, CancellationToken cancellationToken)
    {
        var opened = new ulong[mine.Length];
        await OpenIntoAsync(context, mine, mine.Length, bits, opened, cancellationToken).ConfigureAwait(false);
        return opened;
    }

    /// <summary>
    /// <see cref="OpenAsync"/> of the first <paramref name="count"/> values into <paramref name="opened"/>
    /// (which may be a pooled buffer; full 64-bit openings go straight through the channel without packing).
    /// </summary>
    public static async Task OpenIntoAsync(GateContext context, ulong[] mine, int count, int bits, ulong[] opened, CancellationToken cancellationToken)
    {
        int width = BytesPerElement(bits);
        ulong mask = Mask(bits);
        if (width == 8)
        {
            await context.Channel.ExchangeAsync(mine.AsMemory(0, count), opened.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            byte[] send = ScratchPool<byte>.Rent(count * width);
            byte[] receive = ScratchPool<byte>.Rent(count * width);
            try
            {
                Pack(mine.AsSpan(0, count), send.AsSpan(0, count * width), width, mask);
                await ExchangeAsync(context, send.AsMemory(0, count * width), receive.AsMemory(0, count * width), cancellationToken).ConfigureAwait(false);
                Unpack(receive.AsSpan(0, count * width), opened.AsSpan(0, count), width);
            }
            finally
            {
                ScratchPool<byte>.Return(send);
                ScratchPool<byte>.Return(receive);
            }
        }

        Span<ulong> values = opened.AsSpan(0, count);
        TensorPrimitives.Add(values, mine.AsSpan(0, count), values);
        if (mask != ulong.MaxValue)
        {
            TensorPrimitives.BitwiseAnd(values, mask, values);
        }
    }

    /// <summary>Sends <paramref name="send"/> and receives the peer's message of <paramref name="receive"/>'s length concurrently (one round).</summary>
    public static async Task ExchangeAsync(GateContext context, ReadOnlyMemory<byte> send, Memory<byte> receive, CancellationToken cancellationToken)
    {
        ValueTask sending = context.Channel.SendAsync(send, cancellationToken);
        await context.Channel.ReceiveAsync(receive, cancellationToken).ConfigureAwait(false);
        await sending.ConfigureAwait(false);
    }

    /// <summary>Fills <paramref name="destination"/> from a fresh derived seed, and returns the seed (what the party's key stores).</summary>
    public static byte[] SeededShares(AesPrg dealerPrg, Span<ulong> destination)
    {
        byte[] seed = new byte[AesPrg.SeedSize];
        dealerPrg.Fill(seed);
        using AesPrg expand = AesPrg.FromDerivedSeed(seed);
        expand.Fill(destination);
        return seed;
    }

    /// <summary>
    /// Reads this party's dealer shares written by <see cref="SeededShares"/> (party A: a 16-byte seed
    /// expanded here) or written explicitly (party B).
    /// </summary>
    public static void ReadDealerShares(GateContext context, StepKeys keys, Span<ulong> destination)
    {
        if (context.IsA)
        {
            ExpandSeed(keys.TakeBytes(AesPrg.SeedSize), destination);
        }
        else
        {
            keys.TakeRing(destination);
        }
    }

    /// <summary>
    /// Writes party A's mask seed and dealer-share seed and party B's mask seed and explicit shares (the layout
    /// <see cref="DealerShares"/> reads after the mask seed), then wipes the three seeds.
    /// </summary>
    public static void WriteSeededKeys(KeyMaterial a, KeyMaterial b, byte[] seedA, byte[] seedValuesA, byte[] seedB, ReadOnlySpan<ulong> valuesB)
    {
        a.WriteBytes(seedA);
        a.WriteBytes(seedValuesA);
        b.WriteBytes(seedB);
        b.WriteRing(valuesB);
        CryptographicOperations.ZeroMemory(seedA);
        CryptographicOperations.ZeroMemory(seedB);
        CryptographicOperations.ZeroMemory(seedValuesA);
    }

    /// <summary>Generates one comparison-DCF key of depth <paramref name="n"/> per alpha straight into both parties' key material.</summary>
    public static void AppendComparisonKeys(PlanStep step, int n, ReadOnlySpan<ulong> alphas, AesPrg dealerPrg, KeyMaterial a, KeyMaterial b)
    {
        long bytes = Fss.BitDcf.BatchBytes(n, alphas.Length);
        if (bytes > Array.MaxLength / 2)
        {
            throw new InvalidOperationException($"{step}: {alphas.Length} elements need {bytes} bytes of comparison keys per party; split the step.");
        }

        Fss.BitDcf.Generate(n, alphas, dealerPrg, a.Append((int)bytes), b.Append((int)bytes));
    }

    /// <summary>
    /// Turns <paramref name="values"/> (<paramref name="ringCount"/> ring elements, then bit words) into the explicit
    /// party's shares in place: the seeded party's shares (party A's, unless a gate swaps the roles) are the expansion
    /// of the returned seed, the explicit ring shares are value - seeded and the bit words value XOR seeded.
    /// </summary>
    public static byte[] ShareDealerValues(AesPrg dealerPrg, Span<ulong> values, int ringCount)
    {
        var sharesA = new ulong[values.Length];
        byte[] seed = SeededShares(dealerPrg, sharesA);
        for (int i = 0; i < ringCount; i++)
        {
            values[i] -= sharesA[i];
        }

        for (int i = ringCount; i < values.Length; i++)
        {
            values[i] ^= sharesA[i];
        }

        Array.Clear(sharesA);
        return seed;
    }

    /// <summary>
    /// A mask that neither party stores: each party's share is the expansion of its own seed (returned), and
    /// <paramref name="sum"/> receives the mask r = r_A + r_B the dealer needs.
    /// </summary>
    public static (byte[] SeedA, byte[] SeedB) SeededMask(AesPrg dealerPrg, Span<ulong> sum)
    {
        byte[] seedA = new byte[AesPrg.SeedSize], seedB = new byte[AesPrg.SeedSize];
        dealerPrg.Fill(seedA);
        dealerPrg.Fill(seedB);
        ExpandSeed(seedA, sum);
        var other = new ulong[sum.Length];
        ExpandSeed(seedB, other);
        for (int i = 0; i < sum.Length; i++)
        {
            sum[i] += other[i];
        }

        Array.Clear(other);
        return (seedA, seedB);
    }

    /// <summary>
    /// This party's <paramref name="count"/> dealer shares written by <see cref="SeededShares"/>, without
    /// copying: the <paramref name="seeded"/> party (A unless a gate says otherwise) expands its seed into a
    /// pooled buffer, the other party's view points into the key record.
    /// </summary>
    public static DealerShareBuffer DealerShares(GateContext context, StepKeys keys, int count, Party seeded = Party.A)
    {
        if (context.Party == seeded)
        {
            ulong[] rented = ScratchPool<ulong>.Rent(count);
            ExpandSeed(keys.TakeBytes(AesPrg.SeedSize), rented.AsSpan(0, count));
            return new DealerShareBuffer(rented, null, 0, count);
        }

        (byte[] array, int offset) = keys.TakeSegment(checked(count * sizeof(ulong)));
        return new DealerShareBuffer(null, array, offset, count);
    }

    /// <summary>Expands a seed stored in a key into ring elements.</summary>
    public static void ExpandSeed(ReadOnlySpan<byte> seed, Span<ulong> destination)
    {
        using AesPrg expand = AesPrg.FromDerivedSeed(seed);
        expand.Fill(destination);
    }

    /// <summary>
    /// Values [<paramref name="first"/>, <paramref name="first"/> + destination.Length) of <see cref="ExpandSeed"/>'s
    /// expansion of <paramref name="seed"/>, without the values before them: value v is half v % 2 (little-endian) of
    /// block v / 2 of the counter stream.
    /// </summary>
    public static void ExpandSeedRange(ReadOnlySpan<byte> seed, long first, Span<ulong> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        if (destination.IsEmpty)
        {
            return;
        }

        Vector128<byte> key = Vector128.Create(seed);
        ulong block = (ulong)first / 2;
        Span<Vector128<byte>> one = stackalloc Vector128<byte>[1];
        if ((first & 1) != 0)
        {
            FixedKeyAes.CounterStream(key, block++, one);
            destination[0] = one[0].AsUInt64().GetElement(1);
            destination = destination[1..];
        }

        int pairs = destination.Length / 2;
        FixedKeyAes.CounterStream(key, block, MemoryMarshal.Cast<ulong, Vector128<byte>>(destination[..(2 * pairs)]));
        if ((destination.Length & 1) != 0)
        {
            FixedKeyAes.CounterStream(key, block + (ulong)pairs, one);
            destination[^1] = one[0].AsUInt64().GetElement(0);
        }

        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(one));
    }

    private static void Pack(ReadOnlySpan<ulong> values, Span<byte> destination, int width, ulong mask)
    {
        if (width == 8 && mask == ulong.MaxValue)
        {
            MemoryMarshal.AsBytes(values).CopyTo(destination);
            return;
        }

        switch (BitConverter.IsLittleEndian ? width : 0)
        {
            case 1:
                for (int i = 0; i < values.Length; i++)
                {
                    destination[i] = (byte)(values[i] & mask);
                }

                return;
            case 2:
                Span<ushort> halves = MemoryMarshal.Cast<byte, ushort>(destination);
                for (int i = 0; i < values.Length; i++)
                {
                    halves[i] = (ushort)(values[i] & mask);
                }

                return;
            case 4:
                Span<uint> words = MemoryMarshal.Cast<byte, uint>(destination);
                for (int i = 0; i < values.Length; i++)
                {
                    words[i] = (uint)(values[i] & mask);
                }

                return;
        }

        // Other widths: overlapping 8-byte little-endian writes, each overwriting the previous one's zero high bytes.
        int fast = BitConverter.IsLittleEndian ? Math.Max(0, values.Length - ((8 + width - 1) / width)) : 0;
        ref byte d = ref MemoryMarshal.GetReference(destination);
        for (int i = 0; i < fast; i++)
        {
            System.Runtime.CompilerServices.Unsafe.WriteUnaligned(ref System.Runtime.CompilerServices.Unsafe.Add(ref d, i * width), values[i] & mask);
        }

        Span<byte> tmp = stackalloc byte[8];
        for (int i = fast; i < values.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(tmp, values[i] & mask);
            tmp[..width].CopyTo(destination.Slice(i * width, width));
        }
    }

    private static void Unpack(ReadOnlySpan<byte> source, Span<ulong> values, int width)
    {
        if (width == 8)
        {
            source.CopyTo(MemoryMarshal.AsBytes(values));
            return;
        }

        switch (BitConverter.IsLittleEndian ? width : 0)
        {
            case 1:
                for (int i = 0; i < values.Length; i++)
                {
                    values[i] = source[i];
                }

                return;
            case 2:
                ReadOnlySpan<ushort> halves = MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < values.Length; i++)
                {
                    values[i] = halves[i];
                }

                return;
            case 4:
                ReadOnlySpan<uint> words = MemoryMarshal.Cast<byte, uint>(source);
                for (int i = 0; i < values.Length; i++)
                {
                    values[i] = words[i];
                }

                return;
        }

        int fast = BitConverter.IsLittleEndian ? Math.Max(0, values.Length - ((8 + width - 1) / width)) : 0;
        ulong widthMask = Mask(8 * width);
        ref byte src = ref MemoryMarshal.GetReference(source);
        for (int i = 0; i < fast; i++)
        {
            values[i] = System.Runtime.CompilerServices.Unsafe.ReadUnaligned<ulong>(ref System.Runtime.CompilerServices.Unsafe.Add(ref src, i * width)) & widthMask;
        }

        Span<byte> tmp = stackalloc byte[8];
        for (int i = fast; i < values.Length; i++)
        {
            tmp.Clear();
            source.Slice(i * width, width).CopyTo(tmp);
            values[i] = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(tmp);
        }
    }
}

/// <summary>Dealer shares of one step: a pooled expansion (party A) or a view of the key record (party B).</summary>
internal readonly struct DealerShareBuffer : IDisposable
{
    private readonly ulong[]? _rented;
    private readonly byte[]? _record;
    private readonly int _offset;
    private readonly int _count;

    public DealerShareBuffer(ulong[]? rented, byte[]? record, int offset, int count)
    {
        _rented = rented;
        _record = record;
        _offset = offset;
        _count = count;
    }

    /// <summary>The shares (valid until the step's keys are disposed).</summary>
    public ReadOnlySpan<ulong> Span => _rented is not null
        ? _rented.AsSpan(0, _count)
        : MemoryMarshal.Cast<byte, ulong>(_record.AsSpan(_offset, _count * sizeof(ulong)));

    /// <summary>Wipes and returns a pooled expansion (the key record is wiped with the step's keys).</summary>
    public void Dispose()
    {
        if (_rented is not null)
        {
            ScratchPool<ulong>.Return(_rented);
        }
    }
}
