using HssEe.Fss;
using HssEe.Randomness;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>
/// Exact FSS gates on an n-bit signed input (|x| &lt; 2^(n-1)), all in one round: each party adds
/// its share of a dealer mask r (uniform in [0, 2^n)) to its share of x, both open
/// y = x + r mod 2^n, and each evaluates DCF keys at public points derived from y.
/// </summary>
/// <remarks>
/// <para>Notation: N = 2^n, y' = y + N/2 mod N (so that u = x + N/2 = y' - r mod N), y' = y1 2^(n-1) + y0,
/// r = r1 2^(n-1) + r0. The sign of x is the top bit of u: s = y1 XOR r1 XOR w with
/// w = 1{y0 &lt; r0}, one DCF of depth n-1 with threshold r0 evaluated at y0 (BCG+21's split).
/// With c = 1{y' &lt; r} (the wrap of u), x = (y' - N/2) - r + N c in Z_2^64. Every product of s, c
/// with r or r1 is linear in w times a dealer-known payload, so the output is local after the
/// opening.</para>
/// <para>Inputs outside |x| &lt; 2^(n-1) give wrong results (the gate cannot detect this without
/// leaking); choose n per layer from the activation range.</para>
/// </remarks>
internal abstract class MaskedGate : IGateProtocol
{
    /// <summary>Dealer values per element given to the parties as shares (besides the DCF keys).</summary>
    protected abstract int SharedValues { get; }

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int n = step.InputBits;
        int len = step.Inputs[0].ElementCount;
        int k = SharedValues;
        var r = new ulong[len];
        prg.Fill(r);
        ulong nMask = GateMath.Mask(n);
        for (int i = 0; i < len; i++)
        {
            r[i] &= nMask;
        }

        // Layout of each party's key material: primary DCF keys (first, so that evaluation can wrap the
        // record buffer without a copy), dealer value shares, then any secondary keys.
        DealKeys(step, r, prg, a, b);

        // values[j * len + i]: the j-th dealer value of element i (j = 0 is the mask r).
        var values = new ulong[k * len];
        var sharesA = new ulong[k * len];
        a.WriteBytes(GateMath.SeededShares(prg, sharesA));
        DealValues(step, r, values);
        var sharesB = new ulong[k * len];
        for (int i = 0; i < sharesB.Length; i++)
        {
            sharesB[i] = values[i] - sharesA[i];
        }

        b.WriteRing(sharesB);
        DealSecondaryKeys(step, r, prg, a, b);
        Array.Clear(r);
        Array.Clear(values);
        Array.Clear(sharesA);
        Array.Clear(sharesB);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        Share x = inputs[0];
        int len = x.Shape.ElementCount;
        int n = step.InputBits;
        FssKeyParameters primary = PrimaryParameters(step);
        using var dcf = new DcfKeyCollection(context.Party, primary, len, keys.TakeLeadingArray(checked(Dcf.KeySize(primary) * len)));
        var shares = new ulong[SharedValues * len];
        GateMath.ReadDealerShares(context, keys, shares);
        ReadOnlySpan<ulong> xs = x.Value.Span;
        var masked = new ulong[len];
        for (int i = 0; i < len; i++)
        {
            masked[i] = xs[i] + shares[i];
        }

        ulong[] y = await GateMath.OpenAsync(context, masked, n, cancellationToken).ConfigureAwait(false);
        var result = new RingTensor(step.Output);
        Finish(context, step, keys, dcf, y, shares, result.Span);
        Array.Clear(shares);
        return new Share(context.Party, result, OutputFractionalBits(step, x));
    }

    protected abstract void DealValues(PlanStep step, ReadOnlySpan<ulong> r, Span<ulong> values);

    /// <summary>Parameters of the primary DCF key collection (written first).</summary>
    protected abstract FssKeyParameters PrimaryParameters(PlanStep step);

    /// <summary>Writes the primary DCF keys (one per element, parameters <see cref="PrimaryParameters"/>).</summary>
    protected abstract void DealKeys(PlanStep step, ReadOnlySpan<ulong> r, AesPrg prg, KeyMaterial a, KeyMaterial b);

    /// <summary>Writes keys read by <see cref="Finish"/> after the dealer values (none by default).</summary>
    protected virtual void DealSecondaryKeys(PlanStep step, ReadOnlySpan<ulong> r, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
    }

    protected abstract void Finish(GateContext context, PlanStep step, StepKeys keys, DcfKeyCollection primary, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> shares, Span<ulong> output);

    protected abstract int OutputFractionalBits(PlanStep step, Share input);

    /// <summary>Writes a DCF key collection's raw key material.</summary>
    internal static void WriteDcf(KeyMaterial a, KeyMaterial b, (DcfKeyCollection A, DcfKeyCollection B) keys)
    {
        using (keys.A)
        using (keys.B)
        {
            a.WriteBytes(keys.A.Data.AsSpan(0, checked((int)keys.A.KeyMaterialSize)));
            b.WriteBytes(keys.B.Data.AsSpan(0, checked((int)keys.B.KeyMaterialSize)));
        }
    }

    /// <summary>Reads <paramref name="count"/> DCF keys of the given parameters from the step's key material.</summary>
    protected static DcfKeyCollection ReadDcf(GateContext context, StepKeys keys, FssKeyParameters parameters, int count)
    {
        int size = Dcf.KeySize(parameters);
        byte[] data = FssKeyCollection.AllocateKeyData(count, size);
        keys.TakeBytes(checked(size * count)).CopyTo(data);
        return new DcfKeyCollection(context.Party, parameters, count, data);
    }

    /// <summary>Splits y' = y + 2^(n-1) mod 2^n into its top bit and its low n-1 bits.</summary>
    protected static void SplitTop(ReadOnlySpan<ulong> y, int n, Span<ulong> low, Span<byte> top)
    {
        ulong nMask = GateMath.Mask(n);
        ulong half = 1UL << (n - 1);
        for (int i = 0; i < y.Length; i++)
        {
            ulong yp = (y[i] + half) & nMask;
            top[i] = (byte)(yp >> (n - 1));
            low[i] = yp & (half - 1);
        }
    }
}

/// <summary>
/// Faithful truncation: exact arithmetic right shift by f of an n-bit signed value
/// (floor(x / 2^f), no probabilistic error). Key: shares of r and floor(r / 2^f), one DCF of depth
/// n-1 (payload (1 - r1, r1) in Z_2^(64-n+f)) for the wrap c = 1{y' &lt; r}, and one DCF of depth f
/// (payload 1 in Z_2^64) for the borrow b = 1{y' mod 2^f &lt; r mod 2^f}.
/// Online: n bits each way, one round.
/// </summary>
internal sealed class TruncateGate : MaskedGate
{
    public static readonly TruncateGate Instance = new();

    protected override FssKeyParameters PrimaryParameters(PlanStep step) => WrapParameters(step.InputBits, Shift(step));

    protected override int SharedValues => 3; // r, floor(r / 2^f), r1

    internal static int Shift(PlanStep step) => (int)step.Parameters[0];

    internal static FssKeyParameters WrapParameters(int n, int f) => new(n - 1, Math.Clamp(64 - n + f, 1, 64), 2);

    protected override void DealValues(PlanStep step, ReadOnlySpan<ulong> r, Span<ulong> values)
    {
        int n = step.InputBits, f = Shift(step), len = r.Length;
        for (int i = 0; i < len; i++)
        {
            values[i] = r[i];
            values[len + i] = r[i] >> f;
            values[(2 * len) + i] = r[i] >> (n - 1);
        }
    }

    protected override void DealKeys(PlanStep step, ReadOnlySpan<ulong> r, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int n = step.InputBits, f = Shift(step), len = r.Length;
        var alphas = new ulong[len];
        var betas = new ulong[2 * len];
        ulong lowMask = GateMath.Mask(n - 1);
        for (int i = 0; i < len; i++)
        {
            ulong r1 = r[i] >> (n - 1);
            alphas[i] = r[i] & lowMask;
            betas[2 * i] = 1 - r1;
            betas[(2 * i) + 1] = r1;
        }

        FssKeyParameters wrap = WrapParameters(n, f);
        for (int i = 0; i < betas.Length; i++)
        {
            betas[i] &= wrap.OutputMask;
        }

        WriteDcf(a, b, Dcf.GenerateBatch(wrap, alphas, betas, prg));
        Array.Clear(alphas);
        Array.Clear(betas);
    }

    protected override void DealSecondaryKeys(PlanStep step, ReadOnlySpan<ulong> r, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int f = Shift(step), len = r.Length;
        if (f == 0)
        {
            return;
        }

        var alphas = new ulong[len];
        ulong fMask = GateMath.Mask(f);
        for (int i = 0; i < len; i++)
        {
            alphas[i] = r[i] & fMask;
        }

        WriteDcf(a, b, Dcf.GenerateBatch(new FssKeyParameters(f, 64, 1), alphas, [1UL], prg));
        Array.Clear(alphas);
    }

    protected override void Finish(GateContext context, PlanStep step, StepKeys keys, DcfKeyCollection primary, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> shares, Span<ulong> output)
    {
        int n = step.InputBits, f = Shift(step), len = y.Length;
        var low = new ulong[len];
        var top = new byte[len];
        SplitTop(y, n, low, top);
        var wrap = new ulong[2 * len];
        Dcf.EvaluateBatch(primary, low, wrap);
        var borrow = new ulong[len];
        ulong half = 1UL << (n - 1);
        ulong nMask = GateMath.Mask(n);
        if (f > 0)
        {
            using DcfKeyCollection borrowKeys = ReadDcf(context, keys, new FssKeyParameters(f, 64, 1), len);
            var yLow = new ulong[len];
            ulong fMask = GateMath.Mask(f);
            for (int i = 0; i < len; i++)
            {
                yLow[i] = ((y[i] + half) & nMask) & fMask;
            }

            Dcf.EvaluateBatch(borrowKeys, yLow, borrow);
        }

        bool isA = context.IsA;
        ulong wrapScale = n - f >= 64 ? 0 : 1UL << (n - f);
        ulong offset = 1UL << (n - f - 1);
        ReadOnlySpan<ulong> rHigh = shares.Slice(len, len), r1s = shares.Slice(2 * len, len);
        for (int i = 0; i < len; i++)
        {
            ulong yp = (y[i] + half) & nMask;
            // c = 1{y' < r} = r1 + w (1 - r1) when y1 = 0, and r1 w when y1 = 1.
            ulong c = top[i] == 0 ? (r1s[i] + wrap[2 * i]) : wrap[(2 * i) + 1];
            // floor(u / 2^f) = floor(y' / 2^f) - floor(r / 2^f) - b + 2^(n-f) c, and x >> f = that - 2^(n-f-1).
            ulong v = (wrapScale * c) - rHigh[i] - borrow[i];
            output[i] = isA ? v + (yp >> f) - offset : v;
        }
    }

    protected override int OutputFractionalBits(PlanStep step, Share input) => input.FractionalBits - Shift(step);
}

/// <summary>
/// Interval selection for spline gates: shares of the coefficients of the piece of a
/// <see cref="SplineSpec"/> that contains x, output as [2, ...] for degree 1 (slopes at the coefficient
/// scale fc, intercepts at f + fc) or [4, ...] for degree 2 (center at f, quadratic at fc, slope at
/// f + fc, constant at 2f + fc). All K-1 boundary comparisons come from ONE DCF key per element
/// (the sign-gate key: threshold r0, payload 1 - 2 r1), evaluated at the K-1 public points
/// y - b_j, since y - b_j is the masked value of x - b_j under the same mask. One round; every
/// |x - b_j| must be below 2^(n-1).
/// </summary>
internal sealed class IntervalSelectGate : MaskedGate
{
    public static readonly IntervalSelectGate Instance = new();

    protected override FssKeyParameters PrimaryParameters(PlanStep step) => new(step.InputBits - 1, 64, 1);

    protected override int SharedValues => 2; // r, r1

    /// <summary>Coefficient sets per piece: (slope, intercept) for degree 1; (center, quadratic, slope, constant) for degree 2.</summary>
    internal static int Sets(PlanStep step) => step.Parameters.Length > 2 && step.Parameters[2] == 2 ? 4 : 2;

    internal static (ulong[] Boundaries, ulong[][] Coefficients) Decode(PlanStep step)
    {
        int pieces = (int)step.Parameters[0], sets = Sets(step);
        ulong[] all = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(step.Blob.AsSpan()).ToArray();
        var coefficients = new ulong[sets][];
        for (int t = 0; t < sets; t++)
        {
            coefficients[t] = all[(pieces - 1 + (t * pieces))..(pieces - 1 + ((t + 1) * pieces))];
        }

        return (all[..(pieces - 1)], coefficients);
    }

    internal static int CoefficientBits(PlanStep step) => (int)step.Parameters[1];

    protected override void DealValues(PlanStep step, ReadOnlySpan<ulong> r, Span<ulong> values) => ArithmeticSignKeys.DealSignValues(step, r, values);

    protected override void DealKeys(PlanStep step, ReadOnlySpan<ulong> r, AesPrg prg, KeyMaterial a, KeyMaterial b) => ArithmeticSignKeys.DealSignKeys(step, r, prg, a, b);

    protected override void Finish(GateContext context, PlanStep step, StepKeys keys, DcfKeyCollection primary, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> shares, Span<ulong> output)
    {
        int n = step.InputBits, len = y.Length;
        (ulong[] bounds, ulong[][] coefficients) = Decode(step);
        int sets = coefficients.Length;
        bool isA = context.IsA;
        for (int t = 0; t < sets; t++)
        {
            output.Slice(t * len, len).Fill(isA ? coefficients[t][0] : 0);
        }

        var delta = new ulong[sets];
        ReadOnlySpan<ulong> r1 = shares.Slice(len, len);
        ulong one = isA ? 1UL : 0UL;
        ulong nMask = GateMath.Mask(n);
        var shifted = new ulong[len];
        var low = new ulong[len];
        var top = new byte[len];
        var p = new ulong[len];
        for (int j = 0; j < bounds.Length; j++)
        {
            for (int i = 0; i < len; i++)
            {
                shifted[i] = (y[i] - bounds[j]) & nMask;
            }

            SplitTop(shifted, n, low, top);
            Dcf.EvaluateBatch(primary, low, p);
            for (int t = 0; t < sets; t++)
            {
                delta[t] = coefficients[t][j + 1] - coefficients[t][j];
            }

            for (int i = 0; i < len; i++)
            {
                // s_j = 1{x >= b_j} = y1 XOR r1 XOR w at the shifted point.
                ulong s = r1[i] + p[i];
                if (top[i] != 0)
                {
                    s = one - s;
                }

                for (int t = 0; t < sets; t++)
                {
                    output[(t * len) + i] += s * delta[t];
                }
            }
        }
    }

    protected override int OutputFractionalBits(PlanStep step, Share input) => CoefficientBits(step);
}

/// <summary>
/// The one-round sign key with an arithmetic payload (DCF of depth n-1, threshold r0, payload 1 - 2 r1 in
/// Z_2^64), used by the interval-selection gate of the splines, whose output needs the sign as a ring element
/// without a second round.
/// </summary>
internal static class ArithmeticSignKeys
{
    /// <summary>Shares of r and r1 (shared by the sign and interval-selection gates).</summary>
    internal static void DealSignValues(PlanStep step, ReadOnlySpan<ulong> r, Span<ulong> values)
    {
        int n = step.InputBits, len = r.Length;
        for (int i = 0; i < len; i++)
        {
            values[i] = r[i];
            values[len + i] = r[i] >> (n - 1);
        }
    }

    /// <summary>The sign key: DCF of depth n-1, threshold r0, payload 1 - 2 r1 (shared by the sign and interval-selection gates).</summary>
    internal static void DealSignKeys(PlanStep step, ReadOnlySpan<ulong> r, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int n = step.InputBits, len = r.Length;
        var alphas = new ulong[len];
        var betas = new ulong[len];
        ulong lowMask = GateMath.Mask(n - 1);
        for (int i = 0; i < len; i++)
        {
            alphas[i] = r[i] & lowMask;
            betas[i] = 1 - (2 * (r[i] >> (n - 1)));
        }

        MaskedGate.WriteDcf(a, b, Dcf.GenerateBatch(new FssKeyParameters(n - 1, 64, 1), alphas, betas, prg));
        Array.Clear(alphas);
        Array.Clear(betas);
    }
}
