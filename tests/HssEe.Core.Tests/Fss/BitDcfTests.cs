using HssEe.Fss;
using HssEe.Randomness;
using HssEe.Sharing;
using static HssEe.Core.Tests.Fss.DcfTestSupport;

namespace HssEe.Core.Tests.Fss;

/// <summary>The one-bit comparison DCF: the two parties' bits always XOR to 1{x &lt; alpha}.</summary>
public class BitDcfTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(10)]
    public void Exhaustive_every_alpha_and_every_x(int n)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        int domain = 1 << n;
        var alphas = new ulong[domain];
        for (int a = 0; a < domain; a++)
        {
            alphas[a] = (ulong)a;
        }

        // Every alpha at every x: one key per (alpha, x) pair, so that every key is used once.
        var allAlphas = new ulong[domain * domain];
        var points = new ulong[domain * domain];
        for (int a = 0; a < domain; a++)
        {
            for (int x = 0; x < domain; x++)
            {
                allAlphas[(a * domain) + x] = alphas[a];
                points[(a * domain) + x] = (ulong)x;
            }
        }

        var repA = new byte[BitDcf.BatchBytes(n, allAlphas.Length)];
        var repB = new byte[repA.Length];
        BitDcf.Generate(n, allAlphas, prg, repA, repB);

        var outA = new byte[points.Length];
        var outB = new byte[points.Length];
        BitDcf.Evaluate(n, Party.A, repA, points, outA);
        BitDcf.Evaluate(n, Party.B, repB, points, outB);
        for (int a = 0; a < domain; a++)
        {
            for (int x = 0; x < domain; x++)
            {
                int idx = (a * domain) + x;
                int expected = x < a ? 1 : 0;
                Assert.True((outA[idx] ^ outB[idx]) == expected, $"n={n} alpha={a} x={x} seed={seed}");
                Assert.True(outA[idx] <= 1 && outB[idx] <= 1, $"output bits must be 0/1, seed={seed}");
            }
        }
    }

    [Theory]
    [InlineData(15)]
    [InlineData(31)]
    [InlineData(40)]
    [InlineData(63)]
    [InlineData(64)]
    public void Random_keys_at_random_and_boundary_points(int n)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        const int Keys = 1003; // not a multiple of the 8-key group
        ulong[] alphas = RandomPoints(prg, Keys, n);
        ulong mask = Mask(n);
        var keysA = new byte[BitDcf.BatchBytes(n, Keys)];
        var keysB = new byte[keysA.Length];
        BitDcf.Generate(n, alphas, prg, keysA, keysB);
        ulong[] random = RandomPoints(prg, Keys, n);
        foreach (Func<int, ulong> point in new Func<int, ulong>[]
        {
            i => random[i],
            i => alphas[i],
            i => (alphas[i] - 1) & mask,
            i => (alphas[i] + 1) & mask,
            i => alphas[i] ^ 1,
            i => alphas[i] ^ (1UL << (n - 1)),
        })
        {
            var points = new ulong[Keys];
            for (int i = 0; i < Keys; i++)
            {
                points[i] = point(i);
            }

            var outA = new byte[Keys];
            var outB = new byte[Keys];
            BitDcf.Evaluate(n, Party.A, keysA, points, outA);
            BitDcf.Evaluate(n, Party.B, keysB, points, outB, maxDegreeOfParallelism: 1);
            for (int i = 0; i < Keys; i++)
            {
                int expected = points[i] < alphas[i] ? 1 : 0;
                Assert.True((outA[i] ^ outB[i]) == expected, $"n={n} key {i}: alpha={alphas[i]} x={points[i]} seed={seed}");
            }
        }
    }

    [Theory]
    [InlineData(BitDcf.Kernel.Avx512)]
    [InlineData(BitDcf.Kernel.AesNi)]
    [InlineData(BitDcf.Kernel.Portable)]
    internal void Every_kernel_agrees_with_the_clear_comparison(BitDcf.Kernel kernel)
    {
        if (!BitDcf.Supports(kernel))
        {
            return; // the machine lacks the instructions; CI machines with them run it
        }

        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        foreach (int n in new[] { 3, 8, 31, 64 })
        {
            const int Keys = 517;
            ulong[] alphas = RandomPoints(prg, Keys, n);
            ulong[] points = RandomPoints(prg, Keys, n);
            points[0] = alphas[0];
            points[1] = (alphas[1] - 1) & Mask(n);
            var keysA = new byte[BitDcf.BatchBytes(n, Keys)];
            var keysB = new byte[keysA.Length];
            BitDcf.Generate(n, alphas, prg, keysA, keysB);
            var outA = new byte[Keys];
            var outB = new byte[Keys];
            BitDcf.Evaluate(n, Party.A, keysA, points, outA, -1, kernel);
            BitDcf.Evaluate(n, Party.B, keysB, points, outB, 1, kernel);
            for (int i = 0; i < Keys; i++)
            {
                Assert.True((outA[i] ^ outB[i]) == (points[i] < alphas[i] ? 1 : 0), $"{kernel} n={n} key {i}, seed={seed}");
            }
        }
    }

    [Theory]
    [InlineData(BitDcf.Kernel.Avx512)]
    [InlineData(BitDcf.Kernel.AesNi)]
    [InlineData(BitDcf.Kernel.Portable)]
    internal void Several_point_sets_in_one_pass_match_separate_evaluations_and_wipe_the_keys(BitDcf.Kernel kernel)
    {
        if (!BitDcf.Supports(kernel))
        {
            return; // the machine lacks the instructions; CI machines with them run it
        }

        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        // near: later sets' points lie within a few hundred of set 0's (two thresholds of one gate), so most share the
        // tree walk and the rest go through the pending blocks; the others are independent points.
        foreach ((int n, int sets, bool near) in new[] { (5, 2, false), (31, 2, false), (40, 3, false), (64, 1, false), (18, 2, true), (40, 3, true), (64, 2, true) })
        {
            const int Keys = 4133; // several chunks and a short last group
            ulong[] alphas = RandomPoints(prg, Keys, n);
            ulong[] points = RandomPoints(prg, sets * Keys, n);
            if (near)
            {
                ulong[] offsets = RandomPoints(prg, sets * Keys, 10);
                for (int i = Keys; i < sets * Keys; i++)
                {
                    points[i] = (points[i % Keys] + offsets[i] - 512) & (n == 64 ? ulong.MaxValue : (1UL << n) - 1);
                }
            }

            points[(sets - 1) * Keys] = alphas[0];
            var keysA = new byte[BitDcf.BatchBytes(n, Keys)];
            var keysB = new byte[keysA.Length];
            BitDcf.Generate(n, alphas, prg, keysA, keysB);
            var outA = new byte[sets * Keys];
            var outB = new byte[sets * Keys];
            BitDcf.EvaluateSetsAndWipe(n, Party.A, keysA, points, outA, sets, kernel);
            BitDcf.EvaluateSetsAndWipe(n, Party.B, keysB, points, outB, sets, kernel);
            for (int j = 0; j < sets; j++)
            {
                for (int i = 0; i < Keys; i++)
                {
                    int expected = points[(j * Keys) + i] < alphas[i] ? 1 : 0;
                    Assert.True((outA[(j * Keys) + i] ^ outB[(j * Keys) + i]) == expected, $"{kernel} n={n} set {j} key {i}, seed={seed}");
                }
            }

            Assert.True(keysA.AsSpan().IndexOfAnyExcept((byte)0) < 0 && keysB.AsSpan().IndexOfAnyExcept((byte)0) < 0, $"{kernel} n={n}: key bytes left (seed {seed})");
        }

        Assert.Throws<ArgumentException>(() => BitDcf.EvaluateSetsAndWipe(8, Party.A, new byte[BitDcf.BatchBytes(8, 10)], new ulong[21], new byte[21], 2, kernel));
    }

    [Theory]
    [InlineData(7)]
    [InlineData(15)]
    [InlineData(40)]
    public void Evaluate_and_wipe_gives_the_same_bits_and_leaves_only_zeros(int n)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        const int Keys = 5000; // several chunks, a short last group
        ulong[] alphas = RandomPoints(prg, Keys, n);
        ulong[] points = RandomPoints(prg, Keys, n);
        var keysA = new byte[BitDcf.BatchBytes(n, Keys)];
        var keysB = new byte[keysA.Length];
        BitDcf.Generate(n, alphas, prg, keysA, keysB);
        foreach ((Party party, byte[] keys) in new[] { (Party.A, keysA), (Party.B, keysB) })
        {
            var expected = new byte[Keys];
            var got = new byte[Keys];
            BitDcf.Evaluate(n, party, keys, points, expected);
            BitDcf.EvaluateAndWipe(n, party, keys, points, got);
            Assert.True(expected.AsSpan().SequenceEqual(got), $"party {party}, n = {n}, seed {seed}");
            Assert.True(keys.AsSpan().IndexOfAnyExcept((byte)0) < 0, $"party {party}: key bytes left after the wiping evaluation (seed {seed})");
        }
    }

    [Fact]
    public void Key_size_matches_the_formula_and_is_below_the_papers_bound()
    {
        foreach (int n in new[] { 1, 7, 8, 15, 31, 40, 63, 64 })
        {
            // Root, d = n - 8 levels and a two-block leaf from n = 8 on; root and one leaf block below.
            int expected = n >= 8 ? 16 * (n - 5) : 32;
            Assert.Equal(expected, BitDcf.KeySize(n));
            long paperBits = ((long)n * (128 + 3)) + 128 + 1; // BCG+21, 1-bit output
            Assert.True(BitDcf.KeySize(n) * 8L <= paperBits + 128, $"n={n}: {BitDcf.KeySize(n)} bytes");
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => BitDcf.KeySize(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => BitDcf.KeySize(65));
    }

    [Fact]
    public void One_party_key_alone_reveals_nothing_obvious_about_alpha()
    {
        // Party A's keys for alpha = 0 and alpha = all-ones have the same bit statistics (no structure leaks).
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        const int n = 31, Keys = 4096;
        double Ones(ulong alpha)
        {
            var alphas = Enumerable.Repeat(alpha, Keys).ToArray();
            var a = new byte[BitDcf.BatchBytes(n, Keys)];
            var b = new byte[a.Length];
            BitDcf.Generate(n, alphas, prg, a, b);
            long ones = 0;
            foreach (byte v in a)
            {
                ones += System.Numerics.BitOperations.PopCount(v);
            }

            return ones / (a.Length * 8.0);
        }

        double z = Ones(0);
        double o = Ones(Mask(n));
        // Bits 0..2 of each block are structured (t/v corrections), so the density sits a little off 1/2;
        // it must not depend on alpha.
        Assert.True(Math.Abs(z - o) < 0.002, $"bit density {z} vs {o}, seed={seed}");
    }
}
