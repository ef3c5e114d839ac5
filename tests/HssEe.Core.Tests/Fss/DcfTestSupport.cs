using HssEe.Fss;
using HssEe.Randomness;

namespace HssEe.Core.Tests.Fss;

/// <summary>Reference functions and helpers shared by the DPF/DCF tests.</summary>
internal static class DcfTestSupport
{
    public static ulong Mask(int bits) => bits >= 64 ? ulong.MaxValue : (1UL << bits) - 1;

    /// <summary>Random payloads with all 64 bits set at random (the key generator must reduce them mod 2^ell).</summary>
    public static ulong[] RandomWords(AesPrg prg, int count)
    {
        var words = new ulong[count];
        prg.Fill(words);
        return words;
    }

    /// <summary>Random points in [0, 2^n).</summary>
    public static ulong[] RandomPoints(AesPrg prg, int count, int n)
    {
        ulong[] points = RandomWords(prg, count);
        for (int i = 0; i < count; i++)
        {
            points[i] &= Mask(n);
        }

        return points;
    }

    /// <summary>The DCF: beta if x &lt; alpha else 0 (word j, reduced mod 2^ell).</summary>
    public static ulong DcfReference(ulong alpha, ulong x, ulong beta, int ell) => x < alpha ? beta & Mask(ell) : 0;

    /// <summary>The DPF: beta if x == alpha else 0 (word j, reduced mod 2^ell).</summary>
    public static ulong DpfReference(ulong alpha, ulong x, ulong beta, int ell) => x == alpha ? beta & Mask(ell) : 0;

    /// <summary>Both parties' shares add to the expected word; returns a failure description or null.</summary>
    public static string? CheckSum(ulong a, ulong b, ulong expected, int ell, string what)
    {
        ulong sum = (a + b) & Mask(ell);
        if (a > Mask(ell) || b > Mask(ell))
        {
            return $"{what}: a share is not reduced mod 2^{ell} (A={a:X}, B={b:X})";
        }

        return sum == expected ? null : $"{what}: A+B = {sum:X}, expected {expected:X}";
    }

    /// <summary>Evaluates key k of both collections at one point.</summary>
    public static (ulong[] A, ulong[] B) EvalBoth(DcfKeyCollection a, DcfKeyCollection b, int k, ulong x)
    {
        int m = a.PayloadLength;
        var outA = new ulong[m];
        var outB = new ulong[m];
        Dcf.Evaluate(a, k, [x], outA, 1);
        Dcf.Evaluate(b, k, [x], outB, 1);
        return (outA, outB);
    }

    /// <summary>Evaluates key k of both collections at one point.</summary>
    public static (ulong[] A, ulong[] B) EvalBoth(DpfKeyCollection a, DpfKeyCollection b, int k, ulong x)
    {
        int m = a.PayloadLength;
        var outA = new ulong[m];
        var outB = new ulong[m];
        Dpf.Evaluate(a, k, [x], outA, 1);
        Dpf.Evaluate(b, k, [x], outB, 1);
        return (outA, outB);
    }

    /// <summary>The (n, ell, m) grid of the exhaustive tests.</summary>
    public static TheoryData<int, int, int> ExhaustiveGrid()
    {
        var data = new TheoryData<int, int, int>();
        foreach (int n in new[] { 1, 2, 3, 5, 8, 10 })
        {
            foreach (int ell in new[] { 1, 7, 64 })
            {
                foreach (int m in new[] { 1, 3 })
                {
                    data.Add(n, ell, m);
                }
            }
        }

        return data;
    }

    /// <summary>Parameter sets for random large-domain tests: every payload path (single word, packed, one and several wide blocks).</summary>
    public static TheoryData<int, int, int> LargeDomainGrid()
    {
        var data = new TheoryData<int, int, int>();
        foreach (int n in new[] { 64, 40 })
        {
            data.Add(n, 64, 1);
            data.Add(n, 7, 1);
            data.Add(n, 1, 1);
            data.Add(n, 7, 3);
            data.Add(n, 64, 2);
            data.Add(n, 64, 3);
            data.Add(n, 33, 5);
        }

        return data;
    }

    /// <summary>Interesting thresholds for a domain of n bits plus random ones.</summary>
    public static ulong[] Alphas(AesPrg prg, int n, int randomCount)
    {
        ulong max = Mask(n);
        var list = new List<ulong> { 0, 1, 2, max, max - 1, 1UL << (n - 1), (1UL << (n - 1)) - 1 };
        list.AddRange(RandomPoints(prg, randomCount, n));
        return [.. list];
    }

    /// <summary>Boundary points around alpha (reduced mod 2^n): alpha-1, alpha, alpha+1, 0, 2^n-1, and a random point.</summary>
    public static ulong[] BoundaryPoints(ulong alpha, int n, ulong random) =>
        [(alpha - 1) & Mask(n), alpha, (alpha + 1) & Mask(n), 0, Mask(n), random & Mask(n)];
}
