using HssEe.Ee;
using HssEe.Randomness;
using MathNet.Numerics.LinearAlgebra;
using static HssEe.Core.Tests.Ee.EeTestUtil;

namespace HssEe.Core.Tests.Ee;

public class EeTransformTests
{
    public static TheoryData<EeTransformKind, int, int> AllKinds => new()
    {
        { EeTransformKind.Permutation, 37, 1 },
        { EeTransformKind.PositiveScaling, 33, 1 },
        { EeTransformKind.ScaledPermutation, 29, 1 },
        { EeTransformKind.Orthogonal, 24, 1 },
        { EeTransformKind.OrthogonalFixingOnes, 24, 1 },
        { EeTransformKind.PairRotations, 32, 4 },
        { EeTransformKind.PairRotationsHalfSplit, 32, 4 },
    };

    [Theory]
    [MemberData(nameof(AllKinds))]
    public void Decrypt_of_encrypt_is_identity_float32(EeTransformKind kind, int d, int heads)
    {
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(new EeBoundary("b", kind, d, heads)));
        using AesPrg prg = DataPrg(seed);
        float[] x = GaussianF(prg, 5 * d, 3.0);
        float[] enc = new float[x.Length];
        float[] dec = new float[x.Length];
        key.Encrypt("b", x, enc);
        key.Decrypt("b", enc, dec);
        Assert.True(MaxAbsDiff(ToDouble(x), ToDouble(enc)) > 1e-3, $"{kind}: encryption changed nothing (seed {hex})");
        if (kind == EeTransformKind.Permutation)
        {
            Assert.Equal(x, dec);
        }
        else
        {
            AssertClose(ToDouble(x), ToDouble(dec), 2e-6, $"{kind} round trip (seed {hex})");
        }

        // In place gives the same result as out of place.
        float[] inPlace = (float[])x.Clone();
        key.Encrypt("b", inPlace, inPlace);
        Assert.Equal(enc, inPlace);
        key.Decrypt("b", inPlace, inPlace);
        Assert.Equal(dec, inPlace);
    }

    [Theory]
    [MemberData(nameof(AllKinds))]
    public void Decrypt_of_encrypt_is_identity_float64(EeTransformKind kind, int d, int heads)
    {
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(new EeBoundary("b", kind, d, heads)));
        FeatureTransform t = key.GetTransform("b");
        using AesPrg prg = DataPrg(seed);
        double[] x = Gaussian(prg, 4 * d);
        double[] enc = new double[x.Length];
        double[] dec = new double[x.Length];
        t.Apply(x, enc);
        t.ApplyInverse(enc, dec);
        AssertClose(x, dec, 1e-12, $"{kind} float64 round trip (seed {hex})");
    }

    [Theory]
    [MemberData(nameof(AllKinds))]
    public void Inner_axis_matches_last_axis_after_transposition(EeTransformKind kind, int d, int heads)
    {
        // Data [2, d, 3] with the feature axis in the middle, as NCHW channels with H*W = 3.
        const int inner = 3;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(new EeBoundary("b", kind, d, heads)));
        FeatureTransform t = key.GetTransform("b");
        using AesPrg prg = DataPrg(seed);
        double[] x = Gaussian(prg, 2 * d * inner);
        double[] y = new double[x.Length];
        t.Apply(x, y, inner);

        double[] xt = new double[x.Length];
        for (int o = 0; o < 2; o++)
        {
            for (int i = 0; i < d; i++)
            {
                for (int c = 0; c < inner; c++)
                {
                    xt[(((o * inner) + c) * d) + i] = x[(((o * d) + i) * inner) + c];
                }
            }
        }

        double[] yt = new double[x.Length];
        t.Apply(xt, yt);
        double[] back = new double[x.Length];
        for (int o = 0; o < 2; o++)
        {
            for (int i = 0; i < d; i++)
            {
                for (int c = 0; c < inner; c++)
                {
                    back[(((o * d) + i) * inner) + c] = yt[(((o * inner) + c) * d) + i];
                }
            }
        }

        AssertClose(back, y, 1e-14, $"{kind} inner axis (seed {hex})");
        double[] z = new double[x.Length];
        t.ApplyInverse(y, z, inner);
        AssertClose(x, z, 1e-12, $"{kind} inner axis round trip (seed {hex})");
    }

    [Fact]
    public void Shape_errors_name_the_parameter()
    {
        using AesPrg prg = FixedPrg(1);
        using FeatureTransform t = FeatureTransform.Create(new EeBoundary("hidden", EeTransformKind.Orthogonal, 8), prg);
        var e1 = Assert.Throws<ArgumentException>(() => t.Apply(new float[12], new float[12]));
        Assert.Equal("x", e1.ParamName);
        Assert.Contains("hidden", e1.Message, StringComparison.Ordinal);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => t.Apply(new float[16], new float[8])).ParamName);
        Assert.Equal("innerSize", Assert.Throws<ArgumentOutOfRangeException>(() => t.Apply(new float[16], new float[16], 0)).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => t.TransformWeightInputs(new float[20])).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => t.TransformWeightOutputs(new float[20])).ParamName);
        t.Apply(Array.Empty<float>(), Array.Empty<float>()); // empty input is fine
    }

    [Fact]
    public void Standalone_transform_dispose_wipes_and_blocks_use()
    {
        using AesPrg prg = FixedPrg(2);
        var t = (Permutation)FeatureTransform.Create(new EeBoundary("p", EeTransformKind.Permutation, 16), prg);
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.Apply(new float[16], new float[16]));
        Assert.Throws<ObjectDisposedException>(() => t.MapIndex(0));
        Assert.Throws<ObjectDisposedException>(() => t.CopySourceIndices());
        t.Dispose(); // idempotent
    }

    // ---- Permutations ----

    [Fact]
    public void Permutations_are_uniform_chi_square()
    {
        // All 24 permutations of 4 elements over 24000 draws (deterministic seed, so this cannot flake).
        // Chi-square with 23 degrees of freedom: mean 23, the 0.9999 quantile is about 57.
        using AesPrg prg = FixedPrg(0x5a);
        var boundary = new EeBoundary("p", EeTransformKind.Permutation, 4);
        int[] counts = new int[24];
        const int draws = 24000;
        for (int n = 0; n < draws; n++)
        {
            using var p = (Permutation)FeatureTransform.Create(boundary, prg);
            counts[Rank(p.CopySourceIndices())]++;
        }

        double expected = draws / 24.0;
        double chi2 = counts.Sum(c => (c - expected) * (c - expected) / expected);
        Assert.True(chi2 < 57, $"chi-square {chi2:F1} over counts [{string.Join(", ", counts)}]");
        Assert.All(counts, c => Assert.True(c > 0));
    }

    [Fact]
    public void Permutation_index_convention_inverse_and_composition()
    {
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed, "perm");
        var boundary = new EeBoundary("p", EeTransformKind.Permutation, 50);
        using var a = (Permutation)FeatureTransform.Create(boundary, prg);
        using var b = (Permutation)FeatureTransform.Create(boundary, prg);
        float[] x = GaussianF(prg, 50);
        float[] ax = new float[50];
        a.Apply(x, ax);
        int[] src = a.CopySourceIndices();
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(x[src[i]], ax[i]); // y[i] = x[source[i]]
            Assert.Equal(i, a.MapIndex(src[i]));
            Assert.Equal(src[i], a.UnmapIndex(i));
            Assert.Equal(x[i], ax[a.MapIndex(i)]);
        }

        // a.Then(b) applies a first, then b: matrix P_b P_a.
        using Permutation ab = a.Then(b);
        float[] bax = new float[50];
        b.Apply(ax, bax);
        float[] abx = new float[50];
        ab.Apply(x, abx);
        Assert.True(bax.SequenceEqual(abx), $"composition convention (seed {hex})");
        double[] pab = MatMul(DenseMatrix(b), DenseMatrix(a), 50, 50, 50);
        Assert.Equal(pab, DenseMatrix(ab));

        using Permutation inv = a.Inverse();
        float[] back = new float[50];
        inv.Apply(ax, back);
        Assert.Equal(x, back);
        using Permutation id = a.Then(inv);
        Assert.Equal(Enumerable.Range(0, 50).ToArray(), id.CopySourceIndices());

        Assert.Throws<ArgumentException>(() => a.Then(Permutation.FromIndices([0, 1])));
    }

    [Fact]
    public void FromIndices_validates_and_gathers()
    {
        using Permutation p = Permutation.FromIndices([2, 0, 1]);
        float[] y = new float[3];
        p.Apply([10f, 11f, 12f], y);
        Assert.Equal([12f, 10f, 11f], y);
        Assert.Equal(1, p.MapIndex(0));
        Assert.Equal("sourceIndices", Assert.Throws<ArgumentException>(() => Permutation.FromIndices([0, 0, 1])).ParamName);
        Assert.Throws<ArgumentException>(() => Permutation.FromIndices([0, 3, 1]));
        Assert.Throws<ArgumentException>(() => Permutation.FromIndices([-1, 0]));
        Assert.Throws<ArgumentException>(() => Permutation.FromIndices(ReadOnlySpan<int>.Empty));
        Assert.Throws<ArgumentOutOfRangeException>(() => p.MapIndex(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => p.UnmapIndex(-1));
    }

    [Fact]
    public void Permuting_ring_shares_commutes_with_sharing()
    {
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(new EeBoundary("p", EeTransformKind.Permutation, 64)));
        Permutation p = key.GetTransform<Permutation>("p");
        using AesPrg prg = DataPrg(seed);
        ulong[] x = new ulong[3 * 64];
        ulong[] s0 = new ulong[x.Length];
        prg.Fill(x);
        prg.Fill(s0);
        ulong[] s1 = new ulong[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            s1[i] = unchecked(x[i] - s0[i]);
        }

        ulong[] px = new ulong[x.Length];
        ulong[] p0 = new ulong[x.Length];
        ulong[] p1 = new ulong[x.Length];
        p.Permute<ulong>(x, px);
        p.Permute<ulong>(s0, p0);
        p.Permute<ulong>(s1, p1);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(unchecked(p0[i] + p1[i]) == px[i], $"share sum at {i} (seed {hex})");
        }

        ulong[] back = new ulong[x.Length];
        p.Unpermute<ulong>(px, back);
        Assert.Equal(x, back);

        // Partially overlapping source and destination are handled.
        ulong[] buf = new ulong[x.Length + 64];
        x.CopyTo(buf, 0);
        p.Permute<ulong>(buf.AsSpan(0, x.Length), buf.AsSpan(64, x.Length));
        Assert.Equal(px, buf.AsSpan(64).ToArray());
    }

    // ---- Scalings ----

    [Theory]
    [InlineData(EeTransformKind.PositiveScaling)]
    [InlineData(EeTransformKind.ScaledPermutation)]
    public void Scales_are_positive_and_in_the_documented_range(EeTransformKind kind)
    {
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed);
        using var t = (ScaledPermutation)FeatureTransform.Create(new EeBoundary("s", kind, 4000), prg);
        double[] s = t.CopyScales();
        Assert.All(s, v => Assert.True(v >= ScaledPermutation.MinScale && v < ScaledPermutation.MaxScale, $"scale {v} (seed {hex})"));
        Assert.True(s.Min() < 0.55 && s.Max() > 1.9, $"scales should spread over the range (seed {hex})");
        int[] src = t.CopySourceIndices();
        bool identity = src.SequenceEqual(Enumerable.Range(0, 4000));
        Assert.Equal(kind == EeTransformKind.PositiveScaling, identity);
    }

    // ---- Rotations ----

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(32)]
    public void Haar_rotations_are_orthogonal_with_det_plus_minus_one(int d)
    {
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed);
        foreach (EeTransformKind kind in new[] { EeTransformKind.Orthogonal, EeTransformKind.OrthogonalFixingOnes })
        {
            using var t = (OrthogonalTransform)FeatureTransform.Create(new EeBoundary("q", kind, d), prg);
            Matrix<double> q = Matrix<double>.Build.DenseOfRowMajor(d, d, t.CopyMatrix());
            double err = (q.TransposeThisAndMultiply(q) - Matrix<double>.Build.DenseIdentity(d)).Enumerate().Max(Math.Abs);
            Assert.True(err < 1e-12, $"{kind} d={d}: |Q^T Q - I| = {err:E2} (seed {hex})");
            double det = q.Determinant();
            Assert.True(Math.Abs(Math.Abs(det) - 1) < 1e-10, $"{kind} d={d}: det = {det} (seed {hex})");
        }
    }

    [Fact]
    public void Haar_rotations_have_both_determinant_signs_and_unbiased_entries()
    {
        // Deterministic seed. For Haar Q on O(3): E[Q_ii] = 0 and E[Q_00^2] = 1/3. Without the sign
        // correction of R's diagonal, Householder QR gives a biased diagonal, which this catches.
        using AesPrg prg = FixedPrg(0x33);
        var boundary = new EeBoundary("q", EeTransformKind.Orthogonal, 3);
        const int draws = 3000;
        double[] diagSum = new double[3];
        double sq = 0;
        int negative = 0;
        for (int n = 0; n < draws; n++)
        {
            using var t = (OrthogonalTransform)FeatureTransform.Create(boundary, prg);
            double[] q = t.CopyMatrix();
            for (int i = 0; i < 3; i++)
            {
                diagSum[i] += q[(i * 3) + i];
            }

            sq += q[0] * q[0];
            if (Matrix<double>.Build.DenseOfRowMajor(3, 3, q).Determinant() < 0)
            {
                negative++;
            }
        }

        // Standard error of a mean of Q_ii is sqrt(1/3 / 3000) ~ 0.011.
        Assert.All(diagSum, s => Assert.True(Math.Abs(s / draws) < 0.05, $"mean diagonal entry {s / draws:F4}"));
        Assert.True(Math.Abs((sq / draws) - (1.0 / 3)) < 0.03, $"mean Q00^2 = {sq / draws:F4}");
        Assert.InRange(negative, draws * 0.45, draws * 0.55);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(48)]
    public void Rotations_fixing_ones_fix_the_all_ones_vector(int d)
    {
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed);
        using var t = (OrthogonalTransform)FeatureTransform.Create(new EeBoundary("q", EeTransformKind.OrthogonalFixingOnes, d), prg);
        double[] ones = Enumerable.Repeat(1.0, d).ToArray();
        double[] y = new double[d];
        t.Apply(ones, y);
        AssertClose(ones, y, 1e-13, $"Q 1 = 1 (seed {hex})");
        t.ApplyInverse(ones, y);
        AssertClose(ones, y, 1e-13, $"Q^T 1 = 1 (seed {hex})");
        double[] q = t.CopyMatrix();
        double offIdentity = 0;
        for (int i = 0; i < d; i++)
        {
            q[(i * d) + i] -= 1;
        }

        offIdentity = q.Max(Math.Abs);

        // For d = 2 the subgroup fixing 1 is {I, reflection}, so the identity is a legitimate draw.
        Assert.True(d == 2 || offIdentity > 0.05, $"the rotation should not be the identity (seed {hex})");
    }

    [Fact]
    public void Rotations_fixing_ones_average_to_the_projection_on_ones()
    {
        // Q = u u^T + B Q' B^T with Q' Haar, so E[Q] = 1 1^T / d. Deterministic seed.
        const int d = 4;
        const int draws = 2000;
        using AesPrg prg = FixedPrg(0x44);
        var boundary = new EeBoundary("q", EeTransformKind.OrthogonalFixingOnes, d);
        double[] mean = new double[d * d];
        for (int n = 0; n < draws; n++)
        {
            using var t = (OrthogonalTransform)FeatureTransform.Create(boundary, prg);
            double[] q = t.CopyMatrix();
            for (int i = 0; i < q.Length; i++)
            {
                mean[i] += q[i] / draws;
            }
        }

        Assert.All(mean, m => Assert.True(Math.Abs(m - (1.0 / d)) < 0.05, $"E[Q_ij] = {m:F4}, expected {1.0 / d}"));
    }

    [Theory]
    [InlineData(EeTransformKind.PairRotations)]
    [InlineData(EeTransformKind.PairRotationsHalfSplit)]
    public void Pair_rotations_are_orthogonal_and_move_whole_heads(EeTransformKind kind)
    {
        const int heads = 5;
        const int hd = 6;
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed);
        using var t = (PairRotationTransform)FeatureTransform.Create(new EeBoundary("h", kind, heads * hd, heads), prg);
        Assert.Equal(heads, t.Heads);
        Assert.Equal(hd, t.HeadDimension);
        int d = heads * hd;
        double[] m = DenseMatrix(t);
        Matrix<double> q = Matrix<double>.Build.DenseOfRowMajor(d, d, m);
        double err = (q.TransposeThisAndMultiply(q) - Matrix<double>.Build.DenseIdentity(d)).Enumerate().Max(Math.Abs);
        Assert.True(err < 1e-13, $"orthogonal (seed {hex})");
        for (int i = 0; i < d; i++)
        {
            for (int j = 0; j < d; j++)
            {
                int outHead = i / hd;
                int inHead = j / hd;
                int pi = i % hd;
                int pj = j % hd;
                bool samePair = kind == EeTransformKind.PairRotations ? pi / 2 == pj / 2 : pi % (hd / 2) == pj % (hd / 2);
                if (outHead != t.MapHead(inHead) || !samePair)
                {
                    Assert.True(m[(i * d) + j] == 0, $"entry ({i}, {j}) should be 0 (seed {hex})");
                }
            }
        }
    }

    private static int Rank(int[] p)
    {
        // Lehmer code rank of a permutation.
        int rank = 0;
        for (int i = 0; i < p.Length; i++)
        {
            int smaller = 0;
            for (int j = i + 1; j < p.Length; j++)
            {
                if (p[j] < p[i])
                {
                    smaller++;
                }
            }

            rank = (rank * (p.Length - i)) + smaller;
        }

        return rank;
    }
}
