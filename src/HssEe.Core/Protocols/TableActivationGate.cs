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
/// width h = 2^(n-f-m), with a line (degree 1) or a parabola (degree 2) inside the cell, in two rounds. Built
/// for GeLU and SiLU.
/// </summary>
/// <remarks>
/// <para><b>Tables.</b> With u = n - m, cell i (signed, -2^(m-1) &lt;= i &lt; 2^(m-1)) is anchored at i h and
/// carries a polynomial in t = e / 2^u fitted to P on (i h - h, i h + h): degree 1, the slope S_i =
/// (P(ih + h) - P(ih - h)) / 2; degree 2, S_i and Q_i interpolating P at t = 0 and t = +-cos(pi/6). T_i is the
/// midpoint of the residual's range. The output scale is f + w (w = u for degree 1, 2u + 1 for degree 2): T is
/// stored at scale f + w, S at f + w - u and Q at f + w - 2u, so that T + S e + Q e^2 has scale f + w.</para>
/// <para><b>Round 1.</b> The parties open Y = x + r mod 2^n. With Y = Yh 2^u + Yl and r = rh 2^u + rl,
/// idx = (Yh - rh) mod 2^m and e = Yl - rl (an integer in (-2^u, 2^u)) satisfy idx 2^u + e = x exactly:
/// idx is x / 2^u rounded down or up, and e the signed offset from the anchor.</para>
/// <para><b>The look-up.</b> The dealer's DPF for the point alpha = rh mod 2^m has early termination at
/// depth 0 (the whole domain in the leaf): party A's key is a seed whose pad G is a pseudorandom
/// 2^m-bit vector, party B's key is G XOR e_alpha. Each party computes v_T = sum_j b_j T[(Yh - j) mod 2^m]
/// (and v_S, v_Q likewise); v_T,A - v_T,B = sigma T[idx] with sigma = 1 - 2 b_B[alpha] in {+1, -1}, known to
/// the dealer only. Local work is 2^m / 8 loads of precomputed byte sums per element, or with AVX-512 (m &gt;= 6)
/// 2^m / 4 two-register permutes of nibble sums per value for eight elements (<see cref="InnerProductsEight{TEntry}"/>).</para>
/// <para><b>Round 2.</b> The parties open W_T = sigma T + rho_T, W_S = sigma S + rho_S (and W_Q = sigma Q +
/// rho_Q). Then T = sigma (W_T - rho_T) and so on, and with e = Yl - rl the output is a sum of public values
/// times dealer shares: degree 1, <c>(W_T + W_S Yl) [sigma] - W_S [sigma rl] + Yl [-sigma rho_S] + [sigma (rho_S rl - rho_T)]</c>;
/// degree 2, <c>(W_T + W_S Yl + W_Q Yl^2) [sigma] - (W_S + 2 W_Q Yl) [sigma rl] + W_Q [sigma rl^2]
/// + Yl [sigma (2 rho_Q rl - rho_S)] + Yl^2 [-sigma rho_Q] + [sigma (rho_S rl - rho_T - rho_Q rl^2)]</c>
/// (<see cref="Interpolate"/>), exact in Z_2^64.</para>
/// <para><b>Opened values.</b> Y is uniform mod 2^n (r is); the W are uniform (the rho are).</para>
/// <para><b>Key per element.</b> Party A: 2 degree + 2 ring elements, its dealer shares (step-wide seeds for
/// masks and pads). Party B: 2^m / 8 pad bytes (step-wide seeds for masks and dealer shares). Online:
/// ceil(n/8) + 8 (degree + 1) bytes each way, two rounds. Approximation error: the fit (about max|P''| h^2 / 4
/// for lines, max|P'''| h^3 / 24 for parabolas) plus the tables' rounding (measured values in docs/PROTOCOLS.md).</para>
/// </remarks>
internal sealed class TableActivationGate : IGateProtocol
{
    /// <summary>Largest table: 2^12 cells.</summary>
    public const int MaxTableBits = 12;

    public static readonly TableActivationGate Instance = new();

    internal static int TableBits(PlanStep step) => (int)step.Parameters[0];

    /// <summary>u: a cell is 2^u ring units wide (n - m for the whole-range table; a parameter when clipped).</summary>
    internal static int CellShift(PlanStep step) => (int)step.Parameters[2];

    /// <summary>Whether the step clips to the table's range (<see cref="ClippedTableActivationGate"/>).</summary>
    internal static bool Clipped(PlanStep step) => step.Parameters[3] != 0;

    /// <summary>Degree of the polynomial in each cell: 1 (lines) or 2 (parabolas).</summary>
    internal static int Degree(PlanStep step) => (int)step.Parameters[4];

    /// <summary>w: the output has scale f + w (u for lines, 2u + 1 for parabolas).</summary>
    internal static int OutputShift(PlanStep step) => (int)step.Parameters[5];

    /// <summary>Output scale: f + w.</summary>
    internal static int OutputFractionalBits(PlanStep step, int f) => f + OutputShift(step);

    /// <summary>The output shift w of a table of the given degree and cell shift u.</summary>
    internal static int OutputShiftFor(int degree, int u) => degree == 1 ? u : (2 * u) + 1;

    /// <summary>Dealer shares per element (<see cref="Interpolate"/>): 4 for lines, 6 for parabolas.</summary>
    internal static int DealerValues(int degree) => (2 * degree) + 2;

    /// <summary>
    /// Builds the tables (blob: T, S and for degree 2 Q, 2^m ring elements each, index mod 2^m) at scales
    /// f + w, f + w - u and f + w - 2u.
    /// </summary>
    internal static ulong[] BuildTables(Func<double, double> function, int u, int m, int f, int degree = 1, int w = -1)
    {
        if (w < 0)
        {
            w = OutputShiftFor(degree, u);
        }

        int size = 1 << m;
        double h = Math.ScaleB(1.0, u - f);
        var tables = new ulong[(degree + 1) * size];
        const int Samples = 64;
        double node = degree == 1 ? 1.0 : Math.Cos(Math.PI / 6); // interpolation nodes t = 0, +-node
        for (int i = -(size / 2); i < size / 2; i++)
        {
            double anchor = i * h;
            double up = function(anchor + (node * h)), down = function(anchor - (node * h));
            double slope = (up - down) / (2 * node); // per cell: the change over t in [0, 1]
            double curve = degree == 1 ? 0 : (((up + down) / 2) - function(anchor)) / (node * node);
            double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
            for (int s = 0; s <= Samples; s++)
            {
                double t = -1 + (2.0 * s / Samples);
                double residual = function(anchor + (t * h)) - (slope * t) - (curve * t * t);
                lo = Math.Min(lo, residual);
                hi = Math.Max(hi, residual);
            }

            double intercept = (lo + hi) / 2;
            if (!double.IsFinite(intercept) || !double.IsFinite(slope) || !double.IsFinite(curve))
            {
                throw new ArgumentException($"The activation function is not finite near x = {anchor}.", nameof(function));
            }

            int index = i & (size - 1);
            tables[index] = Encode(intercept, f + w, "value");
            tables[size + index] = Encode(slope, f + w - u, "slope");
            if (degree == 2)
            {
                tables[(2 * size) + index] = Encode(curve, f + w - (2 * u), "curvature");
            }
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

        int len = step.Inputs[0].ElementCount, padWords = PadWords(TableBits(step)), degree = Degree(step);

        // Masks r, rho_T, rho_S (and rho_Q): both parties' shares come from seeds.
        var masks = new ulong[MaskRows(degree) * len];
        (byte[] seedMasksA, byte[] seedMasksB) = GateMath.SeededMask(prg, masks);
        byte[] seedPad = new byte[AesPrg.SeedSize];
        prg.Fill(seedPad);

        var values = new ulong[DealerValues(degree) * len];
        var padsB = new ulong[(long)len * padWords];
        DealPadsAndSigma(step, masks, seedPad, values, padsB);
        byte[] seedValuesB = GateMath.ShareDealerValues(prg, values, values.Length);
        WriteKeys(a, b, seedMasksA, seedValuesB, seedPad, seedMasksB, values, padsB);
        Array.Clear(masks);
        Array.Clear(values);
        Array.Clear(padsB);
    }

    /// <summary>Mask rows per element: r and one rho per table (3 for lines, 4 for parabolas).</summary>
    internal static int MaskRows(int degree) => degree + 2;

    /// <summary>
    /// The look-up's dealing: for every element, the DPF point -rh (the evaluator rotates its bit vector by the
    /// opened index, see <see cref="InnerProducts"/>), party B's pad (party A's pad XOR the unit vector) and the
    /// dealer values of <see cref="Interpolate"/> (row t at [t len, (t + 1) len)).
    /// </summary>
    /// <param name="step">The step.</param>
    /// <param name="masks">r, rho_T, rho_S (and rho_Q), len elements each.</param>
    /// <param name="seedPad">Party A's pad seed.</param>
    /// <param name="sigmaProducts">Receives the <see cref="DealerValues"/> rows.</param>
    /// <param name="padsB">Receives party B's pads.</param>
    internal static void DealPadsAndSigma(PlanStep step, ReadOnlySpan<ulong> masks, byte[] seedPad, Span<ulong> sigmaProducts, Span<ulong> padsB)
    {
        int m = TableBits(step), u = CellShift(step), degree = Degree(step), len = step.Inputs[0].ElementCount, padWords = PadWords(m);
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
                sigmaProducts[len + i] = sigma * rl;
                if (degree == 1)
                {
                    sigmaProducts[(2 * len) + i] = 0 - (sigma * rhoS);
                    sigmaProducts[(3 * len) + i] = sigma * ((rhoS * rl) - rhoT);
                }
                else
                {
                    ulong rhoQ = masks[(3 * len) + i], rl2 = rl * rl;
                    sigmaProducts[(2 * len) + i] = sigma * rl2;
                    sigmaProducts[(3 * len) + i] = sigma * ((2 * rhoQ * rl) - rhoS);
                    sigmaProducts[(4 * len) + i] = 0 - (sigma * rhoQ);
                    sigmaProducts[(5 * len) + i] = sigma * ((rhoS * rl) - rhoT - (rhoQ * rl2));
                }

                Span<ulong> theirs = padsB.Slice(i * padWords, padWords);
                mine.CopyTo(theirs);
                theirs[alpha >> 6] ^= 1UL << (alpha & 63);
            }
        }

        Array.Clear(pad);
    }

    /// <summary>
    /// This party's share of the cell's polynomial T + S e + Q e^2 from the opened W (<paramref name="wT"/>,
    /// <paramref name="wS"/>, <paramref name="wQ"/>: public), the low bits Yl of the opened input and the dealer
    /// shares in rows <paramref name="row"/> to <paramref name="row"/> + <see cref="DealerValues"/> - 1 of
    /// <paramref name="d"/>: row t holds element <paramref name="i"/>'s share at t <paramref name="stride"/> + i
    /// (the stride is the element count, or a chunk's length where the shares are expanded per chunk; see the
    /// class remarks for the terms).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Interpolate(ReadOnlySpan<ulong> d, int row, int stride, int i, int degree, ulong wT, ulong wS, ulong wQ, ulong yl)
    {
        int at = (row * stride) + i;
        if (degree == 1)
        {
            return ((wT + (wS * yl)) * d[at]) - (wS * d[at + stride]) + (yl * d[at + (2 * stride)]) + d[at + (3 * stride)];
        }

        ulong yl2 = yl * yl;
        return ((wT + (wS * yl) + (wQ * yl2)) * d[at]) - ((wS + (2 * wQ * yl)) * d[at + stride]) + (wQ * d[at + (2 * stride)])
            + (yl * d[at + (3 * stride)]) + (yl2 * d[at + (4 * stride)]) + d[at + (5 * stride)];
    }

    /// <summary>
    /// <see cref="Interpolate"/> for eight consecutive elements at <paramref name="at"/>: the dealer shares of row t
    /// are at <paramref name="d"/>[(<paramref name="row"/> + t) <paramref name="stride"/> + at], the caller checks the bounds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<ulong> InterpolateEight(ref ulong d, nuint row, nuint stride, nuint at, int degree, Vector512<ulong> wT, Vector512<ulong> wS, Vector512<ulong> wQ, Vector512<ulong> yl)
    {
        nuint i = (row * stride) + at;
        if (degree == 1)
        {
            return ((wT + (wS * yl)) * Vector512.LoadUnsafe(ref d, i)) - (wS * Vector512.LoadUnsafe(ref d, i + stride))
                + (yl * Vector512.LoadUnsafe(ref d, i + (2 * stride))) + Vector512.LoadUnsafe(ref d, i + (3 * stride));
        }

        Vector512<ulong> yl2 = yl * yl;
        return ((wT + (wS * yl) + (wQ * yl2)) * Vector512.LoadUnsafe(ref d, i)) - ((wS + ((wQ * yl) << 1)) * Vector512.LoadUnsafe(ref d, i + stride))
            + (wQ * Vector512.LoadUnsafe(ref d, i + (2 * stride))) + (yl * Vector512.LoadUnsafe(ref d, i + (3 * stride)))
            + (yl2 * Vector512.LoadUnsafe(ref d, i + (4 * stride))) + Vector512.LoadUnsafe(ref d, i + (5 * stride));
    }

    private static readonly AsyncLocal<bool> ScalarOutputOnly = new();

    /// <summary>Whether the output loops use 512-bit vectors (where the hardware has them, unless a test asked for the scalar loop).</summary>
    internal static bool VectorOutput => Vector512.IsHardwareAccelerated && !ScalarOutputOnly.Value;

    /// <summary>
    /// Whether the look-up of a 2^m-cell table runs eight elements at a time on 512-bit permutes (<see cref="InnerProductsEight{TEntry}"/>):
    /// m &gt;= 6 (whole pad words), AVX-512 and AVX2 gathers, unless a test asked for the scalar loops.
    /// </summary>
    internal static bool VectorLookUp(int m) => m >= 6 && Avx512F.IsSupported && Avx2.IsSupported && !ScalarOutputOnly.Value;

    /// <summary>Test hook: the output loops and the look-up of this async flow (and the tasks it starts) run scalar.</summary>
    internal static void UseScalarOutput(bool scalar) => ScalarOutputOnly.Value = scalar;

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
        int n = step.InputBits, m = TableBits(step), u = CellShift(step), degree = Degree(step), len = x.Shape.ElementCount;
        int tables = degree + 1;
        bool isA = context.IsA;

        using TableKeys tk = TableKeys.Read(context, keys, len, m, DealerValues(degree) * len);
        ulong[] masks = tk.Masks;
        DealerShareBuffer dealer = tk.Dealer;
        ulong[] work = ScratchPool<ulong>.Rent(tables * len);
        ulong[] y = ScratchPool<ulong>.Rent(len);
        ulong[] w = ScratchPool<ulong>.Rent(tables * len);
        try
        {
            ReadOnlySpan<ulong> xs = x.Value.Span;
            for (int i = 0; i < len; i++)
            {
                work[i] = xs[i] + masks[i];
            }

            await GateMath.OpenIntoAsync(context, work, len, n, y, cancellationToken).ConfigureAwait(false);

            LookUp(step, isA, tk.SeedPad, tk.PadsB, y, tk.MaskSeed, len, work);

            await GateMath.OpenIntoAsync(context, work, tables * len, 64, w, cancellationToken).ConfigureAwait(false);

            ReadOnlySpan<ulong> d = dealer.Span;
            ulong lowMask = GateMath.Mask(u);
            var result = new RingTensor(step.Output);
            Span<ulong> output = result.Span;
            int vectorEnd = 0;
            if (VectorOutput)
            {
                // The bounds the unchecked loads rely on.
                if (d.Length < DealerValues(degree) * len || w.Length < tables * len || y.Length < len || output.Length < len)
                {
                    throw new InvalidOperationException($"{step}: the table's buffers are shorter than {len} elements.");
                }

                vectorEnd = len & ~7;
                nuint count = (nuint)len;
                ref ulong dr = ref MemoryMarshal.GetReference(d);
                ref ulong wr = ref MemoryMarshal.GetArrayDataReference(w);
                ref ulong yr = ref MemoryMarshal.GetArrayDataReference(y);
                ref ulong outr = ref MemoryMarshal.GetReference(output);
                var lowMasks = Vector512.Create(lowMask);
                for (int i = 0; i < vectorEnd; i += 8)
                {
                    nuint at = (nuint)i;
                    Vector512<ulong> wQ = degree == 1 ? Vector512<ulong>.Zero : Vector512.LoadUnsafe(ref wr, (2 * count) + at);
                    Vector512<ulong> yl = Vector512.LoadUnsafe(ref yr, at) & lowMasks;
                    InterpolateEight(ref dr, 0, count, at, degree, Vector512.LoadUnsafe(ref wr, at), Vector512.LoadUnsafe(ref wr, count + at), wQ, yl).StoreUnsafe(ref outr, at);
                }
            }

            for (int i = vectorEnd; i < len; i++)
            {
                ulong wQ = degree == 1 ? 0 : w[(2 * len) + i];
                output[i] = Interpolate(d, 0, len, i, degree, w[i], w[len + i], wQ, y[i] & lowMask);
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
    /// <paramref name="destination"/>[i], of sigma S + rho_S to [len + i] and for degree 2 of sigma Q + rho_Q to
    /// [2 len + i]. Party A makes its pads from <paramref name="seedPad"/> 64 elements at a time (they stay in L1);
    /// party B reads them from its record.
    /// </summary>
    internal static void LookUp(PlanStep step, bool isA, byte[]? seedPad, (byte[] Array, int Offset) padsB, ulong[] y, byte[] maskSeed, int len, ulong[] destination)
    {
        if (Degree(step) == 1)
        {
            LookUp<PairEntry>(step, isA, seedPad, padsB, y, maskSeed, len, destination);
        }
        else
        {
            LookUp<TripleEntry>(step, isA, seedPad, padsB, y, maskSeed, len, destination);
        }
    }

    private static void LookUp<TEntry>(PlanStep step, bool isA, byte[]? seedPad, (byte[] Array, int Offset) padsB, ulong[] y, byte[] maskSeed, int len, ulong[] destination)
        where TEntry : struct, ITableEntry<TEntry>
    {
        int m = TableBits(step), u = CellShift(step), padWords = PadWords(m);
        bool vector = VectorLookUp(m);
        AlignedTable sums = vector ? NibbleSums(step) : ByteSums(step);
        if (vector)
        {
            CheckNibbleSums<TEntry>(sums, m);
        }
        else
        {
            CheckSums<TEntry>(sums, m);
        }

        ulong cellMask = GateMath.Mask(m);
        FssKeyBits.ForChunks(len, Environment.ProcessorCount, 64, 1024, (start, count) =>
        {
            const int Batch = 64;
            Span<ulong> ownPads = stackalloc ulong[isA ? Batch * padWords : 0];
            Span<ulong> rho = stackalloc ulong[3 * Batch];
            for (int b0 = 0; b0 < count; b0 += Batch)
            {
                int batch = Math.Min(Batch, count - b0);

                // This batch's rho_T, rho_S (and rho_Q): values (v + 1) len + i of the mask seed's expansion.
                for (int v = 0; v < TEntry.Values; v++)
                {
                    GateMath.ExpandSeedRange(maskSeed, ((long)(v + 1) * len) + start + b0, rho.Slice(v * Batch, batch));
                }

                if (isA)
                {
                    Pads(seedPad!, m, start + b0, ownPads[..(batch * padWords)]);
                }

                ReadOnlySpan<ulong> pads = isA
                    ? ownPads
                    : MemoryMarshal.Cast<byte, ulong>(padsB.Array.AsSpan(padsB.Offset + ((start + b0) * padWords * sizeof(ulong)), batch * padWords * sizeof(ulong)));
                int e0 = vector ? LookUpEights<TEntry>(sums, m, u, isA, pads, y.AsSpan(start + b0, batch), rho, Batch, destination, start + b0, len) : 0;
                for (int e = e0; e < batch; e++)
                {
                    int i = start + b0 + e;
                    Vector256<ulong> v = InnerProducts<TEntry>(pads.Slice(e * padWords, padWords), sums, m, (int)((y[i] >> u) & cellMask));
                    if (!isA)
                    {
                        v = Vector256<ulong>.Zero - v;
                    }

                    destination[i] = v.GetElement(0) + rho[e];
                    destination[len + i] = v.GetElement(1) + rho[Batch + e];
                    if (TEntry.Values == 3)
                    {
                        destination[(2 * len) + i] = v.GetElement(2) + rho[(2 * Batch) + e];
                    }
                }
            }

            if (isA)
            {
                CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(ownPads));
            }

            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(rho));
        });
    }

    /// <summary>
    /// Subset sums of the tables per pad byte: entry 256 q + b holds the sums of (T[8q + k], S[8q + k]) (and
    /// Q[8q + k]) over the set bits k of b (2^m / 8 * 256 entries of 16 or 32 bytes: 256 KiB at m = 9 for lines
    /// and at m = 8 for parabolas, computed once per step).
    /// </summary>
    private static AlignedTable ByteSums(PlanStep step) => SumsCache.GetValue(step, ComputeByteSums);

    // Per plan step (public table data, no secrets): the two in-process parties of a simulation share one copy in cache.
    private static readonly ConditionalWeakTable<PlanStep, AlignedTable> SumsCache = new();

    private static AlignedTable ComputeByteSums(PlanStep step)
    {
        int m = TableBits(step), size = 1 << m, bytes = Math.Max(1, size / 8), values = Degree(step) + 1;
        ReadOnlySpan<ulong> blob = MemoryMarshal.Cast<byte, ulong>(step.Blob.AsSpan());
        var sums = new AlignedTable(bytes * 256, values == 2 ? 2 : 4);
        Span<ulong> all = sums.Words;
        int stride = sums.Stride;
        for (int q = 0; q < bytes; q++)
        {
            for (int b = 1; b < 256; b++)
            {
                int k = System.Numerics.BitOperations.TrailingZeroCount(b);
                int index = (8 * q) + k;
                Span<ulong> entry = all.Slice(((q * 256) + b) * stride, stride);
                ReadOnlySpan<ulong> rest = all.Slice(((q * 256) + (b & (b - 1))) * stride, stride);
                for (int v = 0; v < values; v++)
                {
                    entry[v] = rest[v] + (index < size ? blob[(v * size) + index] : 0);
                }
            }
        }

        return sums;
    }

    /// <summary>
    /// Nibble sums for <see cref="InnerProductsEight{TEntry}"/>: for nibble position p (pad bits 4 p to 4 p + 3) and table
    /// value v (T, S, then Q), the 16 words at (p V + v) 16 hold the sums of v's table entries 4 p + k over the set bits k of
    /// each nibble value (2^m / 4 x V x 128 bytes: 24 KiB at m = 8 for parabolas, in L1), computed once per step.
    /// </summary>
    private static AlignedTable NibbleSums(PlanStep step) => NibbleCache.GetValue(step, ComputeNibbleSums);

    // Per plan step, like the byte sums (public table data).
    private static readonly ConditionalWeakTable<PlanStep, AlignedTable> NibbleCache = new();

    private static AlignedTable ComputeNibbleSums(PlanStep step)
    {
        int m = TableBits(step), size = 1 << m, positions = size / 4, values = Degree(step) + 1;
        ReadOnlySpan<ulong> blob = MemoryMarshal.Cast<byte, ulong>(step.Blob.AsSpan());
        var sums = new AlignedTable(positions * values * 16, 1);
        Span<ulong> all = sums.Words;
        for (int p = 0; p < positions; p++)
        {
            for (int v = 0; v < values; v++)
            {
                Span<ulong> entry = all.Slice(((p * values) + v) * 16, 16);
                for (int j = 1; j < 16; j++)
                {
                    entry[j] = entry[j & (j - 1)] + blob[(v * size) + (4 * p) + System.Numerics.BitOperations.TrailingZeroCount(j)];
                }
            }
        }

        return sums;
    }

    /// <summary>Checks once per step that the nibble sums fit 2^m cells and the entry type (the kernel reads without bounds checks).</summary>
    private static void CheckNibbleSums<TEntry>(AlignedTable sums, int m)
        where TEntry : struct, ITableEntry<TEntry>
    {
        int needed = (1 << m) / 4 * TEntry.Values * 16;
        if (m < 6 || sums.Entries != needed || sums.Stride != 1)
        {
            throw new ArgumentException($"The nibble sums hold {sums.Entries} words; 2^{m} cells of {TEntry.Values} values need {needed} (and m >= 6).", nameof(sums));
        }
    }

    /// <summary>
    /// The look-up of a batch, eight elements at a time (<see cref="InnerProductsEight{TEntry}"/>; a last group of fewer
    /// than eight through zero-padded copies of its pads): for element e, value v goes to <paramref name="destination"/>[v
    /// <paramref name="len"/> + <paramref name="first"/> + e], negated for party B, plus the mask <paramref name="rho"/>[v
    /// <paramref name="rhoStride"/> + e]. Returns the number of elements done (all of them).
    /// </summary>
    private static unsafe int LookUpEights<TEntry>(AlignedTable sums, int m, int u, bool isA, ReadOnlySpan<ulong> pads, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> rho, int rhoStride, ulong[] destination, int first, int len)
        where TEntry : struct, ITableEntry<TEntry>
    {
        int padWords = PadWords(m), count = y.Length & ~7;
        ulong cells = GateMath.Mask(m);
        if (pads.Length < y.Length * padWords || rho.Length < ((TEntry.Values - 1) * rhoStride) + y.Length || first + y.Length > len || destination.Length < (TEntry.Values * len))
        {
            throw new ArgumentException($"Table look-up: the buffers do not hold {y.Length} elements of {padWords} pad words.", nameof(pads));
        }

        Vector512<ulong> sign = isA ? Vector512<ulong>.Zero : Vector512<ulong>.AllBitsSet;
        fixed (ulong* pad = pads)
        fixed (ulong* ys = y)
        fixed (ulong* r = rho)
        fixed (ulong* o = destination)
        {
            ulong* table = (ulong*)Unsafe.AsPointer(ref sums.Start);
            for (int e = 0; e < count; e += 8)
            {
                Vector512<ulong> shifts = Vector512.ShiftRightLogical(Vector512.Load(ys + e), u) & Vector512.Create(cells);
                InnerProductsEight<TEntry>(table, m, pad + ((nint)e * padWords), shifts, out Vector512<ulong> t, out Vector512<ulong> sv, out Vector512<ulong> q);

                // Party B's terms are subtracted: (v XOR -1) + 1 = -v.
                ((t ^ sign) - sign + Vector512.Load(r + e)).Store(o + first + e);
                ((sv ^ sign) - sign + Vector512.Load(r + rhoStride + e)).Store(o + len + first + e);
                if (TEntry.Values == 3)
                {
                    ((q ^ sign) - sign + Vector512.Load(r + (2 * rhoStride) + e)).Store(o + (2 * len) + first + e);
                }
            }

            int rest = y.Length - count;
            if (rest > 0)
            {
                // The last 1 to 7 elements: their pads copied into eight zero-padded rows (wiped after), their lanes stored one by one.
                Span<ulong> tail = stackalloc ulong[8 * padWords];
                tail.Clear();
                pads.Slice(count * padWords, rest * padWords).CopyTo(tail);
                Span<ulong> lanes = stackalloc ulong[8];
                lanes.Clear();
                for (int l = 0; l < rest; l++)
                {
                    lanes[l] = (y[count + l] >> u) & cells;
                }

                fixed (ulong* tailPads = tail)
                {
                    InnerProductsEight<TEntry>(table, m, tailPads, Vector512.Create((ReadOnlySpan<ulong>)lanes), out Vector512<ulong> t, out Vector512<ulong> sv, out Vector512<ulong> q);
                    t = (t ^ sign) - sign;
                    sv = (sv ^ sign) - sign;
                    q = (q ^ sign) - sign;
                    for (int l = 0; l < rest; l++)
                    {
                        int e = count + l;
                        o[first + e] = t.GetElement(l) + r[e];
                        o[len + first + e] = sv.GetElement(l) + r[rhoStride + e];
                        if (TEntry.Values == 3)
                        {
                            o[(2 * len) + first + e] = q.GetElement(l) + r[(2 * rhoStride) + e];
                        }
                    }
                }

                CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(tail));
            }
        }

        return y.Length;
    }

    /// <summary>
    /// <see cref="InnerProducts(ReadOnlySpan{ulong}, PlanStep, int)"/> of eight elements at once (m &gt;= 6): element l's pad is
    /// the <see cref="PadWords"/> words at <paramref name="pads"/> + l PadWords, its rotation lane l of <paramref name="shifts"/>.
    /// The rotated words are gathered with the word rotation folded into the indices and shifted per lane; every nibble of
    /// a rotated word then indexes its position's 16 nibble sums (<see cref="NibbleSums"/>) in one two-register permute per
    /// value, so the eight elements' sums build up lane by lane (2^m / 4 permutes per value, the sums in L1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void InnerProductsEight<TEntry>(ulong* table, int m, ulong* pads, Vector512<ulong> shifts, out Vector512<ulong> t, out Vector512<ulong> s, out Vector512<ulong> q)
        where TEntry : struct, ITableEntry<TEntry>
    {
        int words = PadWords(m), values = TEntry.Values;
        Vector512<ulong> wordMask = Vector512.Create((ulong)(words - 1)), low6 = Vector512.Create(63UL);
        Vector512<ulong> w = Vector512.ShiftRightLogical(shifts, 6), b = shifts & low6, nb = low6 - b;
        Vector512<ulong> lanes = Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7) * Vector512.Create((ulong)words);
        Vector512<ulong> accT = Vector512<ulong>.Zero, accS = Vector512<ulong>.Zero, accQ = Vector512<ulong>.Zero;

        // Rotated word i is (H_i << b) | (H_(i-1) >> (64 - b)) with H_i = pad word (i - w) mod words (the split right shift
        // makes b = 0 take nothing from H_(i-1)).
        Vector512<ulong> last = Gather(pads, lanes + ((Vector512.Create((ulong)(words - 1)) - w) & wordMask)), previous = last;
        for (int i = 0; i < words; i++)
        {
            Vector512<ulong> h = i == words - 1 ? last : Gather(pads, lanes + ((Vector512.Create((ulong)i) - w) & wordMask));
            Vector512<ulong> x = Avx512F.ShiftLeftLogicalVariable(h, b) | Avx512F.ShiftRightLogicalVariable(Vector512.ShiftRightLogical(previous, 1), nb);
            previous = h;
            ulong* position = table + ((nint)i * 16 * values * 16);
            for (int k = 0; k < 16; k++)
            {
                // The permute reads the low 4 bits of each index lane: nibble k of the word.
                Vector512<ulong> index = Vector512.ShiftRightLogical(x, 4 * k);
                ulong* sums = position + (k * values * 16);
                accT += Avx512F.PermuteVar8x64x2(Vector512.Load(sums), index, Vector512.Load(sums + 8));
                accS += Avx512F.PermuteVar8x64x2(Vector512.Load(sums + 16), index, Vector512.Load(sums + 24));
                if (TEntry.Values == 3)
                {
                    accQ += Avx512F.PermuteVar8x64x2(Vector512.Load(sums + 32), index, Vector512.Load(sums + 40));
                }
            }
        }

        t = accT;
        s = accS;
        q = accQ;
    }

    /// <summary>Eight words at <paramref name="words"/> + <paramref name="index"/>[l] (two AVX2 gathers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<ulong> Gather(ulong* words, Vector512<ulong> index) =>
        Vector512.Create(Avx2.GatherVector256(words, index.GetLower().AsInt64(), 8), Avx2.GatherVector256(words, index.GetUpper().AsInt64(), 8));

    /// <summary>
    /// <see cref="InnerProducts(ReadOnlySpan{ulong}, PlanStep, int)"/> for eight pads (row l of <paramref name="bits"/>, <see cref="PadWords"/>
    /// words each) through the vector kernel (tests): lane l of each returned vector is element l's T, S, Q (Q 0 for lines).
    /// </summary>
    internal static unsafe (Vector512<ulong> T, Vector512<ulong> S, Vector512<ulong> Q) InnerProductsEight(ReadOnlySpan<ulong> bits, PlanStep step, ReadOnlySpan<int> shifts)
    {
        int m = TableBits(step);
        if (!VectorLookUp(m) || bits.Length < 8 * PadWords(m) || shifts.Length < 8)
        {
            throw new ArgumentException($"The vector look-up needs m >= 6 (got {m}), AVX-512, 8 pads of {PadWords(m)} words and 8 shifts.", nameof(bits));
        }

        AlignedTable sums = NibbleSums(step);
        var lanes = Vector512.Create((ulong)shifts[0], (ulong)shifts[1], (ulong)shifts[2], (ulong)shifts[3], (ulong)shifts[4], (ulong)shifts[5], (ulong)shifts[6], (ulong)shifts[7]) & Vector512.Create(GateMath.Mask(m));
        Vector512<ulong> t, s, q;
        fixed (ulong* pads = bits)
        {
            ulong* table = (ulong*)Unsafe.AsPointer(ref sums.Start);
            if (Degree(step) == 1)
            {
                CheckNibbleSums<PairEntry>(sums, m);
                InnerProductsEight<PairEntry>(table, m, pads, lanes, out t, out s, out q);
            }
            else
            {
                CheckNibbleSums<TripleEntry>(sums, m);
                InnerProductsEight<TripleEntry>(table, m, pads, lanes, out t, out s, out q);
            }
        }

        return (t, s, q);
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
    /// sum_k g_k (T[k], S[k], Q[k]) (Q and the fourth lane 0 for lines), where g is the pad <paramref name="bits"/>
    /// rotated up by <paramref name="shift"/> (g_k = b_(k - shift mod 2^m)): with the DPF point at -alpha, the unit
    /// vector's term lands on T[shift - alpha]. Rotating the bits instead of the table lets every pad byte select
    /// a precomputed subset sum (<see cref="ByteSums"/>): 2^m / 8 loads and adds per element.
    /// </summary>
    internal static Vector256<ulong> InnerProducts(ReadOnlySpan<ulong> bits, PlanStep step, int shift)
    {
        int m = TableBits(step);
        if (bits.Length < PadWords(m))
        {
            throw new ArgumentException($"The pad has {bits.Length} words; 2^{m} cells need {PadWords(m)}.", nameof(bits));
        }

        AlignedTable sums = ByteSums(step);
        if (Degree(step) == 1)
        {
            CheckSums<PairEntry>(sums, m);
            return InnerProducts<PairEntry>(bits, sums, m, shift);
        }

        CheckSums<TripleEntry>(sums, m);
        return InnerProducts<TripleEntry>(bits, sums, m, shift);
    }

    /// <summary>Checks once per step that the byte sums fit 2^m cells and the entry type (the inner loop reads without bounds checks).</summary>
    private static void CheckSums<TEntry>(AlignedTable sums, int m)
        where TEntry : struct, ITableEntry<TEntry>
    {
        int needed = Math.Max(1, (1 << m) / 8) * 256;
        if (sums.Entries < needed || sums.Stride != TEntry.Size / sizeof(ulong))
        {
            throw new ArgumentException($"The byte sums hold {sums.Entries} entries of {sums.Stride} words; 2^{m} cells need {needed} of {TEntry.Size / sizeof(ulong)}.", nameof(sums));
        }
    }

    /// <summary>
    /// The inner products with entries of type <typeparamref name="TEntry"/>, for a pad of <see cref="PadWords"/>
    /// words and sums checked by <see cref="CheckSums"/>. Each rotated pad word is formed in a register from two pad
    /// words and its eight bytes index the sums directly (four accumulators), so the rotated pad is never stored and
    /// re-read.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> InnerProducts<TEntry>(ReadOnlySpan<ulong> bits, AlignedTable sums, int m, int shift)
        where TEntry : struct, ITableEntry<TEntry>
    {
        int size = 1 << m;
        ref byte t = ref sums.Start;
        TEntry acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        if (m < 6)
        {
            ulong mask = GateMath.Mask(size);
            ulong v = bits[0] & mask;
            ulong x = shift == 0 ? v : ((v << shift) | (v >> (size - shift))) & mask;
            for (int q = 0; q < Math.Max(1, size / 8); q++)
            {
                acc0 = TEntry.Add(acc0, TEntry.Load(ref t, (ulong)(((q * 256) + (int)((x >> (8 * q)) & 255)) * TEntry.Size)));
            }
        }
        else
        {
            int words = PadWords(m), w = shift >> 6, b = shift & 63, wordMask = words - 1;
            ref ulong pad = ref MemoryMarshal.GetReference(bits);

            // Byte k of a rotated word selects entry 256 (8 i + k) + byte: its byte offset (byte * Size) is the word
            // shifted and masked, and the sub-table's offset 256 Size k is a constant displacement.
            int s = TEntry.SizeLog2;
            ulong byteMask = 0xFFUL << s;
            nuint sub = (nuint)(256 * TEntry.Size);
            for (int i = 0; i < words; i++)
            {
                // Word i of the pad rotated up by shift bits; the split right shift makes b = 0 contribute nothing from lo.
                ulong hi = Unsafe.Add(ref pad, (i - w) & wordMask), lo = Unsafe.Add(ref pad, (i - w - 1) & wordMask);
                ulong x = (hi << b) | ((lo >> 1) >> (63 - b));
                acc0 = TEntry.Add(acc0, TEntry.Load(ref t, (x << s) & byteMask));
                acc1 = TEntry.Add(acc1, TEntry.Load(ref t, ((x >> (8 - s)) & byteMask) + sub));
                acc2 = TEntry.Add(acc2, TEntry.Load(ref t, ((x >> (16 - s)) & byteMask) + (2 * sub)));
                acc3 = TEntry.Add(acc3, TEntry.Load(ref t, ((x >> (24 - s)) & byteMask) + (3 * sub)));
                acc0 = TEntry.Add(acc0, TEntry.Load(ref t, ((x >> (32 - s)) & byteMask) + (4 * sub)));
                acc1 = TEntry.Add(acc1, TEntry.Load(ref t, ((x >> (40 - s)) & byteMask) + (5 * sub)));
                acc2 = TEntry.Add(acc2, TEntry.Load(ref t, ((x >> (48 - s)) & byteMask) + (6 * sub)));
                acc3 = TEntry.Add(acc3, TEntry.Load(ref t, ((x >> (56 - s)) & byteMask) + (7 * sub)));
                t = ref Unsafe.AddByteOffset(ref t, 8 * sub);
            }
        }

        return TEntry.Add(TEntry.Add(acc0, acc1), TEntry.Add(acc2, acc3)).Widen();
    }

    /// <summary>The definition of <see cref="InnerProducts(ReadOnlySpan{ulong}, PlanStep, int)"/>, bit by bit (tests; <paramref name="tables"/> is the blob).</summary>
    internal static ulong[] InnerProductsReference(ReadOnlySpan<ulong> bits, ReadOnlySpan<ulong> tables, int m, int shift)
    {
        int size = 1 << m;
        var sums = new ulong[tables.Length / size];
        for (int j = 0; j < size; j++)
        {
            if (((bits[j >> 6] >> (j & 63)) & 1) != 0)
            {
                int k = (j + shift) & (size - 1);
                for (int v = 0; v < sums.Length; v++)
                {
                    sums[v] += tables[(v * size) + k];
                }
            }
        }

        return sums;
    }

    /// <summary>A precomputed table of the look-up (byte or nibble sums): 64-byte aligned in a pinned array (no entry splits a cache line).</summary>
    private sealed class AlignedTable
    {
        private readonly ulong[] _words;
        private readonly int _offset;

        public AlignedTable(int entries, int stride)
        {
            Entries = entries;
            Stride = stride;
            _words = GC.AllocateArray<ulong>((entries * stride) + 8, pinned: true);
            unsafe
            {
                nuint address = (nuint)Unsafe.AsPointer(ref _words[0]);
                _offset = (int)(((64 - (address & 63)) & 63) / sizeof(ulong));
            }
        }

        public int Entries { get; }

        /// <summary>Words per entry: byte sums 2 (lines) or 4 (parabolas, the fourth 0); nibble sums 1.</summary>
        public int Stride { get; }

        public Span<ulong> Words => _words.AsSpan(_offset, Entries * Stride);

        public ref byte Start => ref Unsafe.As<ulong, byte>(ref _words[_offset]);
    }

    /// <summary>A byte-sum entry: a fixed number of table values added as one vector.</summary>
    private interface ITableEntry<TSelf>
        where TSelf : struct, ITableEntry<TSelf>
    {
        /// <summary>Table values per entry.</summary>
        static abstract int Values { get; }

        /// <summary>Entry size in bytes.</summary>
        static abstract int Size { get; }

        /// <summary>log2 of <see cref="Size"/>.</summary>
        static abstract int SizeLog2 { get; }

        static abstract TSelf Load(ref byte table, ulong byteOffset);

        static abstract TSelf Add(TSelf left, TSelf right);

        Vector256<ulong> Widen();
    }

    /// <summary>(T, S): 16 bytes.</summary>
    private readonly struct PairEntry(Vector128<ulong> value) : ITableEntry<PairEntry>
    {
        private readonly Vector128<ulong> _value = value;

        public static int Values => 2;

        public static int Size => 16;

        public static int SizeLog2 => 4;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static PairEntry Load(ref byte table, ulong byteOffset) =>
            new(Unsafe.As<byte, Vector128<ulong>>(ref Unsafe.AddByteOffset(ref table, (nuint)byteOffset)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static PairEntry Add(PairEntry left, PairEntry right) => new(left._value + right._value);

        public Vector256<ulong> Widen() => Vector256.Create(_value, Vector128<ulong>.Zero);
    }

    /// <summary>(T, S, Q, 0): 32 bytes.</summary>
    private readonly struct TripleEntry(Vector256<ulong> value) : ITableEntry<TripleEntry>
    {
        private readonly Vector256<ulong> _value = value;

        public static int Values => 3;

        public static int Size => 32;

        public static int SizeLog2 => 5;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TripleEntry Load(ref byte table, ulong byteOffset) =>
            new(Unsafe.As<byte, Vector256<ulong>>(ref Unsafe.AddByteOffset(ref table, (nuint)byteOffset)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TripleEntry Add(TripleEntry left, TripleEntry right) => new(left._value + right._value);

        public Vector256<ulong> Widen() => _value;
    }
}

/// <summary>
/// A party's keys of a table step after any leading comparison keys: its shares of the masks (r expanded from its
/// seed; rho_T, rho_S, and rho_Q for parabolas expanded by the look-up, a batch at a time), its dealer shares (party A: a view of the record;
/// party B: their expansion, or only their seed where the gate expands them itself), and its pads (party A: a seed;
/// party B: a view of the record). Disposing wipes the expansions and the seeds.
/// </summary>
internal sealed class TableKeys : IDisposable
{
    private TableKeys(ulong[] masks, byte[] maskSeed, DealerShareBuffer dealer, byte[]? dealerSeed, byte[]? seedPad, (byte[] Array, int Offset) padsB)
    {
        Masks = masks;
        MaskSeed = maskSeed;
        Dealer = dealer;
        DealerSeed = dealerSeed;
        SeedPad = seedPad;
        PadsB = padsB;
    }

    /// <summary>This party's share of r (len elements; pooled, longer); rho_T, rho_S (and rho_Q) come from <see cref="MaskSeed"/>.</summary>
    public ulong[] Masks { get; }

    /// <summary>The seed of the mask shares (the look-up expands rho_T, rho_S, rho_Q from it batch by batch).</summary>
    public byte[] MaskSeed { get; }

    /// <summary>The dealer shares (empty for party B when <see cref="DealerSeed"/> is set).</summary>
    public DealerShareBuffer Dealer { get; }

    /// <summary>Party B's dealer-share seed, when the caller asked to expand the shares itself (<see cref="GateMath.ExpandSeedRange"/>).</summary>
    public byte[]? DealerSeed { get; }

    /// <summary>Party A's pad seed.</summary>
    public byte[]? SeedPad { get; }

    /// <summary>Party B's pads in its record.</summary>
    public (byte[] Array, int Offset) PadsB { get; }

    /// <summary>
    /// Reads the keys. <paramref name="dealerValues"/> dealer shares follow the mask seed: party A's in the record,
    /// party B's as a seed, expanded here unless <paramref name="seedOnlyForB"/> (then <see cref="DealerSeed"/> holds a
    /// copy of it and <see cref="Dealer"/> is empty).
    /// </summary>
    public static TableKeys Read(GateContext context, StepKeys keys, int len, int m, int dealerValues, bool seedOnlyForB = false)
    {
        // Only r (the first len values) is expanded here; the look-up expands the rho rows where it needs them.
        byte[] seedMasks = keys.TakeBytes(AesPrg.SeedSize).ToArray();
        ulong[] masks = ScratchPool<ulong>.Rent(len);
        GateMath.ExpandSeed(seedMasks, masks.AsSpan(0, len));
        if (context.IsA)
        {
            DealerShareBuffer dealer = GateMath.DealerShares(context, keys, dealerValues, seeded: Party.B);
            return new TableKeys(masks, seedMasks, dealer, null, keys.TakeBytes(AesPrg.SeedSize).ToArray(), default);
        }

        byte[]? dealerSeed = seedOnlyForB ? keys.TakeBytes(AesPrg.SeedSize).ToArray() : null;
        DealerShareBuffer expanded = seedOnlyForB ? default : GateMath.DealerShares(context, keys, dealerValues, seeded: Party.B);
        return new TableKeys(masks, seedMasks, expanded, dealerSeed, null, keys.TakeSegment(checked(len * TableActivationGate.PadWords(m) * sizeof(ulong))));
    }

    public void Dispose()
    {
        if (SeedPad is not null)
        {
            CryptographicOperations.ZeroMemory(SeedPad);
        }

        if (DealerSeed is not null)
        {
            CryptographicOperations.ZeroMemory(DealerSeed);
        }

        CryptographicOperations.ZeroMemory(MaskSeed);

        Dealer.Dispose();
        ScratchPool<ulong>.Return(Masks);
    }
}
