using HssEe.Fss;
using HssEe.Randomness;
using static HssEe.Core.Tests.Fss.DcfTestSupport;

namespace HssEe.Core.Tests.Fss;

public class DcfTests
{
    public static TheoryData<int, int, int> Exhaustive => ExhaustiveGrid();

    public static TheoryData<int, int, int> LargeDomain => LargeDomainGrid();

    [Theory]
    [MemberData(nameof(Exhaustive))]
    public void Exhaustive_every_alpha_every_x_shares_add_to_the_comparison(int n, int ell, int m)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        var p = new FssKeyParameters(n, ell, m);
        int size = 1 << n;
        ulong[] alphas = Enumerable.Range(0, size).Select(a => (ulong)a).ToArray();
        ulong[] betas = RandomWords(prg, size * m);
        (DcfKeyCollection keysA, DcfKeyCollection keysB) = Dcf.GenerateBatch(p, alphas, betas, prg);
        using (keysA)
        using (keysB)
        {
            ulong[] xs = Enumerable.Range(0, size).Select(x => (ulong)x).ToArray();
            var outA = new ulong[size * m];
            var outB = new ulong[size * m];
            for (int k = 0; k < size; k++)
            {
                Dcf.Evaluate(keysA, k, xs, outA);
                Dcf.Evaluate(keysB, k, xs, outB);
                for (int x = 0; x < size; x++)
                {
                    for (int j = 0; j < m; j++)
                    {
                        ulong expected = DcfReference(alphas[k], (ulong)x, betas[(k * m) + j], ell);
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
        (DcfKeyCollection keysA, DcfKeyCollection keysB) = Dcf.GenerateBatch(p, alphas, betas, prg);
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

                Dcf.EvaluateBatch(keysA, points, outA);
                Dcf.EvaluateBatch(keysB, points, outB);
                for (int k = 0; k < count; k++)
                {
                    for (int j = 0; j < m; j++)
                    {
                        ulong expected = DcfReference(alphas[k], points[k], betas[(k * m) + j], ell);
                        string? failure = CheckSum(outA[(k * m) + j], outB[(k * m) + j], expected, ell, $"n={n} ell={ell} m={m} alpha={alphas[k]:X} x={points[k]:X} j={j} (seed {seed})");
                        Assert.True(failure is null, failure);
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(64, 64, 1)]
    [InlineData(40, 64, 1)]
    [InlineData(16, 64, 1)]
    [InlineData(24, 7, 3)]
    [InlineData(20, 64, 3)]
    [InlineData(12, 64, 2)]
    public void Batched_evaluation_equals_single_evaluation_for_any_thread_count(int n, int ell, int m)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        var p = new FssKeyParameters(n, ell, m);
        const int Count = 1000;
        ulong[] alphas = RandomPoints(prg, Count, n);
        (DcfKeyCollection keysA, DcfKeyCollection keysB) = Dcf.GenerateBatch(p, alphas, RandomWords(prg, Count * m), prg);
        using (keysA)
        using (keysB)
        {
            ulong[] points = RandomWords(prg, Count); // unmasked: evaluation masks to n bits
            var all = new ulong[Count * m];
            var serial = new ulong[Count * m];
            Dcf.EvaluateBatch(keysA, points, all);
            Dcf.EvaluateBatch(keysA, points, serial, maxDegreeOfParallelism: 1);
            Assert.True(all.SequenceEqual(serial), $"thread count changed the result (seed {seed})");
            var single = new ulong[m];
            for (int k = 0; k < Count; k++)
            {
                Dcf.Evaluate(keysA, k, [points[k]], single);
                Assert.True(single.SequenceEqual(all.AsSpan(k * m, m).ToArray()), $"key {k} (seed {seed})");
            }

            // A sub-range batch uses the right keys.
            var part = new ulong[100 * m];
            Dcf.EvaluateBatch(keysA, 300, points.AsSpan(300, 100), part);
            Assert.True(part.SequenceEqual(all.AsSpan(300 * m, 100 * m).ToArray()), $"sub-range (seed {seed})");
        }
    }

    [Theory]
    [InlineData(9, 64, 100)]
    [InlineData(9, 13, 1000)]
    [InlineData(30, 64, 9)]
    public void Large_payloads_are_correct_for_dcf_and_dpf(int n, int ell, int m)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        var p = new FssKeyParameters(n, ell, m);
        const int Count = 12;
        ulong[] alphas = RandomPoints(prg, Count, n);
        alphas[0] = 0;
        alphas[1] = p.InputMask;
        ulong[] betas = RandomWords(prg, Count * m);
        ulong[] points = alphas.Select((a, k) => (k % 3) switch { 0 => a, 1 => (a - 1) & p.InputMask, _ => (a + 1) & p.InputMask }).ToArray();
        (DcfKeyCollection ca, DcfKeyCollection cb) = Dcf.GenerateBatch(p, alphas, betas, prg);
        (DpfKeyCollection pa, DpfKeyCollection pb) = Dpf.GenerateBatch(p, alphas, betas, prg);
        using (ca)
        using (cb)
        using (pa)
        using (pb)
        {
            var oa = new ulong[Count * m];
            var ob = new ulong[Count * m];
            var qa = new ulong[Count * m];
            var qb = new ulong[Count * m];
            Dcf.EvaluateBatch(ca, points, oa);
            Dcf.EvaluateBatch(cb, points, ob);
            Dpf.EvaluateBatch(pa, points, qa);
            Dpf.EvaluateBatch(pb, points, qb);
            for (int k = 0; k < Count; k++)
            {
                for (int j = 0; j < m; j++)
                {
                    int i = (k * m) + j;
                    string? failure = CheckSum(oa[i], ob[i], DcfReference(alphas[k], points[k], betas[i], ell), ell, $"DCF {p} key {k} j={j} (seed {seed})")
                        ?? CheckSum(qa[i], qb[i], DpfReference(alphas[k], points[k], betas[i], ell), ell, $"DPF {p} key {k} j={j} (seed {seed})");
                    Assert.True(failure is null, failure);
                }
            }
        }
    }

    [Fact]
    public void Evaluation_points_are_masked_to_n_bits()
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        var p = new FssKeyParameters(10, 64, 1);
        (DcfKeyCollection a, DcfKeyCollection b) = Dcf.Generate(p, 300, [12345], prg);
        using (a)
        using (b)
        {
            ulong[] xs = [5, 299, 300, 301, 1023];
            var plain = new ulong[xs.Length];
            var high = new ulong[xs.Length];
            Dcf.Evaluate(a, 0, xs, plain);
            Dcf.Evaluate(a, 0, xs.Select(x => x | (0xABCDUL << 10)).ToArray(), high);
            Assert.True(plain.SequenceEqual(high), $"seed {seed}");
        }
    }

    [Fact]
    public void Key_generation_is_deterministic_given_the_prg_and_independent_of_threads()
    {
        byte[] seed = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
        var p = new FssKeyParameters(40, 64, 1);
        ulong[] alphas = Enumerable.Range(0, 700).Select(i => (ulong)i * 1_234_567_891UL & p.InputMask).ToArray();
        using AesPrg prg1 = AesPrg.CreateDeterministicForTesting(seed);
        using AesPrg prg2 = AesPrg.CreateDeterministicForTesting(seed);
        (DcfKeyCollection a1, DcfKeyCollection b1) = Dcf.GenerateBatch(p, alphas, [7UL], prg1, maxDegreeOfParallelism: 1);
        (DcfKeyCollection a2, DcfKeyCollection b2) = Dcf.GenerateBatch(p, alphas, [7UL], prg2);
        using (a1)
        using (b1)
        using (a2)
        using (b2)
        {
            Assert.True(a1.ToArray().SequenceEqual(a2.ToArray()), Convert.ToHexString(seed));
            Assert.True(b1.ToArray().SequenceEqual(b2.ToArray()), Convert.ToHexString(seed));
        }
    }

    [Fact]
    public void A_single_partys_outputs_look_uniform_below_and_above_alpha()
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        const int N = 4000;
        foreach (int ell in new[] { 64, 1 })
        {
            var p = new FssKeyParameters(16, ell, 1);
            ulong[] alphas = new ulong[N];
            ulong[] below = new ulong[N];
            ulong[] above = new ulong[N];
            for (int k = 0; k < N; k++)
            {
                alphas[k] = 1 + prg.NextUInt64((1UL << 16) - 2);
                below[k] = prg.NextUInt64(alphas[k]);
                above[k] = alphas[k] + prg.NextUInt64((1UL << 16) - alphas[k]);
            }

            (DcfKeyCollection keysA, DcfKeyCollection keysB) = Dcf.GenerateBatch(p, alphas, [1UL], prg);
            using (keysA)
            using (keysB)
            {
                foreach ((DcfKeyCollection keys, string who) in new[] { (keysA, "A"), (keysB, "B") })
                {
                    var lo = new ulong[N];
                    var hi = new ulong[N];
                    Dcf.EvaluateBatch(keys, below, lo);
                    Dcf.EvaluateBatch(keys, above, hi);
                    AssertUniformBits(lo, ell, $"party {who}, ell={ell}, x < alpha (seed {seed})");
                    AssertUniformBits(hi, ell, $"party {who}, ell={ell}, x >= alpha (seed {seed})");
                }
            }
        }
    }

    internal static void AssertUniformBits(ulong[] values, int ell, string what)
    {
        // Each bit is Binomial(N, 1/2) if the share is uniform: allow 5 standard deviations.
        double n = values.Length;
        double limit = 5 * Math.Sqrt(n) / 2;
        for (int bit = 0; bit < ell; bit++)
        {
            int ones = values.Count(v => ((v >> bit) & 1) != 0);
            Assert.True(Math.Abs(ones - (n / 2)) <= limit, $"{what}: bit {bit} is set in {ones} of {n} outputs");
        }
    }

    [Fact]
    public void Invalid_inputs_are_rejected_with_clear_messages()
    {
        using AesPrg prg = AesPrg.Create();
        var p = new FssKeyParameters(8, 64, 2);
        ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => Dcf.GenerateBatch(p, [3, 256], new ulong[4], prg));
        Assert.Contains("alpha[1] = 256", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Dcf.Generate(p, 3, [1], prg));
        Assert.Throws<ArgumentException>(() => Dcf.GenerateBatch(p, [1, 2, 3], new ulong[4], prg));
        Assert.Throws<ArgumentException>(() => Dcf.Generate(default, 3, [1], prg));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FssKeyParameters(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FssKeyParameters(65));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FssKeyParameters(8, 65));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FssKeyParameters(8, 64, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dcf.GenerateBatch(p, [3], new ulong[2], prg, maxDegreeOfParallelism: 0));

        (DcfKeyCollection a, DcfKeyCollection b) = Dcf.GenerateBatch(p, [3, 4], new ulong[2], prg);
        using (a)
        using (b)
        {
            Assert.Throws<ArgumentException>(() => Dcf.EvaluateBatch(a, new ulong[3], new ulong[6]));
            Assert.Throws<ArgumentException>(() => Dcf.EvaluateBatch(a, new ulong[2], new ulong[3]));
            Assert.Throws<ArgumentOutOfRangeException>(() => Dcf.EvaluateBatch(a, 1, new ulong[2], new ulong[4]));
            Assert.Throws<ArgumentOutOfRangeException>(() => Dcf.Evaluate(a, 2, new ulong[1], new ulong[2]));
            Assert.Throws<ArgumentOutOfRangeException>(() => Dcf.Evaluate(a, 0, new ulong[1], new ulong[2], maxDegreeOfParallelism: -2));
        }
    }

    [Fact]
    public void Empty_batches_work()
    {
        using AesPrg prg = AesPrg.Create();
        (DcfKeyCollection a, DcfKeyCollection b) = Dcf.GenerateBatch(new FssKeyParameters(8), [], [1UL], prg);
        using (a)
        using (b)
        {
            Assert.Equal(0, a.Count);
            Dcf.EvaluateBatch(a, [], []);
            using DcfKeyCollection back = DcfKeyCollection.Read(a.ToArray());
            Assert.Equal(0, back.Count);
        }
    }

    [Fact]
    public void Dispose_zeroes_the_keys_and_ToString_hides_them()
    {
        using AesPrg prg = AesPrg.Create();
        var p = new FssKeyParameters(16, 64, 1);
        (DcfKeyCollection a, DcfKeyCollection b) = Dcf.GenerateBatch(p, [5, 6, 7], [9UL], prg);
        using (b)
        {
            string hex = Convert.ToHexString(a.DataForTests.AsSpan(0, 8));
            string text = a.ToString();
            Assert.DoesNotContain(hex, text, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("hidden", text, StringComparison.Ordinal);
            Assert.Contains("party A", text, StringComparison.Ordinal);
            Assert.Contains(a.DataForTests, v => v != 0);
            a.Dispose();
            Assert.True(a.IsDisposed);
            Assert.All(a.DataForTests, v => Assert.Equal(0, v));
            Assert.Throws<ObjectDisposedException>(() => Dcf.EvaluateBatch(a, new ulong[3], new ulong[3]));
            Assert.Throws<ObjectDisposedException>(() => a.Write(new MemoryStream()));
            Assert.Throws<ObjectDisposedException>(() => a.Slice(0, 1));
            a.Dispose(); // idempotent
        }
    }

    [Fact]
    public void Slice_copies_keys_that_evaluate_like_the_originals()
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        var p = new FssKeyParameters(32, 64, 1);
        ulong[] alphas = RandomPoints(prg, 50, 32);
        (DcfKeyCollection a, DcfKeyCollection b) = Dcf.GenerateBatch(p, alphas, [1UL], prg);
        using (a)
        using (b)
        using (DcfKeyCollection sa = a.Slice(10, 20))
        using (DcfKeyCollection sb = b.Slice(10, 20))
        {
            Assert.Equal(20, sa.Count);
            ulong[] points = RandomPoints(prg, 20, 32);
            var oa = new ulong[20];
            var ob = new ulong[20];
            Dcf.EvaluateBatch(sa, points, oa);
            Dcf.EvaluateBatch(sb, points, ob);
            for (int k = 0; k < 20; k++)
            {
                Assert.True(oa[k] + ob[k] == (points[k] < alphas[10 + k] ? 1UL : 0UL), $"key {k} (seed {seed})");
            }

            Assert.Throws<ArgumentOutOfRangeException>(() => a.Slice(40, 11));
        }
    }
}
