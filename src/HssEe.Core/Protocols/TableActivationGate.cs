using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using HssEe.Fss;
using HssEe.Randomness;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>
/// A smooth function P on an n-bit input (|x| &lt; 2^(n-1-f) - h) from one look-up table of 2^m cells of
/// width h = 2^(n-f-m), with linear interpolation inside the cell, in two rounds. Built for GeLU and SiLU.
/// </summary>
/// <remarks>
/// <para><b>Tables.</b> With u = n - m, cell i (signed, -2^(m-1) &lt;= i &lt; 2^(m-1)) is anchored at i h and
/// carries a line fitted to P on (i h - h, i h + h): slope S_i = (P(ih + h) - P(ih - h)) / 2, intercept
/// T_i = the midpoint of the residual's range (a minimax line for convex or concave pieces). The tables
/// store T_i at scale f + u and S_i at scale f.</para>
/// <para><b>Round 1.</b> The parties open Y = x + r mod 2^n. With Y = Yh 2^u + Yl and r = rh 2^u + rl,
/// idx = (Yh - rh) mod 2^m and e = Yl - rl (an integer in (-2^u, 2^u)) satisfy idx 2^u + e = x exactly:
/// idx is x / 2^u rounded down or up, and e the signed offset from the anchor.</para>
/// <para><b>The look-up.</b> The dealer's DPF for the point alpha = rh mod 2^m has early termination at
/// depth 0 (the whole domain in the leaf): party A's key is a seed whose pad G is a pseudorandom
/// 2^m-bit vector, party B's key is G XOR e_alpha. Each party computes v_T = sum_j b_j T[(Yh - j) mod 2^m]
/// (and v_S likewise); v_T,A - v_T,B = sigma T[idx] with sigma = 1 - 2 b_B[alpha] in {+1, -1}, known to the
/// dealer only. Local work is 2^m masked additions per element and table.</para>
/// <para><b>Round 2.</b> The parties open W_T = sigma T + rho_T and W_S = sigma S + rho_S. Then
/// T = sigma (W_T - rho_T), S = sigma (W_S - rho_S) and the output T + S e is, with dealer shares of
/// sigma, sigma rho_T, sigma rl, sigma rho_S and sigma rho_S rl, the local sum
/// <c>W_T [sigma] - [sigma rho_T] + W_S Yl [sigma] - W_S [sigma rl] - Yl [sigma rho_S] + [sigma rho_S rl]</c>,
/// exact in Z_2^64, at scale f + u.</para>
/// <para><b>Opened values.</b> Y is uniform mod 2^n (r is); W_T and W_S are uniform (rho_T, rho_S are).</para>
/// <para><b>Key per element.</b> Party A: 5 ring elements, its dealer shares (40 bytes; step-wide seeds for
/// masks and pads). Party B: 2^m / 8 pad bytes (64 bytes at m = 9; step-wide seeds for masks and dealer shares). Online: ceil(n/8) + 16 bytes
/// each way, two rounds. Approximation error: about max|P''| h^2 / 4 from the lines, plus 2^-(f+1) from
/// rounding the slope table to f bits (measured values in docs/PROTOCOLS.md).</para>
/// </remarks>
internal sealed class TableActivationGate : IGateProtocol
{

    /// <summary>Largest table: 2^12 cells.</summary>
    public const int MaxTableBits = 12;

    private const int ValuesPerElement = 5; // sigma, sigma rho_T, sigma rl, sigma rho_S, sigma rho_S rl

    public static readonly TableActivationGate Instance = new();

    internal static int TableBits(PlanStep step) => (int)step.Parameters[0];

    /// <summary>u: a cell is 2^u ring units wide (n - m for the whole-range table; a parameter when clipped).</summary>
    internal static int CellShift(PlanStep step) => (int)step.Parameters[2];

    /// <summary>Whether the step clips to the table's range (<see cref="ClippedTableActivationGate"/>).</summary>
    internal static bool Clipped(PlanStep step) => step.Parameters[3] != 0;

    /// <summary>Output scale: f + u.</summary>
    internal static int OutputFractionalBits(PlanStep step, int f) => f + CellShift(step);

    /// <summary>Builds the anchor and slope tables (blob: T then S, 2^m ring elements each, index mod 2^m).</summary>
    internal static ulong[] BuildTables(Func<double, double> function, int u, int m, int f)
    {
        int size = 1 << m;
        double h = Math.ScaleB(1.0, u - f);
        var tables = new ulong[2 * size];
        const int Samples = 64;
        for (int i = -(size / 2); i < size / 2; i++)
        {
            double anchor = i * h;
            double slope = (function(anchor + h) - function(anchor - h)) / 2; // per cell
            double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
            for (int s = 0; s <= Samples; s++)
            {
                double t = -h + (2 * h * s / Samples);
                double residual = function(anchor + t) - (slope * t / h);
                lo = Math.Min(lo, residual);
                hi = Math.Max(hi, residual);
            }

            double intercept = (lo + hi) / 2;
            if (!double.IsFinite(intercept) || !double.IsFinite(slope))
            {
                throw new ArgumentException($"The activation function is not finite near x = {anchor}.", nameof(function));
            }

            int index = i & (size - 1);
            tables[index] = Encode(intercept, f + u, "value");
            tables[size + index] = Encode(slope, f, "slope");
        }

        return tables;
    }

    private static ulong Encode(double value, int bits, string what)
    {
        double scaled = Math.Round(Math.ScaleB(value, bits));
        if (Math.Abs(scaled) >= Math.ScaleB(1.0, 62))
        {
            throw new ArgumentException($"An activation table {what} ({value}) does not fit the ring at {bits} fractional bits; use fewer input bits.");
        }

        return (ulong)(long)scaled;
    }

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        if (Clipped(step))
        {
            ClippedTableActivationGate.Instance.Deal(step, prg, a, b);
            return;
        }

        int len = step.Inputs[0].ElementCount, padWords = PadWords(TableBits(step));

        // Masks r, rho_T, rho_S (3 len): both parties' shares come from seeds.
        var masks = new ulong[3 * len];
        (byte[] seedMasksA, byte[] seedMasksB) = GateMath.SeededMask(prg, masks);
        byte[] seedPad = new byte[AesPrg.SeedSize];
        prg.Fill(seedPad);

        var values = new ulong[ValuesPerElement * len];
        var padsB = new ulong[(long)len * padWords];
        DealPadsAndSigma(step, masks, seedPad, values, padsB);
        byte[] seedValuesB = GateMath.ShareDealerValues(prg, values, values.Length);
        WriteKeys(a, b, seedMasksA, seedValuesB, seedPad, seedMasksB, values, padsB);
        Array.Clear(masks);
        Array.Clear(values);
        Array.Clear(padsB);
    }

    /// <summary>
    /// The look-up's dealing: for every element, the DPF point -rh (the evaluator rotates its bit vector by the
    /// opened index, see <see cref="InnerProducts"/>), party B's pad (party A's pad XOR the unit vector) and the
    /// five sigma products sigma, sigma rho_T, sigma rl, sigma rho_S, sigma rho_S rl (row t at [t len, (t + 1) len)).
    /// </summary>
    /// <param name="step">The step.</param>
    /// <param name="masks">r, rho_T and rho_S (3 len elements).</param>
    /// <param name="seedPad">Party A's pad seed.</param>
    /// <param name="sigmaProducts">Receives the five rows.</param>
    /// <param name="padsB">Receives party B's pads.</param>
    internal static void DealPadsAndSigma(PlanStep step, ReadOnlySpan<ulong> masks, byte[] seedPad, Span<ulong> sigmaProducts, Span<ulong> padsB)
    {
        int m = TableBits(step), u = CellShift(step), len = step.Inputs[0].ElementCount, padWords = PadWords(m);
        ulong cellMask = GateMath.Mask(m), lowMask = GateMath.Mask(u);
        const int Chunk = 4096;
        var pad = new ulong[Chunk * padWords];
        for (int start = 0; start < len; start += Chunk)
        {
            int count = Math.Min(Chunk, len - start);
            Pads(seedPad, m, start, pad.AsSpan(0, count * padWords));
            for (int e = 0; e < count; e++)
            {
                int i = start + e;
                ulong r = masks[i], rhoT = masks[len + i], rhoS = masks[(2 * len) + i];
                int alpha = (int)((0 - (r >> u)) & cellMask);
                ulong rl = r & lowMask;
                Span<ulong> mine = pad.AsSpan(e * padWords, padWords);
                ulong sigma = (2 * ((mine[alpha >> 6] >> (alpha & 63)) & 1)) - 1; // +1 or -1 in the ring
                sigmaProducts[i] = sigma;
                sigmaProducts[len + i] = sigma * rhoT;
                sigmaProducts[(2 * len) + i] = sigma * rl;
                sigmaProducts[(3 * len) + i] = sigma * rhoS;
                sigmaProducts[(4 * len) + i] = sigma * rhoS * rl;
                Span<ulong> theirs = padsB.Slice(i * padWords, padWords);
                mine.CopyTo(theirs);
                theirs[alpha >> 6] ^= 1UL << (alpha & 63);
            }
        }

        Array.Clear(pad);
    }

    /// <summary>
    /// Party A: its mask seed, explicit dealer shares (<paramref name="valuesA"/>, from <see cref="GateMath.ShareDealerValues"/>)
    /// and pad seed. Party B: its mask seed, the seed of its dealer shares and its pads. Wipes the seeds.
    /// </summary>
    internal static void WriteKeys(KeyMaterial a, KeyMaterial b, byte[] seedMasksA, byte[] seedValuesB, byte[] seedPad, byte[] seedMasksB, ReadOnlySpan<ulong> valuesA, ReadOnlySpan<ulong> padsB)
    {
        // Party B stores the pads, so party A stores the explicit dealer shares and B their seed: the two
        // records are about the same size, and neither party waits on reading the other's share of the work.
        a.WriteBytes(seedMasksA);
        a.WriteRing(valuesA);
        a.WriteBytes(seedPad);
        b.WriteBytes(seedMasksB);
        b.WriteBytes(seedValuesB);
        b.WriteRing(padsB);
        CryptographicOperations.ZeroMemory(seedMasksA);
        CryptographicOperations.ZeroMemory(seedMasksB);
        CryptographicOperations.ZeroMemory(seedPad);
        CryptographicOperations.ZeroMemory(seedValuesB);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        if (Clipped(step))
        {
            return await ClippedTableActivationGate.Instance.EvaluateAsync(context, step, keys, inputs, cancellationToken).ConfigureAwait(false);
        }

        Share x = inputs[0];
        int n = step.InputBits, m = TableBits(step), u = CellShift(step), len = x.Shape.ElementCount;
        bool isA = context.IsA;

        using TableKeys tk = TableKeys.Read(context, keys, len, m, ValuesPerElement * len);
        ulong[] masks = tk.Masks;
        DealerShareBuffer dealer = tk.Dealer;
        ulong[] work = ScratchPool<ulong>.Rent(2 * len);
        ulong[] y = ScratchPool<ulong>.Rent(len);
        ulong[] w = ScratchPool<ulong>.Rent(2 * len);
        try
        {
            ReadOnlySpan<ulong> xs = x.Value.Span;
            for (int i = 0; i < len; i++)
            {
                work[i] = xs[i] + masks[i];
            }

            await GateMath.OpenIntoAsync(context, work, len, n, y, cancellationToken).ConfigureAwait(false);

            LookUp(step, isA, tk.SeedPad, tk.PadsB, y, masks, len, work);

            await GateMath.OpenIntoAsync(context, work, 2 * len, 64, w, cancellationToken).ConfigureAwait(false);

            ReadOnlySpan<ulong> d = dealer.Span;
            ReadOnlySpan<ulong> sigma = d[..len], sigmaRhoT = d.Slice(len, len), sigmaRl = d.Slice(2 * len, len);
            ReadOnlySpan<ulong> sigmaRhoS = d.Slice(3 * len, len), sigmaRhoSRl = d.Slice(4 * len, len);
            ulong lowMask = GateMath.Mask(u);
            var result = new RingTensor(step.Output);
            Span<ulong> output = result.Span;
            for (int i = 0; i < len; i++)
            {
                ulong wT = w[i], wS = w[len + i], yl = y[i] & lowMask;
                output[i] = (wT * sigma[i]) - sigmaRhoT[i] + (wS * yl * sigma[i]) - (wS * sigmaRl[i]) - (yl * sigmaRhoS[i]) + sigmaRhoSRl[i];
            }

            return new Share(context.Party, result, OutputFractionalBits(step, x.FractionalBits));
        }
        finally
        {
            ScratchPool<ulong>.Return(work);
            ScratchPool<ulong>.Return(y);
            ScratchPool<ulong>.Return(w);
        }
    }

    /// <summary>
    /// The look-up of every element: writes this party's shares of sigma T + rho_T to
    /// <paramref name="destination"/>[i] and of sigma S + rho_S to [len + i]. Party A makes its pads from
    /// <paramref name="seedPad"/> 64 elements at a time (they stay in L1); party B reads them from its record.
    /// </summary>
    internal static void LookUp(PlanStep step, bool isA, byte[]? seedPad, (byte[] Array, int Offset) padsB, ulong[] y, ulong[] masks, int len, ulong[] destination)
    {
        int m = TableBits(step), u = CellShift(step), padWords = PadWords(m);
        Vector128<ulong>[] sums = ByteSums(step);
        ulong cellMask = GateMath.Mask(m);
        FssKeyBits.ForChunks(len, Environment.ProcessorCount, 64, 1024, (start, count) =>
        {
            const int Batch = 64;
            Span<ulong> ownPads = stackalloc ulong[isA ? Batch * padWords : 0];
            for (int b0 = 0; b0 < count; b0 += Batch)
            {
                int batch = Math.Min(Batch, count - b0);
                if (isA)
                {
                    Pads(seedPad!, m, start + b0, ownPads[..(batch * padWords)]);
                }

                ReadOnlySpan<ulong> pads = isA
                    ? ownPads
                    : MemoryMarshal.Cast<byte, ulong>(padsB.Array.AsSpan(padsB.Offset + ((start + b0) * padWords * sizeof(ulong)), batch * padWords * sizeof(ulong)));
                for (int e = 0; e < batch; e++)
                {
                    int i = start + b0 + e;
                    (ulong vT, ulong vS) = InnerProducts(pads.Slice(e * padWords, padWords), sums, m, (int)((y[i] >> u) & cellMask));
                    destination[i] = (isA ? vT : 0 - vT) + masks[len + i];
                    destination[len + i] = (isA ? vS : 0 - vS) + masks[(2 * len) + i];
                }
            }

            if (isA)
            {
                CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(ownPads));
            }
        });
    }

    /// <summary>
    /// Subset sums of the tables per pad byte: entry 256 q + b holds (sum, sum) of (T[8q + k], S[8q + k]) over
    /// the set bits k of b (2^m / 8 * 256 pairs: 256 KiB at m = 9, computed once per step).
    /// </summary>
    private static Vector128<ulong>[] ByteSums(PlanStep step) => SumsCache.GetValue(step, ComputeByteSums);

    // Per plan step (public table data, no secrets): the two in-process parties of a simulation share one copy in cache.
    private static readonly ConditionalWeakTable<PlanStep, Vector128<ulong>[]> SumsCache = new();

    private static Vector128<ulong>[] ComputeByteSums(PlanStep step)
    {
        int m = TableBits(step), size = 1 << m, bytes = Math.Max(1, size / 8);
        ReadOnlySpan<ulong> blob = MemoryMarshal.Cast<byte, ulong>(step.Blob.AsSpan());
        var sums = new Vector128<ulong>[bytes * 256];
        for (int q = 0; q < bytes; q++)
        {
            for (int b = 1; b < 256; b++)
            {
                int k = System.Numerics.BitOperations.TrailingZeroCount(b);
                int index = (8 * q) + k;
                Vector128<ulong> entry = index < size ? Vector128.Create(blob[index], blob[size + index]) : Vector128<ulong>.Zero;
                sums[(q * 256) + b] = sums[(q * 256) + (b & (b - 1))] + entry;
            }
        }

        return sums;
    }

    /// <summary>Pad words (64 bits each) per element.</summary>
    internal static int PadWords(int m) => Math.Max(1, (1 << m) / 64);

    /// <summary>Party A's pads of elements [start, start + count): fixed-key AES in counter mode from the seed.</summary>
    internal static void Pads(ReadOnlySpan<byte> seed, int m, int start, Span<ulong> destination)
    {
        int words = PadWords(m);
        int blocksPerElement = Math.Max(1, words / 2);
        var blocks = MemoryMarshal.Cast<ulong, Vector128<byte>>(destination);
        if (words == 1)
        {
            // Small tables: one block per element, the low word used.
            Span<Vector128<byte>> one = stackalloc Vector128<byte>[1];
            for (int e = 0; e < destination.Length; e++)
            {
                FixedKeyAes.CounterStream(Vector128.Create(seed), (ulong)(start + e), one);
                destination[e] = one[0].AsUInt64().ToScalar() & GateMath.Mask(1 << m);
            }

            return;
        }

        FixedKeyAes.CounterStream(Vector128.Create(seed), (ulong)start * (ulong)blocksPerElement, blocks);
    }

    /// <summary>
    /// sum_k g_k T[k] and sum_k g_k S[k], where g is the pad <paramref name="bits"/> rotated up by
    /// <paramref name="shift"/> (g_k = b_(k - shift mod 2^m)): with the DPF point at -alpha, the unit
    /// vector's term lands on T[shift - alpha]. Rotating the bits instead of the table lets every pad byte
    /// select a precomputed subset sum (<see cref="ByteSums"/>): 2^m / 8 loads and adds per element. Each rotated
    /// pad word is formed in a register from two pad words and its eight bytes index the sums directly (four
    /// accumulators), so the rotated pad is never stored and re-read.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (ulong T, ulong S) InnerProducts(ReadOnlySpan<ulong> bits, Vector128<ulong>[] sums, int m, int shift)
    {
        int size = 1 << m;
        if (sums.Length < Math.Max(1, size / 8) * 256)
        {
            throw new ArgumentException($"The byte sums hold {sums.Length} entries; 2^{m} cells need {Math.Max(1, size / 8) * 256}.", nameof(sums));
        }

        ref Vector128<ulong> table = ref MemoryMarshal.GetArrayDataReference(sums);
        Vector128<ulong> acc0 = Vector128<ulong>.Zero, acc1 = Vector128<ulong>.Zero, acc2 = Vector128<ulong>.Zero, acc3 = Vector128<ulong>.Zero;
        if (m < 6)
        {
            ulong mask = GateMath.Mask(size);
            ulong v = bits[0] & mask;
            ulong x = shift == 0 ? v : ((v << shift) | (v >> (size - shift))) & mask;
            for (int q = 0; q < Math.Max(1, size / 8); q++)
            {
                acc0 += Unsafe.Add(ref table, (q * 256) + (int)((x >> (8 * q)) & 255));
            }
        }
        else
        {
            int words = PadWords(m), w = shift >> 6, b = shift & 63, wordMask = words - 1;
            if (bits.Length < words)
            {
                throw new ArgumentException($"The pad has {bits.Length} words; 2^{m} cells need {words}.", nameof(bits));
            }

            ref ulong pad = ref MemoryMarshal.GetReference(bits);

            // Byte k of a rotated word selects entry 256 (8 i + k) + byte: its byte offset (byte << 4) is the word
            // shifted and masked to 0xFF0, and the sub-table's offset 0x1000 k is a constant displacement.
            ref byte t = ref Unsafe.As<Vector128<ulong>, byte>(ref table);
            for (int i = 0; i < words; i++)
            {
                // Word i of the pad rotated up by shift bits; the split right shift makes b = 0 contribute nothing from lo.
                ulong hi = Unsafe.Add(ref pad, (i - w) & wordMask), lo = Unsafe.Add(ref pad, (i - w - 1) & wordMask);
                ulong x = (hi << b) | ((lo >> 1) >> (63 - b));
                acc0 += Entry(ref t, (x << 4) & 0xFF0);
                acc1 += Entry(ref t, ((x >> 4) & 0xFF0) + 0x1000);
                acc2 += Entry(ref t, ((x >> 12) & 0xFF0) + 0x2000);
                acc3 += Entry(ref t, ((x >> 20) & 0xFF0) + 0x3000);
                acc0 += Entry(ref t, ((x >> 28) & 0xFF0) + 0x4000);
                acc1 += Entry(ref t, ((x >> 36) & 0xFF0) + 0x5000);
                acc2 += Entry(ref t, ((x >> 44) & 0xFF0) + 0x6000);
                acc3 += Entry(ref t, ((x >> 52) & 0xFF0) + 0x7000);
                t = ref Unsafe.AddByteOffset(ref t, (nuint)0x8000);
            }
        }

        Vector128<ulong> total = (acc0 + acc1) + (acc2 + acc3);
        return (total.GetElement(0), total.GetElement(1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Entry(ref byte table, ulong byteOffset) =>
        Unsafe.As<byte, Vector128<ulong>>(ref Unsafe.AddByteOffset(ref table, (nuint)byteOffset));

    /// <summary>The definition of <see cref="InnerProducts"/>, bit by bit (tests).</summary>
    internal static (ulong T, ulong S) InnerProductsReference(ReadOnlySpan<ulong> bits, ReadOnlySpan<ulong> tables, int m, int shift)
    {
        int size = 1 << m;
        ulong t = 0, s = 0;
        for (int j = 0; j < size; j++)
        {
            if (((bits[j >> 6] >> (j & 63)) & 1) != 0)
            {
                int k = (j + shift) & (size - 1);
                t += tables[k];
                s += tables[size + k];
            }
        }

        return (t, s);
    }

    /// <summary>The byte sums of a plan step (tests).</summary>
    internal static Vector128<ulong>[] ByteSumsForTests(PlanStep step) => ByteSums(step);
}

/// <summary>
/// A party's keys of a table step after any leading comparison keys: its shares of the masks (r, rho_T,
/// rho_S) expanded from its seed, its dealer shares, and its pads (party A: a seed; party B: a view of the
/// record). Disposing wipes the expansions and the seed.
/// </summary>
internal sealed class TableKeys : IDisposable
{
    private TableKeys(ulong[] masks, DealerShareBuffer dealer, byte[]? seedPad, (byte[] Array, int Offset) padsB)
    {
        Masks = masks;
        Dealer = dealer;
        SeedPad = seedPad;
        PadsB = padsB;
    }

    /// <summary>r, rho_T and rho_S shares (3 len elements; pooled, longer).</summary>
    public ulong[] Masks { get; }

    /// <summary>The dealer shares.</summary>
    public DealerShareBuffer Dealer { get; }

    /// <summary>Party A's pad seed.</summary>
    public byte[]? SeedPad { get; }

    /// <summary>Party B's pads in its record.</summary>
    public (byte[] Array, int Offset) PadsB { get; }

    public static TableKeys Read(GateContext context, StepKeys keys, int len, int m, int dealerValues)
    {
        byte[] seedMasks = keys.TakeBytes(AesPrg.SeedSize).ToArray();
        ulong[] masks = ScratchPool<ulong>.Rent(3 * len);
        GateMath.ExpandSeed(seedMasks, masks.AsSpan(0, 3 * len));
        CryptographicOperations.ZeroMemory(seedMasks);
        DealerShareBuffer dealer = GateMath.DealerShares(context, keys, dealerValues, seeded: Party.B);
        return context.IsA
            ? new TableKeys(masks, dealer, keys.TakeBytes(AesPrg.SeedSize).ToArray(), default)
            : new TableKeys(masks, dealer, null, keys.TakeSegment(checked(len * TableActivationGate.PadWords(m) * sizeof(ulong))));
    }

    public void Dispose()
    {
        if (SeedPad is not null)
        {
            CryptographicOperations.ZeroMemory(SeedPad);
        }

        Dealer.Dispose();
        ScratchPool<ulong>.Return(Masks);
    }
}
