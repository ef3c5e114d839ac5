using System.Security.Cryptography;
using HssEe.Fss;
using HssEe.Randomness;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>
/// Select: <c>bit ? a : c</c> for a shared bit (0 or 1 in Z_2^64, e.g. a sign or interval output) and shared a, c,
/// exact, in one round.
/// </summary>
/// <remarks>
/// <para>Arithmetic shares of a bit reduced mod 2 are XOR shares of it (bit_A + bit_B = bit over Z_2^64, so their
/// low bits XOR to the bit's). So each party can send its low bit XOR its share of a dealer bit rho, and
/// everyone learns <c>b^ = bit XOR rho</c>; in the same message it sends its share of <c>d + r</c>, d = a - c,
/// for a uniform dealer mask r. With <c>bit = b^ + (1 - 2 b^) rho</c> over the integers,
/// <c>bit d = b^ d + (1 - 2 b^)(D [rho] - [rho r])</c> with D = d + r opened, and the output <c>c + bit d</c> is local.</para>
/// <para>Opened values: b^ is a uniform bit (rho), D uniform (r). The bit must really be 0 or 1: any other value
/// gives a wrong result that cannot be detected without leaking it.</para>
/// <para>Key per element: r from two seeds; party B stores shares of rho and rho r (16 bytes) and one bit.
/// Online: 8 bytes and 1 bit each way, one round.</para>
/// </remarks>
internal sealed class SelectGate : IGateProtocol
{
    public static readonly SelectGate Instance = new();

    private const int RingValues = 2; // rho, rho r

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int len = step.Inputs[0].ElementCount, words = (len + 63) / 64;
        var r = new ulong[len];
        (byte[] seedA, byte[] seedB) = GateMath.SeededMask(prg, r);
        var rho = new ulong[words];
        prg.Fill(rho);
        var values = new ulong[(RingValues * len) + words];
        for (int i = 0; i < len; i++)
        {
            ulong bit = BitSignGateBase.Bit(rho, i);
            values[i] = bit;
            values[len + i] = bit * r[i];
        }

        rho.AsSpan().CopyTo(values.AsSpan(RingValues * len));
        byte[] seedValues = GateMath.ShareDealerValues(prg, values, RingValues * len);
        GateMath.WriteSeededKeys(a, b, seedA, seedValues, seedB, values);
        Array.Clear(r);
        Array.Clear(rho);
        Array.Clear(values);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        Share bit = inputs[0], ifOne = inputs[1], ifZero = inputs[2];
        if (bit.FractionalBits != 0)
        {
            throw new ArgumentException($"{step}: the selector must be a bit at scale 0; it carries {bit.FractionalBits} fractional bits.", nameof(inputs));
        }

        if (ifOne.FractionalBits != ifZero.FractionalBits)
        {
            throw new ArgumentException($"{step}: the two choices carry {ifOne.FractionalBits} and {ifZero.FractionalBits} fractional bits; they must agree.", nameof(inputs));
        }

        int len = bit.Shape.ElementCount, words = (len + 63) / 64;
        byte[] seed = keys.TakeBytes(AesPrg.SeedSize).ToArray();
        using DealerShareBuffer dealer = GateMath.DealerShares(context, keys, (RingValues * len) + words);
        ulong[] send = ScratchPool<ulong>.Rent(len + words);
        ulong[] receive = ScratchPool<ulong>.Rent(len + words);
        ulong[] d = ScratchPool<ulong>.Rent(len);
        try
        {
            GateMath.ExpandSeed(seed, send.AsSpan(0, len)); // this party's share of r
            PrepareMessage(bit.Value.Span, ifOne.Value.Span, ifZero.Value.Span, dealer.Span.Slice(RingValues * len, words), d, send, len, words);

            await context.Channel.ExchangeAsync(send.AsMemory(0, len + words), receive.AsMemory(0, len + words), cancellationToken).ConfigureAwait(false);
            ReadOnlySpan<ulong> dl = dealer.Span;
            ReadOnlySpan<ulong> rho = dl[..len], rhoR = dl.Slice(len, len), zero = ifZero.Value.Span;
            var result = new RingTensor(step.Output);
            Span<ulong> output = result.Span;
            for (int i = 0; i < len; i++)
            {
                ulong opened = receive[i] + send[i];
                ulong b = ((receive[len + (i >> 6)] ^ send[len + (i >> 6)]) >> (i & 63)) & 1;
                output[i] = zero[i] + (b * d[i]) + ((1 - (2 * b)) * ((opened * rho[i]) - rhoR[i]));
            }

            return new Share(context.Party, result, ifOne.FractionalBits);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
            ScratchPool<ulong>.Return(send);
            ScratchPool<ulong>.Return(receive);
            ScratchPool<ulong>.Return(d);
        }
    }

    /// <summary>The message: this party's share of d + r (r's share already in <paramref name="send"/>), then its low bits XOR its rho bits.</summary>
    private static void PrepareMessage(ReadOnlySpan<ulong> bits, ReadOnlySpan<ulong> one, ReadOnlySpan<ulong> zero, ReadOnlySpan<ulong> rhoBits, ulong[] d, ulong[] send, int len, int words)
    {
        send.AsSpan(len, words).Clear();
        for (int i = 0; i < len; i++)
        {
            d[i] = one[i] - zero[i];
            send[i] += d[i];
            send[len + (i >> 6)] |= (bits[i] & 1) << (i & 63);
        }

        for (int j = 0; j < words; j++)
        {
            send[len + j] ^= rhoBits[j];
        }
    }
}

/// <summary>
/// Interval containment <c>1{lo &lt;= x &lt; hi}</c> for public bounds, as a bit in Z_2^64, exact, in two rounds.
/// </summary>
/// <remarks>
/// <para><b>Round 1</b> opens y = x + r (n bits). The comparison key of the sign gate (depth n - 1, threshold
/// r mod 2^(n-1)) evaluated at the masked values of x - lo and x - hi gives XOR shares of 1{x &gt;= lo} and
/// 1{x &gt;= hi} (each = top bit XOR r1 XOR w); their XOR is the containment bit, and r1 cancels.</para>
/// <para><b>Round 2</b> opens it XOR rho; <c>[c] = c^ [A] + (1 - 2 c^)[rho]</c>. Every |x - lo| and |x - hi|
/// must be below 2^(n-1). Key per element: the comparison key, 16 (n - 6) bytes per party; party B's share
/// of rho (8 bytes) and one bit. Online: ceil(n/8) bytes and 1 bit each way.</para>
/// </remarks>
internal sealed class IntervalGate : IGateProtocol
{
    public static readonly IntervalGate Instance = new();

    internal static (ulong Lo, ulong Hi) Bounds(PlanStep step) => ((ulong)step.Parameters[0], (ulong)step.Parameters[1]);

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int n = step.InputBits, len = step.Inputs[0].ElementCount, words = (len + 63) / 64;
        var r = new ulong[len];
        (byte[] seedA, byte[] seedB) = GateMath.SeededMask(prg, r);
        var alphas = new ulong[len];
        ulong lowMask = GateMath.Mask(n - 1);
        for (int i = 0; i < len; i++)
        {
            alphas[i] = r[i] & lowMask;
        }

        GateMath.AppendComparisonKeys(step, n - 1, alphas, prg, a, b);
        var rho = new ulong[words];
        prg.Fill(rho);
        var values = new ulong[len + words];
        for (int i = 0; i < len; i++)
        {
            values[i] = BitSignGateBase.Bit(rho, i);
        }

        rho.AsSpan().CopyTo(values.AsSpan(len));
        byte[] seedValues = GateMath.ShareDealerValues(prg, values, len);
        GateMath.WriteSeededKeys(a, b, seedA, seedValues, seedB, values);
        Array.Clear(r);
        Array.Clear(alphas);
        Array.Clear(rho);
        Array.Clear(values);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        Share x = inputs[0];
        int n = step.InputBits, len = x.Shape.ElementCount, words = (len + 63) / 64;
        (ulong lo, ulong hi) = Bounds(step);
        int dcfBytes = checked((int)BitDcf.BatchBytes(n - 1, len));
        (byte[] dcf, int dcfAt) = keys.TakeLeading(dcfBytes);
        byte[] seed = keys.TakeBytes(AesPrg.SeedSize).ToArray();
        using DealerShareBuffer dealer = GateMath.DealerShares(context, keys, len + words);
        ulong[] masked = ScratchPool<ulong>.Rent(len);
        ulong[] y = ScratchPool<ulong>.Rent(len);
        byte[] w = ScratchPool<byte>.Rent(len);
        try
        {
            GateMath.ExpandSeed(seed, masked.AsSpan(0, len));
            ReadOnlySpan<ulong> xs = x.Value.Span;
            for (int i = 0; i < len; i++)
            {
                masked[i] += xs[i];
            }

            await GateMath.OpenIntoAsync(context, masked, len, n, y, cancellationToken).ConfigureAwait(false);
            var mine = new ulong[words];
            ulong nMask = GateMath.Mask(n), half = 1UL << (n - 1);
            foreach (ulong bound in new[] { lo, hi })
            {
                for (int i = 0; i < len; i++)
                {
                    ulong yp = (y[i] - bound + half) & nMask;
                    masked[i] = yp & (half - 1);
                    if (context.IsA)
                    {
                        mine[i >> 6] ^= (yp >> (n - 1)) << (i & 63);
                    }
                }

                BitDcf.Evaluate(n - 1, context.Party, dcf.AsSpan(dcfAt, dcfBytes), masked.AsSpan(0, len), w.AsSpan(0, len));
                for (int i = 0; i < len; i++)
                {
                    mine[i >> 6] ^= (ulong)w[i] << (i & 63);
                }
            }

            ReadOnlySpan<ulong> rhoBits = dealer.Span.Slice(len, words);
            for (int j = 0; j < words; j++)
            {
                mine[j] ^= rhoBits[j];
            }

            ulong[] cHat = await BitSignGateBase.ExchangeBitsAsync(context, mine, len, cancellationToken).ConfigureAwait(false);
            ReadOnlySpan<ulong> rho = dealer.Span[..len];
            ulong one = context.IsA ? 1UL : 0UL;
            var result = new RingTensor(step.Output);
            Span<ulong> output = result.Span;
            for (int i = 0; i < len; i++)
            {
                ulong c = BitSignGateBase.Bit(cHat, i);
                output[i] = (c * one) + ((1 - (2 * c)) * rho[i]);
            }

            return new Share(context.Party, result, 0);
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
