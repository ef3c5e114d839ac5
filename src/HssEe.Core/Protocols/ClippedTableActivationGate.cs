using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using HssEe.Fss;
using HssEe.Randomness;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>
/// The table activation for wide inputs (|x| &lt; 2^(n-1)): the table covers only |x| &lt; L + h, and two
/// evaluations of one comparison key decide between the left tail, the table and the right tail. Two rounds.
/// </summary>
/// <remarks>
/// <para><b>Function.</b> <c>P(x) ~ A_L x + B_L</c> for x &lt; -L, the cell's polynomial <c>G = T + S e (+ Q e^2)</c>
/// (as in <see cref="TableActivationGate"/>) for -L &lt;= x &lt; L, and <c>A_R x + B_R</c> for x &gt;= L, at scale f + w
/// (tail slopes are integers at that scale: A = round(a 2^w)). With c = 1{-L &lt;= x &lt; L} and b = 1{x &gt;= L}:
/// <c>out = A_L x + B_L + c (G - A_L x - B_L) + b ((A_R - A_L) x + B_R - B_L)</c>.</para>
/// <para><b>Round 1</b> opens Y = x + r mod 2^64. As in the ReLU gate, 1{x &gt;= theta} is y1 XOR r1 XOR
/// 1{y0 &lt; r0} for the masked value of x - theta (y0, r0: the low n - 1 bits). The comparison key compares
/// only the top n - 1 - j of those bits, 1{y0 &gt;&gt; j &lt; r0 &gt;&gt; j} (depth n - 1 - j), which differs from
/// the exact bit only when x - theta is in [-(2^j - 1), -1]. The key evaluated at the masked values for
/// theta_1 = -L + 2^j - 1 and theta_2 = L gives XOR shares of 1{x &gt;= theta_1} and b; c is their XOR, so r's
/// top bit cancels. An input whose comparison is fuzzy thus lies inside the table, in [-L, -L + 2^j - 2] or
/// [L - 2^j + 1, L - 1], and gets the table or the tail line there: the plan picks j (at most range / 4)
/// so that the tail lines are within half an output ulp of the function on those inputs (GeLU and SiLU at
/// f = 12: j = 13 and 14). The look-up uses Y's low m + u bits.</para>
/// <para><b>Round 2</b> opens c XOR rho_c, b XOR rho_b and the W (W_T, W_S, and W_Q for parabolas; one message).
/// Every product of c or b with x, and of c with G, is linear in 4 degree + 8 dealer shares (rho_c, rho_c r, rho_b,
/// rho_b r, and the table's 2 degree + 2 shares of <see cref="TableActivationGate.Interpolate"/> with and without
/// the factor rho_c), so the output is local and exact. When A_L = B_L = 0, c x and c are not needed, nor are
/// rho_c and rho_c r.</para>
/// <para><b>Key per element.</b> Both parties: the comparison key, 16 (n - 6 - j) bytes. Party A: 4 degree + 8 ring
/// elements (4 degree + 6 when A_L = B_L = 0: GeLU and SiLU, whose left tails are 0 within half an output ulp, without a
/// rescale) and two bits of dealer shares; party B: the 2^m / 8 pad bytes (and seeds). Online: 8 + 8 (degree + 1)
/// bytes and 2 bits each way.</para>
/// <para><b>Party B's dealer shares</b> are the expansion of a seed: it expands the two bit words before round 2,
/// and the rows one chunk of <see cref="ChunkElements"/> elements at a time inside the output loop, so the
/// rows (8 bytes each per element) are never written out whole (party A reads its shares from its record). The
/// output loop runs on all cores in pieces of whole chunks: after round 2 the peer has nothing left to wait for.</para>
/// </remarks>
internal sealed class ClippedTableActivationGate : IGateProtocol
{
    public static readonly ClippedTableActivationGate Instance = new();

    /// <summary>(threshold L at scale f, A_L, B_L, A_R, B_R) of a clipped step.</summary>
    internal static (ulong L, ulong AL, ulong BL, ulong AR, ulong BR) Tails(PlanStep step) =>
        ((ulong)step.Parameters[6], (ulong)step.Parameters[7], (ulong)step.Parameters[8], (ulong)step.Parameters[9], (ulong)step.Parameters[10]);

    /// <summary>j: the comparisons use only the top n - 1 - j of the n - 1 low bits (fuzzy by up to 2^j - 1 below each threshold).</summary>
    internal static int FuzzBits(PlanStep step) => (int)step.Parameters[11];

    /// <summary>
    /// Ring rows of dealer shares per element: the table's K (<see cref="TableActivationGate.DealerValues"/>), the
    /// same times rho_c, then rho_c and rho_c r (only when the left tail is not zero: they serve c x and c alone,
    /// which the output multiplies by A_L and B_L), rho_b, rho_b r.
    /// </summary>
    internal static int Values(int degree, bool zeroLeft) => (2 * TableActivationGate.DealerValues(degree)) + (zeroLeft ? 2 : 4);

    /// <summary>The rows of a step: 2 fewer when its left tail line is 0 (GeLU and SiLU without a rescale).</summary>
    internal static int Values(PlanStep step) => Values(TableActivationGate.Degree(step), ZeroLeft(step));

    /// <summary>True when A_L = B_L = 0: the output below -L is 0, and c's own products with x and 1 drop out.</summary>
    internal static bool ZeroLeft(PlanStep step) => step.Parameters[7] == 0 && step.Parameters[8] == 0;

    /// <summary>Depth of the comparison key: n - 1 - j.</summary>
    internal static int ComparisonDepth(PlanStep step) => step.InputBits - 1 - FuzzBits(step);

    /// <summary>The thresholds: 1{x &gt;= theta_1} with theta_1 = -L + 2^j - 1, and b = 1{x &gt;= L}.</summary>
    internal static (ulong Lower, ulong Upper) Thresholds(PlanStep step)
    {
        ulong limit = (ulong)step.Parameters[6];
        return (0 - limit + ((1UL << FuzzBits(step)) - 1), limit);
    }

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int n = step.InputBits, len = step.Inputs[0].ElementCount, words = (len + 63) / 64;
        int padWords = TableActivationGate.PadWords(TableActivationGate.TableBits(step)), degree = TableActivationGate.Degree(step);
        int k = TableActivationGate.DealerValues(degree), rows = Values(step);
        bool zeroLeft = ZeroLeft(step);
        int rhoBRow = (2 * k) + (zeroLeft ? 0 : 2);

        // Masks r, rho_T, rho_S (and rho_Q): both parties' shares come from seeds.
        var masks = new ulong[TableActivationGate.MaskRows(degree) * len];
        (byte[] seedMasksA, byte[] seedMasksB) = GateMath.SeededMask(prg, masks);
        byte[] seedPad = new byte[AesPrg.SeedSize];
        prg.Fill(seedPad);

        // The comparison keys first, so that evaluation wraps the record without a copy.
        var alphas = new ulong[len];
        ulong lowMask = GateMath.Mask(n - 1);
        int j = FuzzBits(step);
        for (int i = 0; i < len; i++)
        {
            alphas[i] = (masks[i] & lowMask) >> j;
        }

        GateMath.AppendComparisonKeys(step, ComparisonDepth(step), alphas, prg, a, b);

        var rhos = new ulong[2 * words];
        prg.Fill(rhos);
        var values = new ulong[(rows * len) + (2 * words)];
        var padsB = new ulong[(long)len * padWords];
        TableActivationGate.DealPadsAndSigma(step, masks, seedPad, values.AsSpan(0, k * len), padsB);
        for (int i = 0; i < len; i++)
        {
            ulong r = masks[i];
            ulong rhoC = BitSignGateBase.Bit(rhos, i), rhoB = BitSignGateBase.Bit(rhos.AsSpan(words), i);
            for (int t = 0; t < k; t++)
            {
                values[((k + t) * len) + i] = rhoC * values[(t * len) + i];
            }

            if (!zeroLeft)
            {
                values[(2 * k * len) + i] = rhoC;
                values[(((2 * k) + 1) * len) + i] = rhoC * r;
            }

            values[(rhoBRow * len) + i] = rhoB;
            values[((rhoBRow + 1) * len) + i] = rhoB * r;

            // Bit words: rho_c, then r1 XOR rho_b (what b's XOR shares are masked with).
            values[(rows * len) + (i >> 6)] |= rhoC << (i & 63);
            values[(rows * len) + words + (i >> 6)] |= (((r >> (n - 1)) & 1) ^ rhoB) << (i & 63);
        }

        byte[] seedValuesB = GateMath.ShareDealerValues(prg, values, rows * len);
        TableActivationGate.WriteKeys(a, b, seedMasksA, seedValuesB, seedPad, seedMasksB, values, padsB);
        Array.Clear(masks);
        Array.Clear(alphas);
        Array.Clear(rhos);
        Array.Clear(values);
        Array.Clear(padsB);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        Share x = inputs[0];
        int n = step.InputBits, m = TableActivationGate.TableBits(step), u = TableActivationGate.CellShift(step), degree = TableActivationGate.Degree(step);
        int len = x.Shape.ElementCount, words = (len + 63) / 64, rows = Values(step), opened = (degree + 1) * len;
        bool isA = context.IsA;
        (_, ulong aL, ulong bL, ulong aR, ulong bR) = Tails(step);
        (ulong lower, ulong upper) = Thresholds(step);
        int fuzz = FuzzBits(step), depth = ComparisonDepth(step);
        int dcfBytes = checked((int)BitDcf.BatchBytes(depth, len));
        (byte[] dcf, int dcfAt) = keys.TakeLeading(dcfBytes);
        using TableKeys tk = TableKeys.Read(context, keys, len, m, (rows * len) + (2 * words), seedOnlyForB: true);
        ulong[] masks = tk.Masks;
        DealerShareBuffer dealer = tk.Dealer;
        byte[] seedB = isA ? [] : tk.DealerSeed ?? throw new InvalidOperationException("Clipped table activation: party B's dealer-share seed is missing.");
        ulong[] y = ScratchPool<ulong>.Rent(len);
        ulong[] low = ScratchPool<ulong>.Rent(2 * len);
        ulong[] send = ScratchPool<ulong>.Rent(opened + (2 * words));
        ulong[] receive = ScratchPool<ulong>.Rent(opened + (2 * words));
        byte[] w = ScratchPool<byte>.Rent(2 * len);
        try
        {
            TensorPrimitives.Add(x.Value.Span[..len], masks.AsSpan(0, len), low.AsSpan(0, len));
            await GateMath.OpenIntoAsync(context, low, len, 64, y, cancellationToken).ConfigureAwait(false);

            // Comparisons: the masked value of x - theta is Y - theta; theta_1 gives 1{x >= theta_1}, theta_2 = L gives b.
            Span<ulong> bits = send.AsSpan(opened, 2 * words);
            bits.Clear();
            // Both thresholds in one pass over the keys: set 0 at theta_1, set 1 at theta_2; the points drop j low bits.
            // Party A adds the public top bits: into c (both thresholds) and into b (theta_2).
            for (int set = 0; set < 2; set++)
            {
                ComparisonPoints(y.AsSpan(0, len), set == 0 ? lower : upper, n, fuzz, low.AsSpan(set * len, len), isA ? bits[..words] : default, isA && set == 1 ? bits[words..] : default);
            }

            BitDcf.EvaluateSetsAndWipe(depth, context.Party, dcf.AsSpan(dcfAt, dcfBytes), low.AsSpan(0, 2 * len), w.AsSpan(0, 2 * len), 2);
            keys.MarkLeadingWiped(dcfBytes);
            AddComparisonBits(w.AsSpan(0, len), w.AsSpan(len, len), bits[..words], bits[words..]);

            // The dealer's bit words (after the rows): party B expands just them here, its rows chunk by chunk in FinishExpanding.
            if (isA)
            {
                ReadOnlySpan<ulong> maskBits = dealer.Span.Slice(rows * len, 2 * words);
                for (int j = 0; j < 2 * words; j++)
                {
                    bits[j] ^= maskBits[j];
                }
            }
            else
            {
                ulong[] maskBits = ScratchPool<ulong>.Rent(2 * words);
                try
                {
                    GateMath.ExpandSeedRange(seedB, (long)rows * len, maskBits.AsSpan(0, 2 * words));
                    for (int j = 0; j < 2 * words; j++)
                    {
                        bits[j] ^= maskBits[j];
                    }
                }
                finally
                {
                    ScratchPool<ulong>.Return(maskBits); // wipes
                }
            }

            TableActivationGate.LookUp(step, isA, tk.SeedPad, tk.PadsB, y, tk.MaskSeed, len, send);
            await context.Channel.ExchangeAsync(send.AsMemory(0, opened + (2 * words)), receive.AsMemory(0, opened + (2 * words)), cancellationToken).ConfigureAwait(false);
            TensorPrimitives.Add(receive.AsSpan(0, opened), send.AsSpan(0, opened), receive.AsSpan(0, opened));
            TensorPrimitives.Xor(receive.AsSpan(opened, 2 * words), send.AsSpan(opened, 2 * words), receive.AsSpan(opened, 2 * words));

            // The output, over all cores in pieces of whole chunks (by now the peer has nothing left to compute).
            var result = new RingTensor(step.Output);
            Memory<ulong> output = result.Memory;
            int chunk = ChunkElements;
            FssKeyBits.ForChunks(len, Environment.ProcessorCount, chunk, chunk, (start, count) =>
            {
                if (isA)
                {
                    FinishRange(degree, true, dealer.Span[start..], len, start, count, y, masks, receive, len, words, u, (aL, bL, aR, bR), output.Span);
                }
                else
                {
                    FinishExpanding(degree, seedB, chunk, start, count, y, masks, receive, len, words, u, (aL, bL, aR, bR), output.Span);
                }
            });

            return new Share(context.Party, result, TableActivationGate.OutputFractionalBits(step, x.FractionalBits));
        }
        finally
        {
            ScratchPool<ulong>.Return(y);
            ScratchPool<ulong>.Return(low);
            ScratchPool<ulong>.Return(send);
            ScratchPool<ulong>.Return(receive);
            ScratchPool<byte>.Return(w);
        }
    }

    /// <summary>
    /// The comparison points of one threshold: point i is the low n - 1 bits of yp = (y_i - theta + 2^(n-1)) mod 2^n
    /// without their <paramref name="fuzz"/> lowest; yp's top bit is XORed into bit i of <paramref name="topInto"/> and
    /// of <paramref name="topAlsoInto"/> where they are not empty (party A's public share). Eight elements per 512-bit vector.
    /// </summary>
    internal static void ComparisonPoints(ReadOnlySpan<ulong> y, ulong theta, int n, int fuzz, Span<ulong> points, Span<ulong> topInto, Span<ulong> topAlsoInto)
    {
        int len = y.Length, i = 0;
        if (points.Length < len || (!topInto.IsEmpty && topInto.Length < (len + 63) / 64) || (!topAlsoInto.IsEmpty && topAlsoInto.Length < (len + 63) / 64))
        {
            throw new ArgumentException($"Clipped table activation: the point or bit buffers are shorter than {len} elements.", nameof(points));
        }

        ulong nMask = GateMath.Mask(n), half = 1UL << (n - 1);
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<ulong> offset = Vector512.Create(half - theta), vMask = Vector512.Create(nMask), lowBits = Vector512.Create(half - 1);
            for (; i + 8 <= len; i += 8)
            {
                Vector512<ulong> yp = (Vector512.Create(y.Slice(i, 8)) + offset) & vMask;
                Vector512.ShiftRightLogical(yp & lowBits, fuzz).CopyTo(points.Slice(i, 8));
                if (!topInto.IsEmpty)
                {
                    // i is a multiple of 8: the eight top bits fill one byte of a word.
                    ulong top = Vector512.ExtractMostSignificantBits(Vector512.ShiftLeft(yp, 64 - n)) << (i & 63);
                    topInto[i >> 6] ^= top;
                    if (!topAlsoInto.IsEmpty)
                    {
                        topAlsoInto[i >> 6] ^= top;
                    }
                }
            }
        }

        for (; i < len; i++)
        {
            ulong yp = (y[i] - theta + half) & nMask;
            points[i] = (yp & (half - 1)) >> fuzz;
            if (!topInto.IsEmpty)
            {
                ulong top = (yp >> (n - 1)) << (i & 63);
                topInto[i >> 6] ^= top;
                if (!topAlsoInto.IsEmpty)
                {
                    topAlsoInto[i >> 6] ^= top;
                }
            }
        }
    }

    /// <summary>
    /// XORs the comparison outputs (0 or 1 per byte) into the bit words: c gets both (bit i of <paramref name="c"/> ^=
    /// lower_i XOR upper_i), b the upper one. Sixty-four elements per 512-bit vector of bytes.
    /// </summary>
    internal static void AddComparisonBits(ReadOnlySpan<byte> lower, ReadOnlySpan<byte> upper, Span<ulong> c, Span<ulong> b)
    {
        int len = lower.Length, i = 0;
        if (upper.Length < len || c.Length < (len + 63) / 64 || b.Length < (len + 63) / 64)
        {
            throw new ArgumentException($"Clipped table activation: the comparison outputs or bit words are shorter than {len} elements.", nameof(lower));
        }

        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 64 <= len; i += 64)
            {
                // Outputs are 0 or 1: shifted to the top bit of each byte, the 64 of them become one word.
                ulong atLower = Vector512.ExtractMostSignificantBits(Vector512.ShiftLeft(Vector512.Create(lower.Slice(i, 64)), 7));
                ulong atUpper = Vector512.ExtractMostSignificantBits(Vector512.ShiftLeft(Vector512.Create(upper.Slice(i, 64)), 7));
                c[i >> 6] ^= atLower ^ atUpper;
                b[i >> 6] ^= atUpper;
            }
        }

        for (; i < len; i++)
        {
            ulong atLower = (ulong)lower[i] << (i & 63), atUpper = (ulong)upper[i] << (i & 63);
            c[i >> 6] ^= atLower ^ atUpper;
            b[i >> 6] ^= atUpper;
        }
    }

    private static readonly AsyncLocal<int> ChunkOverride = new();

    /// <summary>Elements per chunk of party B's dealer-share expansion in the output loop (16 rows of 1024 ring elements: 128 KiB, in L2).</summary>
    internal static int ChunkElements => ChunkOverride.Value > 0 ? ChunkOverride.Value : 1024;

    /// <summary>Test hook: party B's chunk length in this async flow (and the tasks it starts); 0 restores the default.</summary>
    internal static void UseChunkElements(int elements) => ChunkOverride.Value = elements;

    /// <summary>
    /// Party B's output of elements [<paramref name="first"/>, + <paramref name="total"/>): its dealer rows expanded from
    /// <paramref name="seed"/> one chunk of <paramref name="chunkElements"/> elements at a time into one pooled buffer
    /// (row t of the chunk at t count, the values t len + start onwards of the seed's expansion), each chunk consumed by
    /// <see cref="FinishRange"/> while it is in cache; the buffer is wiped.
    /// </summary>
    private static void FinishExpanding(int degree, byte[] seed, int chunkElements, int first, int total, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> masks, ReadOnlySpan<ulong> opened, int len, int words, int u, (ulong AL, ulong BL, ulong AR, ulong BR) tails, Span<ulong> output)
    {
        int rows = Values(degree, tails.AL == 0 && tails.BL == 0), chunk = Math.Min(chunkElements, total);
        ulong[] d = ScratchPool<ulong>.Rent(rows * chunk);
        try
        {
            for (int start = first; start < first + total; start += chunk)
            {
                int count = Math.Min(chunk, first + total - start);
                for (int t = 0; t < rows; t++)
                {
                    GateMath.ExpandSeedRange(seed, ((long)t * len) + start, d.AsSpan(t * count, count));
                }

                FinishRange(degree, false, d, count, start, count, y, masks, opened, len, words, u, tails, output);
            }
        }
        finally
        {
            ScratchPool<ulong>.Return(d); // wipes
        }
    }

    /// <summary>
    /// The output of elements [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>): element
    /// i's dealer share of row t is <paramref name="d"/>[t <paramref name="stride"/> + i - start] (party A: its rows from
    /// element start on, stride len; party B: one chunk, stride count); y, masks, the opened values and the output are indexed by i
    /// (the opened rows with stride <paramref name="len"/>).
    /// </summary>
    private static void FinishRange(int degree, bool isA, ReadOnlySpan<ulong> d, int stride, int start, int count, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> masks, ReadOnlySpan<ulong> opened, int len, int words, int u, (ulong AL, ulong BL, ulong AR, ulong BR) tails, Span<ulong> output)
    {
        ulong one = isA ? 1UL : 0UL, uMask = GateMath.Mask(u);
        int k = TableActivationGate.DealerValues(degree), tables = degree + 1;
        bool zeroLeft = tails.AL == 0 && tails.BL == 0;
        int rhoCRow = 2 * k * stride, rhoBRow = rhoCRow + (zeroLeft ? 0 : 2 * stride);
        ReadOnlySpan<ulong> cBits = opened.Slice(tables * len, words), bBits = opened.Slice((tables * len) + words, words);
        int vectorEnd = TableActivationGate.VectorOutput ? FinishVector512(isA, degree, d, stride, start, count, y, masks, opened, len, words, u, tails, output) : start;
        for (int i = vectorEnd; i < start + count; i++)
        {
            int di = i - start;
            ulong yi = y[i], yl = yi & uMask, wT = opened[i], wS = opened[len + i], wQ = degree == 1 ? 0 : opened[(2 * len) + i];
            ulong cHat = BitSignGateBase.Bit(cBits, i), bHat = BitSignGateBase.Bit(bBits, i);
            ulong betaC = 1 - (2 * cHat), betaB = 1 - (2 * bHat);

            // G, the cell's polynomial, and rho_c G (the same public terms times the dealer shares times rho_c).
            ulong g = TableActivationGate.Interpolate(d, 0, stride, di, degree, wT, wS, wQ, yl);
            ulong rhoG = TableActivationGate.Interpolate(d, k, stride, di, degree, wT, wS, wQ, yl);
            ulong cG = (cHat * g) + (betaC * rhoG);

            // x = Y - r; b x from [rho_b] and [rho_b r], and b itself.
            ulong rhoB = d[rhoBRow + di], rhoBR = d[rhoBRow + stride + di];
            ulong xShare = (one * yi) - masks[i];
            ulong bX = (bHat * xShare) + (betaB * ((yi * rhoB) - rhoBR));
            ulong b = (bHat * one) + (betaB * rhoB);
            ulong sum = cG + ((tails.AR - tails.AL) * bX) + ((tails.BR - tails.BL) * b);
            if (!zeroLeft)
            {
                // The left tail's terms: A_L x + B_L - c (A_L x + B_L), c x and c from [rho_c] and [rho_c r]. Without a
                // left tail they are all 0, and their rows are not dealt.
                ulong rhoC = d[rhoCRow + di], rhoCR = d[rhoCRow + stride + di];
                ulong cX = (cHat * xShare) + (betaC * ((yi * rhoC) - rhoCR));
                ulong c = (cHat * one) + (betaC * rhoC);
                sum += (tails.AL * xShare) + (tails.BL * one) - (tails.AL * cX) - (tails.BL * c);
            }

            output[i] = sum;
        }
    }

    /// <summary>
    /// <see cref="FinishRange"/> for the first count rounded down to a multiple of 8 of its elements, eight at a time: the
    /// products with the public bits c^ and b^ become masks (c^ v = v AND -c^, (1 - 2 c^) v = (v XOR -c^) + c^).
    /// Returns where the scalar loop goes on.
    /// </summary>
    private static int FinishVector512(bool isA, int degree, ReadOnlySpan<ulong> d, int stride, int start, int count, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> masks, ReadOnlySpan<ulong> opened, int len, int words, int u, (ulong AL, ulong BL, ulong AR, ulong BR) tails, Span<ulong> output)
    {
        int k = TableActivationGate.DealerValues(degree), tables = degree + 1;
        bool zeroLeft = tails.AL == 0 && tails.BL == 0;
        if (start < 0 || count < 0 || count > stride || d.Length < ((Values(degree, zeroLeft) - 1) * stride) + count || start + count > len || y.Length < len || masks.Length < len
            || opened.Length < (tables * len) + (2 * words) || output.Length < len)
        {
            throw new InvalidOperationException($"Clipped table activation: the buffers are shorter than {len} elements or the chunk [{start}, {start} + {count}) does not fit.");
        }

        int vectorCount = count & ~7;
        nuint n = (nuint)len, s = (nuint)stride, rhoCRow = (nuint)(2 * k) * s, rhoBRow = rhoCRow + (zeroLeft ? 0 : 2 * s), cWords = (nuint)(tables * len), bWords = cWords + (nuint)words;
        ref ulong dr = ref MemoryMarshal.GetReference(d);
        ref ulong yr = ref MemoryMarshal.GetReference(y);
        ref ulong mr = ref MemoryMarshal.GetReference(masks);
        ref ulong or = ref MemoryMarshal.GetReference(opened);
        ref ulong outr = ref MemoryMarshal.GetReference(output);
        Vector512<ulong> uMask = Vector512.Create(GateMath.Mask(u)), one = Vector512.Create(isA ? 1UL : 0UL), ones = Vector512.Create(isA ? ulong.MaxValue : 0UL);
        Vector512<ulong> lanes = Vector512.Create(1UL, 2, 4, 8, 16, 32, 64, 128);
        Vector512<ulong> aL = Vector512.Create(tails.AL), bL = Vector512.Create(tails.BL), dA = Vector512.Create(tails.AR - tails.AL), dB = Vector512.Create(tails.BR - tails.BL);
        for (int e = 0; e < vectorCount; e += 8)
        {
            int i = start + e;
            nuint at = (nuint)i, de = (nuint)e;
            Vector512<ulong> yi = Vector512.LoadUnsafe(ref yr, at), yl = yi & uMask;
            Vector512<ulong> wT = Vector512.LoadUnsafe(ref or, at), wS = Vector512.LoadUnsafe(ref or, n + at);
            Vector512<ulong> wQ = degree == 1 ? Vector512<ulong>.Zero : Vector512.LoadUnsafe(ref or, (2 * n) + at);
            ulong cByte = EightBits(ref Unsafe.Add(ref or, cWords), i), bByte = EightBits(ref Unsafe.Add(ref or, bWords), i);
            Vector512<ulong> cM = Vector512.Equals(Vector512.Create(cByte) & lanes, lanes), bM = Vector512.Equals(Vector512.Create(bByte) & lanes, lanes);

            Vector512<ulong> g = TableActivationGate.InterpolateEight(ref dr, 0, s, de, degree, wT, wS, wQ, yl);
            Vector512<ulong> rhoG = TableActivationGate.InterpolateEight(ref dr, (nuint)k, s, de, degree, wT, wS, wQ, yl);
            Vector512<ulong> cG = (g & cM) + (rhoG ^ cM) - cM;

            Vector512<ulong> rhoB = Vector512.LoadUnsafe(ref dr, rhoBRow + de), rhoBR = Vector512.LoadUnsafe(ref dr, rhoBRow + s + de);
            Vector512<ulong> xShare = (yi & ones) - Vector512.LoadUnsafe(ref mr, at);
            Vector512<ulong> bX = (xShare & bM) + (((yi * rhoB) - rhoBR) ^ bM) - bM;
            Vector512<ulong> b = (one & bM) + (rhoB ^ bM) - bM;
            Vector512<ulong> sum = cG + (dA * bX) + (dB * b);
            if (!zeroLeft)
            {
                // The left tail's terms (all 0 without a left tail, whose rows are then not dealt), as in FinishRange.
                Vector512<ulong> rhoC = Vector512.LoadUnsafe(ref dr, rhoCRow + de), rhoCR = Vector512.LoadUnsafe(ref dr, rhoCRow + s + de);
                Vector512<ulong> cX = (xShare & cM) + (((yi * rhoC) - rhoCR) ^ cM) - cM;
                Vector512<ulong> c = (one & cM) + (rhoC ^ cM) - cM;
                sum += (aL * xShare) + (bL * one) - (aL * cX) - (bL * c);
            }

            sum.StoreUnsafe(ref outr, at);
        }

        return start + vectorCount;
    }

    /// <summary>
    /// Bits i to i + 7 of a bit vector (bit i in the lowest place); they span two words when i mod 64 &gt; 56 (a chunk
    /// that starts off a multiple of 8), and then i + 7 is an element, so the second word exists.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong EightBits(ref ulong bits, int i)
    {
        int shift = i & 63;
        nuint word = (nuint)(i >> 6);
        ulong value = Unsafe.Add(ref bits, word) >> shift;
        if (shift > 56)
        {
            value |= Unsafe.Add(ref bits, word + 1) << (64 - shift);
        }

        return value & 0xFF;
    }
}
