using HssEe.Fss;
using HssEe.Randomness;
using static HssEe.Core.Tests.Fss.DcfTestSupport;

namespace HssEe.Core.Tests.Fss;

public class DpfTests
{
    public static TheoryData<int, int, int> Exhaustive => ExhaustiveGrid();

    public static TheoryData<int, int, int> LargeDomain => LargeDomainGrid();

    [Theory]
    [MemberData(nameof(Exhaustive))]
    public void Exhaustive_every_alpha_every_x_shares_add_to_the_point_function_and_EvaluateAll_matches(int n, int ell, int m)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        var p = new FssKeyParameters(n, ell, m);
        int size = 1 << n;
        ulong[] alphas = Enumerable.Range(0, size).Select(a => (ulong)a).ToArray();
        ulong[] betas = RandomWords(prg, size * m);
        (DpfKeyCollection keysA, DpfKeyCollection keysB) = Dpf.GenerateBatch(p, alphas, betas, prg);
        using (keysA)
        using (keysB)
        {
            ulong[] xs = Enumerable.Range(0, size).Select(x => (ulong)x).ToArray();
            var outA = new ulong[size * m];
            var outB = new ulong[size * m];
            var allA = new ulong[size * m];
            var allB = new ulong[size * m];
            for (int k = 0; k < size; k++)
            {
                Dpf.Evaluate(keysA, k, xs, outA);
                Dpf.Evaluate(keysB, k, xs, outB);
                Dpf.EvaluateAll(keysA, k, allA);
                Dpf.EvaluateAll(keysB, k, allB);
                Assert.True(outA.SequenceEqual(allA), $"EvaluateAll != pointwise, party A, n={n} ell={ell} m={m} alpha={k} (seed {seed})");
                Assert.True(outB.SequenceEqual(allB), $"EvaluateAll != pointwise, party B, n={n} ell={ell} m={m} alpha={k} (seed {seed})");
                for (int x = 0; x < size; x++)
                {
                    for (int j = 0; j < m; j++)
                    {
                        ulong expected = DpfReference(alphas[k], (ulong)x, betas[(k * m) + j], ell);
                        string? failure = CheckSum(outA[(x * m) + j], outB[(x * m) + j], expected, ell, $"n={n} ell={ell} m={m} alpha={k} x={x} j={j} (seed {seed})");
                        Assert.True(failure is null, failure);
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(LargeDomain))]
    public void Random_large_domain_keys_are_correct_at_boundary_points(int n, int ell, int m)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        var p = new FssKeyParameters(n, ell, m);
        ulong[] alphas = Alphas(prg, n, 57);
        int count = alphas.Length;
        ulong[] betas = RandomWords(prg, count * m);
        (DpfKeyCollection keysA, DpfKeyCollection keysB) = Dpf.GenerateBatch(p, alphas, betas, prg);
        using (keysA)
        using (keysB)
        {
            ulong[] random = RandomWords(prg, count);
            var outA = new ulong[count * m];
            var outB = new ulong[count * m];
            for (int which = 0; which < 6; which++)
            {
                ulong[] points = new ulong[count];
                for (int k = 0; k < count; k++)
                {
                    points[k] = BoundaryPoints(alphas[k], n, random[k])[which];
                }

                Dpf.EvaluateBatch(keysA, points, outA);
                Dpf.EvaluateBatch(keysB, points, outB);
                for (int k = 0; k < count; k++)
                {
                    for (int j = 0; j < m; j++)
                    {
                        ulong expected = DpfReference(alphas[k], points[k], betas[(k * m) + j], ell);
                        string? failure = CheckSum(outA[(k * m) + j], outB[(k * m) + j], expected, ell, $"n={n} ell={ell} m={m} alpha={alphas[k]:X} x={points[k]:X} j={j} (seed {seed})");
                        Assert.True(failure is null, failure);
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(16, 64, 1)]
    [InlineData(16, 1, 1)]
    [InlineData(13, 8, 4)]
    [InlineData(12, 64, 3)]
    [InlineData(4, 3, 1)]
    [InlineData(1, 64, 1)]
    public void EvaluateAll_equals_pointwise_and_EvaluateAllBatch_equals_EvaluateAll(int n, int ell, int m)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        var p = new FssKeyParameters(n, ell, m);
        const int Count = 5;
        ulong[] alphas = RandomPoints(prg, Count, n);
        ulong[] betas = RandomWords(prg, Count * m);
        (DpfKeyCollection a, DpfKeyCollection b) = Dpf.GenerateBatch(p, alphas, betas, prg);
        using (a)
        using (b)
        {
            long table = (1L << n) * m;
            var batchA = new ulong[Count * table];
            var batchB = new ulong[Count * table];
            Dpf.EvaluateAllBatch(a, batchA);
            Dpf.EvaluateAllBatch(b, batchB);
            ulong[] xs = Enumerable.Range(0, 1 << n).Select(x => (ulong)x).ToArray();
            var one = new ulong[table];
            var pointwise = new ulong[table];
            for (int k = 0; k < Count; k++)
            {
                Dpf.EvaluateAll(a, k, one);
                Assert.True(one.AsSpan().SequenceEqual(batchA.AsSpan((int)(k * table), (int)table)), $"batch vs single, key {k} (seed {seed})");
                Dpf.Evaluate(a, k, xs, pointwise);
                Assert.True(one.SequenceEqual(pointwise), $"EvaluateAll vs pointwise, key {k} (seed {seed})");
                for (int x = 0; x < 1 << n; x++)
                {
                    for (int j = 0; j < m; j++)
                    {
                        long i = (k * table) + ((long)x * m) + j;
                        ulong expected = DpfReference(alphas[k], (ulong)x, betas[(k * m) + j], ell);
                        string? failure = CheckSum(batchA[i], batchB[i], expected, ell, $"key {k} x={x} j={j} (seed {seed})");
                        Assert.True(failure is null, failure);
                    }
                }
            }
        }
    }

    [Fact]
    public void Batched_evaluation_equals_single_evaluation()
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        foreach (var p in new[] { new FssKeyParameters(64, 64, 1), new FssKeyParameters(20, 16, 3), new FssKeyParameters(30, 64, 4) })
        {
            const int Count = 700;
            int m = p.PayloadLength;
            (DpfKeyCollection a, DpfKeyCollection b) = Dpf.GenerateBatch(p, RandomPoints(prg, Count, p.InputBits), RandomWords(prg, Count * m), prg);
            using (a)
            using (b)
            {
                ulong[] points = RandomWords(prg, Count);
                var all = new ulong[Count * m];
                var serial = new ulong[Count * m];
                Dpf.EvaluateBatch(a, points, all);
                Dpf.EvaluateBatch(a, points, serial, maxDegreeOfParallelism: 1);
                Assert.True(all.SequenceEqual(serial), $"{p}: thread count changed the result (seed {seed})");
                var single = new ulong[m];
                for (int k = 0; k < Count; k++)
                {
                    Dpf.Evaluate(a, k, [points[k]], single);
                    Assert.True(single.SequenceEqual(all.AsSpan(k * m, m).ToArray()), $"{p}: key {k} (seed {seed})");
                }
            }
        }
    }

    [Fact]
    public void Early_termination_depth_follows_the_payload_size()
    {
        Assert.Equal(1, Dpf.EarlyTerminationLevels(new FssKeyParameters(64, 64, 1)));
        Assert.Equal(7, Dpf.EarlyTerminationLevels(new FssKeyParameters(64, 1, 1)));
        Assert.Equal(3, Dpf.EarlyTerminationLevels(new FssKeyParameters(16, 16, 1)));
        Assert.Equal(2, Dpf.EarlyTerminationLevels(new FssKeyParameters(16, 8, 3)));
        Assert.Equal(0, Dpf.EarlyTerminationLevels(new FssKeyParameters(16, 64, 3)));
        Assert.Equal(2, Dpf.EarlyTerminationLevels(new FssKeyParameters(2, 1, 1)));
        Assert.Equal(64, Dpf.AesBlocksPerEvaluation(new FssKeyParameters(64, 64, 1)));
        Assert.Equal(58, Dpf.AesBlocksPerEvaluation(new FssKeyParameters(64, 1, 1)));
    }

    [Fact]
    public void A_single_partys_outputs_look_uniform_at_and_off_the_point()
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        const int N = 4000;
        var p = new FssKeyParameters(16, 64, 1);
        ulong[] alphas = RandomPoints(prg, N, 16);
        ulong[] off = alphas.Select(a => (a + 1 + prg.NextUInt64(65535)) & 0xFFFF).ToArray();
        (DpfKeyCollection a, DpfKeyCollection b) = Dpf.GenerateBatch(p, alphas, [1UL], prg);
        using (a)
        using (b)
        {
            var at = new ulong[N];
            var elsewhere = new ulong[N];
            Dpf.EvaluateBatch(a, alphas, at);
            Dpf.EvaluateBatch(a, off, elsewhere);
            DcfTests.AssertUniformBits(at, 64, $"party A at alpha (seed {seed})");
            DcfTests.AssertUniformBits(elsewhere, 64, $"party A off alpha (seed {seed})");
        }
    }

    [Fact]
    public void Invalid_inputs_are_rejected()
    {
        using AesPrg prg = AesPrg.Create();
        var p = new FssKeyParameters(21, 64, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => Dpf.Generate(p, 1UL << 21, [1], prg));
        (DpfKeyCollection a, DpfKeyCollection b) = Dpf.Generate(p, 5, [1], prg);
        using (a)
        using (b)
        {
            ArgumentException e = Assert.Throws<ArgumentException>(() => Dpf.EvaluateAll(a, 0, new ulong[1 << 21]));
            Assert.Contains("n <= 20", e.Message, StringComparison.Ordinal);
        }

        var q = new FssKeyParameters(4, 64, 2);
        (DpfKeyCollection c, DpfKeyCollection d) = Dpf.Generate(q, 5, [1, 2], prg);
        using (c)
        using (d)
        {
            Assert.Throws<ArgumentException>(() => Dpf.EvaluateAll(c, 0, new ulong[16]));
            Assert.Throws<ArgumentOutOfRangeException>(() => Dpf.EvaluateAll(c, 1, new ulong[32]));
            Assert.Throws<ArgumentException>(() => Dpf.EvaluateAllBatch(c, new ulong[33]));
        }
    }
}
