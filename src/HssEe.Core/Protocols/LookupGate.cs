using System.Runtime.InteropServices;
using HssEe.Fss;
using HssEe.Randomness;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>
/// Look-up table gate on a small domain (k &lt;= 16 bits), exact: shares of T[x mod 2^k] for a
/// public table T of 2^k ring elements. The dealer gives shares of a mask r in [0, 2^k) and a DPF
/// key for the point r; the parties open y = x + r mod 2^k, evaluate the DPF on the whole domain
/// (shares of the unit vector e_r), and compute sum_j T[(y - j) mod 2^k] e_r[j] = T[y - r] locally.
/// </summary>
/// <remarks>
/// Key: party A a 16-byte seed, party B 8 bytes, plus one DPF key of depth k per element.
/// Online: ceil(k/8) bytes each way, one round. Local work: 2^k per element.
/// </remarks>
internal sealed class LookupGate : IGateProtocol
{
    public static readonly LookupGate Instance = new();

    internal static int DomainBits(PlanStep step) => step.InputBits;

    internal static int OutputFractionalBits(PlanStep step) => (int)step.Parameters[0];

    internal static ulong[] Table(PlanStep step) => MemoryMarshal.Cast<byte, ulong>(step.Blob.AsSpan()).ToArray();

    private static FssKeyParameters DpfParameters(int k) => new(k, 64, 1);

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int k = DomainBits(step), len = step.Inputs[0].ElementCount;
        var r = new ulong[len];
        prg.Fill(r);
        ulong mask = GateMath.Mask(k);
        for (int i = 0; i < len; i++)
        {
            r[i] &= mask;
        }

        // DPF keys first, so that evaluation wraps the record buffer without a copy.
        (DpfKeyCollection ka, DpfKeyCollection kb) = Dpf.GenerateBatch(DpfParameters(k), r, [1UL], prg);
        using (ka)
        using (kb)
        {
            a.WriteBytes(ka.Data.AsSpan(0, checked((int)ka.KeyMaterialSize)));
            b.WriteBytes(kb.Data.AsSpan(0, checked((int)kb.KeyMaterialSize)));
        }

        var sharesA = new ulong[len];
        a.WriteBytes(GateMath.SeededShares(prg, sharesA));
        var sharesB = new ulong[len];
        for (int i = 0; i < len; i++)
        {
            sharesB[i] = r[i] - sharesA[i];
        }

        b.WriteRing(sharesB);

        Array.Clear(r);
        Array.Clear(sharesA);
        Array.Clear(sharesB);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        Share x = inputs[0];
        int k = DomainBits(step), len = x.Shape.ElementCount, size = 1 << k;
        FssKeyParameters parameters = DpfParameters(k);
        using var dpf = new DpfKeyCollection(context.Party, parameters, len, keys.TakeLeadingArray(checked(Dpf.KeySize(parameters) * len)));
        var rShares = new ulong[len];
        GateMath.ReadDealerShares(context, keys, rShares);

        ReadOnlySpan<ulong> xs = x.Value.Span;
        var masked = new ulong[len];
        for (int i = 0; i < len; i++)
        {
            masked[i] = xs[i] + rShares[i];
        }

        Array.Clear(rShares);
        ulong[] y = await GateMath.OpenAsync(context, masked, k, cancellationToken).ConfigureAwait(false);
        ulong[] table = Table(step);
        var output = new ulong[len];
        ulong mask = (ulong)size - 1;
        Parallel.For(0, len, () => new ulong[size], (i, _, unit) =>
        {
            Dpf.EvaluateAll(dpf, i, unit);
            ulong sum = 0;
            ulong yi = y[i];
            for (int j = 0; j < size; j++)
            {
                sum += table[(int)((yi - (ulong)j) & mask)] * unit[j];
            }

            output[i] = sum;
            return unit;
        }, unit => Array.Clear(unit));
        return new Share(context.Party, new RingTensor(output, x.Shape), OutputFractionalBits(step));
    }
}
