using System.Security.Cryptography;
using HssEe.Fss;
using HssEe.Randomness;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>
/// Sign and ReLU on an n-bit signed input (|x| &lt; 2^(n-1)) from the one-bit comparison DCF
/// (<see cref="BitDcf"/>), in two rounds (SIGMA's DReLU + select, with our own derivation).
/// </summary>
/// <remarks>
/// <para><b>Round 1.</b> Each party adds its share of a uniform 64-bit dealer mask r to its share of x
/// and both open y = x + r (64 bits for ReLU; n bits for the sign, which needs only y mod 2^n). With
/// y' = y + 2^(n-1) mod 2^n = y1 2^(n-1) + y0 and r mod 2^n = r1 2^(n-1) + r0, the sign bit of x is
/// s = 1{x &gt;= 0} = y1 XOR r1 XOR w, w = 1{y0 &lt; r0}; w comes XOR-shared from one comparison-DCF key
/// of depth n-1 evaluated at y0.</para>
/// <para><b>Round 2.</b> The parties open s^ = s XOR rho for a dealer bit rho: party A sends
/// w_A XOR y1 XOR c_A, party B sends w_B XOR c_B, where c_A XOR c_B = r1 XOR rho (one bit per element each
/// way). Then s = s^ + rho (1 - 2 s^) over the integers, so with dealer shares of rho, r and rho r:
/// <c>[s] = s^ [A] + (1 - 2 s^) [rho]</c> and
/// <c>[s x] = s^ y [A] - s^ [r] + (1 - 2 s^) (y [rho] - [rho r])</c>, both local and exact.</para>
/// <para>Opened values: y is uniform (r is), s^ is a uniform bit (rho is). Inputs outside
/// |x| &lt; 2^(n-1) give wrong results (undetectable without leaking); choose n from the activation range.</para>
/// <para>Key per element and party: the DCF key, 16 (n - 8 + 2) bytes for n &gt; 8, plus shares of rho
/// (and rho r for ReLU) and one bit; r is the sum of two seed expansions (one per party), and party A's
/// other shares come from a seed too, so party B stores 8 (ReLU: 16) bytes and a bit beyond the DCF key.</para>
/// </remarks>
internal abstract class BitSignGateBase : IGateProtocol
{
    /// <summary>Ring values per element besides the bit (rho[, rho r]); r itself comes from the parties' seeds.</summary>
    protected abstract int RingValues { get; }

    /// <summary>Bits of y opened in round 1.</summary>
    protected abstract int OpenBits(int n);

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int n = step.InputBits;
        int len = step.Inputs[0].ElementCount;
        int k = RingValues;
        int words = (len + 63) / 64;

        // r = r_A + r_B, each party's share expanded from its own seed.
        var r = new ulong[len];
        (byte[] seedA, byte[] seedB) = GateMath.SeededMask(prg, r);
        var rho = new ulong[words];
        prg.Fill(rho);
        ulong lowMask = GateMath.Mask(n - 1);
        var alphas = new ulong[len];
        for (int i = 0; i < len; i++)
        {
            alphas[i] = r[i] & lowMask;
        }

        // DCF keys first, so that evaluation can wrap the record buffer without a copy.
        GateMath.AppendComparisonKeys(step, n - 1, alphas, prg, a, b);

        // values[j * len + i] (j < k), then the bit words c = r1 XOR rho.
        var values = new ulong[(k * len) + words];
        for (int i = 0; i < len; i++)
        {
            ulong rh = (rho[i >> 6] >> (i & 63)) & 1;
            values[i] = rh;
            if (k == 2)
            {
                values[len + i] = rh * r[i];
            }

            ulong c = ((r[i] >> (n - 1)) & 1) ^ rh;
            values[(k * len) + (i >> 6)] |= c << (i & 63);
        }

        byte[] seedValues = GateMath.ShareDealerValues(prg, values, k * len);
        GateMath.WriteSeededKeys(a, b, seedA, seedValues, seedB, values);
        Array.Clear(r);
        Array.Clear(rho);
        Array.Clear(alphas);
        Array.Clear(values);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        Share x = inputs[0];
        int len = x.Shape.ElementCount;
        int n = step.InputBits;
        int k = RingValues;
        int words = (len + 63) / 64;
        int dcfBytes = checked((int)BitDcf.BatchBytes(n - 1, len));
        (byte[] dcf, int dcfAt) = keys.TakeLeading(dcfBytes);
        byte[] seed = keys.TakeBytes(AesPrg.SeedSize).ToArray();

        // Temporaries come from the pool (10^6 elements would otherwise fault in fresh pages every call).
        using DealerShareBuffer dealer = GateMath.DealerShares(context, keys, (k * len) + words);
        ulong[] r = ScratchPool<ulong>.Rent(len);
        ulong[] masked = ScratchPool<ulong>.Rent(len);
        ulong[] y = ScratchPool<ulong>.Rent(len);
        byte[] w = ScratchPool<byte>.Rent(len);
        try
        {
            GateMath.ExpandSeed(seed, r.AsSpan(0, len));
            ReadOnlySpan<ulong> xs = x.Value.Span;
            for (int i = 0; i < len; i++)
            {
                masked[i] = xs[i] + r[i];
            }

            await GateMath.OpenIntoAsync(context, masked, len, OpenBits(n), y, cancellationToken).ConfigureAwait(false);

            // w: this party's share of 1{y0 < r0}.
            ulong nMask = GateMath.Mask(n);
            ulong half = 1UL << (n - 1);
            ulong[] low = masked; // reuse
            var mine = new ulong[words];
            for (int i = 0; i < len; i++)
            {
                ulong yp = (y[i] + half) & nMask;
                low[i] = yp & (half - 1);
                mine[i >> 6] |= (yp >> (n - 1)) << (i & 63);
            }

            BitDcf.EvaluateAndWipe(n - 1, context.Party, dcf.AsSpan(dcfAt, dcfBytes), low.AsSpan(0, len), w.AsSpan(0, len));
            keys.MarkLeadingWiped(dcfBytes);
            ReadOnlySpan<ulong> c = dealer.Span.Slice(k * len, words);
            for (int j = 0; j < words; j++)
            {
                ulong packed = 0;
                int count = Math.Min(64, len - (j * 64));
                ReadOnlySpan<byte> bits = w.AsSpan(j * 64, count);
                for (int b = 0; b < count; b++)
                {
                    packed |= (ulong)bits[b] << b;
                }

                mine[j] = packed ^ c[j] ^ (context.IsA ? mine[j] : 0);
            }

            ulong[] sHat = await ExchangeBitsAsync(context, mine, len, cancellationToken).ConfigureAwait(false);
            var result = new RingTensor(step.Output);
            Finish(context, y.AsSpan(0, len), sHat, r.AsSpan(0, len), dealer.Span, len, result.Span);
            return new Share(context.Party, result, OutputFractionalBits(x));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
            ScratchPool<byte>.Return(w);
            ScratchPool<ulong>.Return(r);
            ScratchPool<ulong>.Return(masked);
            ScratchPool<ulong>.Return(y);
        }
    }

    /// <summary>Computes the output shares from y, the opened s^ bits, this party's share of r and its dealer shares.</summary>
    protected abstract void Finish(GateContext context, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> sHat, ReadOnlySpan<ulong> r, ReadOnlySpan<ulong> shares, int len, Span<ulong> output);

    /// <summary>Fractional bits of the output.</summary>
    protected abstract int OutputFractionalBits(Share input);

    /// <summary>Opens XOR-shared bits: each party sends its packed bits (ceil(len / 8) bytes), one round.</summary>
    internal static async Task<ulong[]> ExchangeBitsAsync(GateContext context, ulong[] mine, int len, CancellationToken cancellationToken)
    {
        int bytes = (len + 7) / 8;
        byte[] send = ScratchPool<byte>.Rent(bytes);
        byte[] receive = ScratchPool<byte>.Rent(bytes);
        try
        {
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(mine.AsSpan()).Slice(0, bytes).CopyTo(send);
            await GateMath.ExchangeAsync(context, send.AsMemory(0, bytes), receive.AsMemory(0, bytes), cancellationToken).ConfigureAwait(false);
            var opened = new ulong[mine.Length];
            receive.AsSpan(0, bytes).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(opened.AsSpan()));
            for (int j = 0; j < opened.Length; j++)
            {
                opened[j] ^= mine[j];
            }

            return opened;
        }
        finally
        {
            ScratchPool<byte>.Return(send);
            ScratchPool<byte>.Return(receive);
        }
    }

    /// <summary>Bit i of a packed bit vector.</summary>
    internal static ulong Bit(ReadOnlySpan<ulong> bits, int i) => (bits[i >> 6] >> (i & 63)) & 1;
}

/// <summary>
/// Sign gate: shares of s = 1{x &gt;= 0} in Z_2^64 (see <see cref="BitSignGateBase"/>). Key: the comparison
/// DCF (depth n-1), the seed of r and shares of rho and one bit. Online: n bits + 1 bit each way, two rounds.
/// </summary>
internal sealed class SignGate : BitSignGateBase
{
    public static readonly SignGate Instance = new();

    protected override int RingValues => 1; // rho

    protected override int OpenBits(int n) => n;

    protected override void Finish(GateContext context, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> sHat, ReadOnlySpan<ulong> r, ReadOnlySpan<ulong> shares, int len, Span<ulong> output)
    {
        ReadOnlySpan<ulong> rho = shares[..len];
        ulong a = context.IsA ? 1UL : 0UL;
        for (int i = 0; i < len; i++)
        {
            ulong s = Bit(sHat, i);
            output[i] = (s * a) + ((1 - (2 * s)) * rho[i]);
        }
    }

    protected override int OutputFractionalBits(Share input) => 0;
}

/// <summary>
/// ReLU gate, exact: max(x, 0) (see <see cref="BitSignGateBase"/>). Key: the comparison DCF (depth n-1) and
/// the seed of r and shares of rho, rho r and one bit. Online: 64 bits + 1 bit each way, two rounds.
/// </summary>
internal sealed class ReluGate : BitSignGateBase
{
    public static readonly ReluGate Instance = new();

    protected override int RingValues => 2; // rho, rho r

    protected override int OpenBits(int n) => 64;

    protected override void Finish(GateContext context, ReadOnlySpan<ulong> y, ReadOnlySpan<ulong> sHat, ReadOnlySpan<ulong> r, ReadOnlySpan<ulong> shares, int len, Span<ulong> output)
    {
        ReadOnlySpan<ulong> rho = shares[..len], rhoR = shares.Slice(len, len);
        ulong a = context.IsA ? 1UL : 0UL;
        for (int i = 0; i < len; i++)
        {
            ulong s = Bit(sHat, i);
            output[i] = (s * y[i] * a) - (s * r[i]) + ((1 - (2 * s)) * ((y[i] * rho[i]) - rhoR[i]));
        }
    }

    protected override int OutputFractionalBits(Share input) => input.FractionalBits;
}

/// <summary>
/// Faithful truncation in two rounds from a one-bit comparison DCF on the low bits only: exactly
/// floor(x / 2^s) for |x| &lt; 2^(n-1), n &lt;= 63 (bit-width 64 keeps the one-round <see cref="TruncateGate"/>).
/// </summary>
/// <remarks>
/// <para><b>Round 1.</b> With X = x + 2^(n-1) (party A adds the offset), 0 &lt;= X &lt; 2^n, and k = n + 1, the
/// parties open Y = X + r mod 2^k for a uniform r in [0, 2^k) (ceil(k/8) bytes each). Then, over the integers,
/// <c>floor(X / 2^s) = (Y &gt;&gt; s) - (r &gt;&gt; s) - borrow + 2^(k-s) wrap</c> with
/// borrow = 1{Y mod 2^s &lt; r mod 2^s} and wrap = 1{X + r &gt;= 2^k}. Because X &lt; 2^(k-1), the addition wraps
/// exactly when r's top bit (bit k-1) is set and Y's is clear: wrap = msb(r) (1 - msb(Y)), linear in a dealer
/// value, so only the borrow needs a comparison: one comparison-DCF key of depth s (XOR-shared bit).</para>
/// <para><b>Round 2.</b> The parties open borrow XOR rho (rho a dealer bit) and convert it with dealer shares
/// of rho, as the ReLU gate does. Everything else is local; the result is exact.</para>
/// <para><b>Top-bits borrow</b> (a step compiled with t &lt; s compared bits; the table activations' rescale).
/// The key compares only the top t of the s low bits, 1{Yl &gt;&gt; (s - t) &lt; rl &gt;&gt; (s - t)} (depth t). It
/// can differ from the borrow only when Yl and rl agree in those bits after X's low bits wrapped them, which
/// needs X mod 2^s &gt; 2^s - 2^(s-t): the result is floor(x / 2^s) + 1 there, which is within 2^-t of x / 2^s,
/// and floor(x / 2^s) elsewhere. So the result is floor(x / 2^s) or, only when x / 2^s is within 2^-t below
/// an integer, that integer: never more than 1 - 2^-t below or 2^-t above x / 2^s.</para>
/// <para><b>Key per element.</b> The comparison key (16 (max(t - 7, 0) + 2) bytes, t = s when exact), shares of r &gt;&gt; s,
/// msb(r) and rho (party A: a seed; party B: 24 bytes) and one bit; r itself comes from two seeds.
/// Online: ceil((n + 1) / 8) bytes + 1 bit each way.</para>
/// </remarks>
internal sealed class BitTruncateGate : IGateProtocol
{
    public static readonly BitTruncateGate Instance = new();

    private const int RingValues = 3; // r >> s, msb(r), rho

    /// <summary>k = n + 1: Y = X + r is opened mod 2^k (X = x + 2^(n-1) &lt; 2^(k-1)).</summary>
    internal static int OpenedBits(PlanStep step) => step.InputBits + 1;

    /// <summary>t: the borrow compares the top t of the s low bits (s, exact, unless the step says fewer).</summary>
    internal static int ComparedBits(PlanStep step) =>
        step.Parameters.Length > 1 ? (int)Math.Min(step.Parameters[1], TruncateGate.Shift(step)) : TruncateGate.Shift(step);

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int s = TruncateGate.Shift(step), len = step.Inputs[0].ElementCount;
        if (s == 0)
        {
            return;
        }

        int words = (len + 63) / 64, k = OpenedBits(step);
        ulong kMask = GateMath.Mask(k);
        var r = new ulong[len];
        (byte[] seedA, byte[] seedB) = GateMath.SeededMask(prg, r);
        var alphas = new ulong[len];
        ulong lowMask = GateMath.Mask(s);
        int t = ComparedBits(step);
        for (int i = 0; i < len; i++)
        {
            alphas[i] = (r[i] & lowMask) >> (s - t);
        }

        GateMath.AppendComparisonKeys(step, t, alphas, prg, a, b);

        var rho = new ulong[words];
        prg.Fill(rho);
        var values = new ulong[(RingValues * len) + words];
        for (int i = 0; i < len; i++)
        {
            ulong rk = r[i] & kMask;
            values[i] = rk >> s;
            values[len + i] = rk >> (k - 1);
            values[(2 * len) + i] = BitSignGateBase.Bit(rho, i);
        }

        rho.AsSpan().CopyTo(values.AsSpan(RingValues * len));
        if ((len & 63) != 0)
        {
            values[^1] &= (1UL << (len & 63)) - 1;
        }

        byte[] seedValues = GateMath.ShareDealerValues(prg, values, RingValues * len);
        GateMath.WriteSeededKeys(a, b, seedA, seedValues, seedB, values);
        Array.Clear(r);
        Array.Clear(alphas);
        Array.Clear(rho);
        Array.Clear(values);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        Share x = inputs[0];
        int n = step.InputBits, s = TruncateGate.Shift(step), len = x.Shape.ElementCount;
        if (s == 0)
        {
            return new Share(context.Party, RingTensor.FromSpan(x.Value.Span, x.Shape), x.FractionalBits);
        }

        int words = (len + 63) / 64, t = ComparedBits(step);
        int dcfBytes = checked((int)BitDcf.BatchBytes(t, len));
        (byte[] dcf, int dcfAt) = keys.TakeLeading(dcfBytes);
        byte[] seed = keys.TakeBytes(AesPrg.SeedSize).ToArray();
        using DealerShareBuffer dealer = GateMath.DealerShares(context, keys, (RingValues * len) + words);
        ulong[] masked = ScratchPool<ulong>.Rent(len);
        ulong[] y = ScratchPool<ulong>.Rent(len);
        byte[] w = ScratchPool<byte>.Rent(len);
        try
        {
            GateMath.ExpandSeed(seed, masked.AsSpan(0, len));
            ulong offset = context.IsA ? 1UL << (n - 1) : 0;
            ReadOnlySpan<ulong> xs = x.Value.Span;
            for (int i = 0; i < len; i++)
            {
                masked[i] += xs[i] + offset;
            }

            int k = OpenedBits(step);
            await GateMath.OpenIntoAsync(context, masked, len, k, y, cancellationToken).ConfigureAwait(false);
            ulong lowMask = GateMath.Mask(s);
            for (int i = 0; i < len; i++)
            {
                masked[i] = (y[i] & lowMask) >> (s - t);
            }

            BitDcf.EvaluateAndWipe(t, context.Party, dcf.AsSpan(dcfAt, dcfBytes), masked.AsSpan(0, len), w.AsSpan(0, len));
            keys.MarkLeadingWiped(dcfBytes);
            ReadOnlySpan<ulong> c = dealer.Span.Slice(RingValues * len, words);
            var mine = new ulong[words];
            for (int i = 0; i < len; i++)
            {
                mine[i >> 6] |= (ulong)w[i] << (i & 63);
            }

            for (int j = 0; j < words; j++)
            {
                mine[j] ^= c[j];
            }

            ulong[] bHat = await BitSignGateBase.ExchangeBitsAsync(context, mine, len, cancellationToken).ConfigureAwait(false);
            ReadOnlySpan<ulong> d = dealer.Span;
            ReadOnlySpan<ulong> rHigh = d[..len], msb = d.Slice(len, len), rho = d.Slice(2 * len, len);
            bool isA = context.IsA;
            ulong unOffset = 1UL << (n - 1 - s);
            ulong wrapScale = k - s >= 64 ? 0 : 1UL << (k - s);
            var result = new RingTensor(step.Output);
            Span<ulong> output = result.Span;
            for (int i = 0; i < len; i++)
            {
                ulong b = BitSignGateBase.Bit(bHat, i);
                ulong borrow = (isA ? b : 0) + ((1 - (2 * b)) * rho[i]);
                ulong wrap = (1 - (y[i] >> (k - 1))) * msb[i];
                output[i] = (isA ? (y[i] >> s) - unOffset : 0) - rHigh[i] - borrow + (wrapScale * wrap);
            }

            return new Share(context.Party, result, x.FractionalBits - s);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
            ScratchPool<ulong>.Return(masked);
            ScratchPool<ulong>.Return(y);
            ScratchPool<byte>.Return(w);
        }
    }
}

/// <summary>Truncation by bit-width: the two-round <see cref="BitTruncateGate"/> up to 63 bits, the one-round <see cref="TruncateGate"/> at 64.</summary>
internal sealed class TruncateDispatch : IGateProtocol
{
    public static readonly TruncateDispatch Instance = new();

    private static IGateProtocol For(PlanStep step) => step.InputBits <= 63 ? BitTruncateGate.Instance : TruncateGate.Instance;

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b) => For(step).Deal(step, prg, a, b);

    public Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken) =>
        For(step).EvaluateAsync(context, step, keys, inputs, cancellationToken);
}
