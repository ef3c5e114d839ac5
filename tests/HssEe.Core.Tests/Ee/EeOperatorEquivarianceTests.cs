using HssEe.Ee;
using HssEe.Randomness;
using static HssEe.Core.Tests.Ee.EeTestUtil;

namespace HssEe.Core.Tests.Ee;

/// <summary>
/// One test per row of the operator table of DESIGN.md section 4 (which transforms commute with which
/// operator), on fresh random inputs, plus negative tests showing where equivariance fails.
/// </summary>
public class EeOperatorEquivarianceTests
{
    private const double Tight = 1e-10;

    private static double[] Apply(FeatureTransform t, double[] x, int inner = 1)
    {
        double[] y = new double[x.Length];
        t.Apply(x, y, inner);
        return y;
    }

    // Row 1: linear / matmul / conv commute with any invertible transform on input and output (weights rewritten).
    [Fact]
    public void Linear_commutes_with_any_invertible_transforms_after_weight_rewrite()
    {
        const int dIn = 20;
        const int dOut = 14;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("in", EeTransformKind.Orthogonal, dIn),
            new EeBoundary("out", EeTransformKind.ScaledPermutation, dOut)));
        using AesPrg prg = DataPrg(seed);
        float[] w = GaussianF(prg, dOut * dIn, 0.2);
        float[] b = GaussianF(prg, dOut);
        double[] x = Gaussian(prg, 6 * dIn);
        double[] y = Linear(x, ToDouble(w), ToDouble(b), 6, dIn, dOut);
        key.EncryptWeight(w, "out", "in");
        key.EncryptBias(b, "out");
        double[] ye = Linear(Apply(key.GetTransform("in"), x), ToDouble(w), ToDouble(b), 6, dIn, dOut);
        AssertClose(Apply(key.GetTransform("out"), y), ye, 1e-5, $"linear (seed {hex})");
    }

    // Row 2: element-wise ReLU commutes with permutations and positive diagonal scalings.
    [Theory]
    [InlineData(EeTransformKind.Permutation)]
    [InlineData(EeTransformKind.PositiveScaling)]
    [InlineData(EeTransformKind.ScaledPermutation)]
    public void Relu_commutes_with_permutations_and_positive_scalings(EeTransformKind kind)
    {
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(new EeBoundary("h", kind, 64)));
        FeatureTransform t = key.GetTransform("h");
        using AesPrg prg = DataPrg(seed);
        double[] x = Gaussian(prg, 8 * 64);
        AssertClose(Apply(t, Map(x, Relu)), Map(Apply(t, x), Relu), Tight, $"ReLU {kind} (seed {hex})");
    }

    [Fact]
    public void Relu_does_not_commute_with_a_negative_scaling_or_a_rotation()
    {
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed);
        double[] x = Gaussian(prg, 64);

        // D = diag(-1, 1, -1, 1, ...): ReLU(D x) != D ReLU(x).
        double[] dx = x.Select((v, i) => i % 2 == 0 ? -v : v).ToArray();
        double[] dRelu = Map(x, Relu).Select((v, i) => i % 2 == 0 ? -v : v).ToArray();
        AssertFar(dRelu, Map(dx, Relu), 0.1, $"ReLU with a negative scaling (seed {hex})");

        using var q = FeatureTransform.Create(new EeBoundary("q", EeTransformKind.Orthogonal, 64), prg);
        AssertFar(Apply(q, Map(x, Relu)), Map(Apply(q, x), Relu), 0.1, $"ReLU with a rotation (seed {hex})");
    }

    // Row 3: element-wise GeLU, SiLU, exp commute with permutations (exactly: values only move).
    [Fact]
    public void Gelu_silu_exp_commute_with_permutations()
    {
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(new EeBoundary("mlp", EeTransformKind.Permutation, 96)));
        FeatureTransform p = key.GetTransform("mlp");
        using AesPrg prg = DataPrg(seed);
        double[] x = Gaussian(prg, 5 * 96, 2.0);
        foreach ((string name, Func<double, double> f) in new (string, Func<double, double>)[] { ("GeLU", Gelu), ("SiLU", Silu), ("exp", Math.Exp) })
        {
            Assert.True(Apply(p, Map(x, f)).SequenceEqual(Map(Apply(p, x), f)), $"{name} with a permutation (seed {hex})");
        }
    }

    [Fact]
    public void Silu_and_gelu_do_not_commute_with_a_rotation_or_a_scaling()
    {
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed);
        using var q = FeatureTransform.Create(new EeBoundary("q", EeTransformKind.Orthogonal, 64), prg);
        using var s = FeatureTransform.Create(new EeBoundary("s", EeTransformKind.PositiveScaling, 64), prg);
        double[] x = Gaussian(prg, 4 * 64, 2.0);
        foreach ((string name, Func<double, double> f) in new (string, Func<double, double>)[] { ("GeLU", Gelu), ("SiLU", Silu) })
        {
            AssertFar(Apply(q, Map(x, f)), Map(Apply(q, x), f), 0.05, $"{name} with a rotation (seed {hex})");
            AssertFar(Apply(s, Map(x, f)), Map(Apply(s, x), f), 0.05, $"{name} with a positive scaling (seed {hex})");
        }
    }

    // Row 4: RMSNorm commutes with permutations and orthogonal rotations, with the gain folded into the next linear.
    [Theory]
    [InlineData(EeTransformKind.Orthogonal)]
    [InlineData(EeTransformKind.Permutation)]
    public void Rmsnorm_with_gain_folded_commutes_with_rotations(EeTransformKind kind)
    {
        const int d = 32;
        const int dOut = 24;
        const int rows = 6;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("hidden", kind, d),
            new EeBoundary("out", EeTransformKind.Permutation, dOut)));
        using AesPrg prg = DataPrg(seed);
        double[] x = Gaussian(prg, rows * d, 3.0);
        double[] gain = Gaussian(prg, d).Select(v => 1 + (0.3 * v)).ToArray();
        float[] w = GaussianF(prg, dOut * d, 0.2);

        // Plain: y = W (g * RMSNorm(x)).
        double[] normed = RmsNorm(x, d);
        for (int i = 0; i < normed.Length; i++)
        {
            normed[i] *= gain[i % d];
        }

        double[] y = Linear(normed, ToDouble(w), null, rows, d, dOut);

        // Fold the gain: W_f = W diag(g); rewrite W_f' = T_out W_f Q^-1; run RMSNorm without gain on Q x.
        float[] wf = new float[w.Length];
        for (int o = 0; o < dOut; o++)
        {
            for (int i = 0; i < d; i++)
            {
                wf[(o * d) + i] = (float)(w[(o * d) + i] * gain[i]);
            }
        }

        key.EncryptWeight(wf, "out", "hidden");
        double[] ye = Linear(RmsNorm(Apply(key.GetTransform("hidden"), x), d), ToDouble(wf), null, rows, d, dOut);
        AssertClose(Apply(key.GetTransform("out"), y), ye, 1e-5, $"RMSNorm {kind} (seed {hex})");

        // The norm itself commutes exactly (up to rounding).
        FeatureTransform q = key.GetTransform("hidden");
        AssertClose(Apply(q, RmsNorm(x, d)), RmsNorm(Apply(q, x), d), Tight, $"RMSNorm core {kind} (seed {hex})");
    }

    [Fact]
    public void Rmsnorm_gain_must_be_folded_for_a_rotation()
    {
        const int d = 32;
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed);
        using var q = FeatureTransform.Create(new EeBoundary("q", EeTransformKind.Orthogonal, d), prg);
        double[] x = Gaussian(prg, d);
        double[] gain = Gaussian(prg, d).Select(v => 1 + (0.5 * v)).ToArray();
        double[] withGain(double[] v) => RmsNorm(v, d).Select((t, i) => t * gain[i]).ToArray();
        AssertFar(Apply(q, withGain(x)), withGain(Apply(q, x)), 0.05, $"RMSNorm with an unfolded gain (seed {hex})");
    }

    // Row 5: LayerNorm commutes with permutations and with rotations fixing the all-ones vector (gain and bias folded).
    [Theory]
    [InlineData(EeTransformKind.OrthogonalFixingOnes)]
    [InlineData(EeTransformKind.Permutation)]
    public void Layernorm_with_gain_and_bias_folded_commutes(EeTransformKind kind)
    {
        const int d = 32;
        const int dOut = 20;
        const int rows = 5;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("hidden", kind, d),
            new EeBoundary("out", EeTransformKind.Orthogonal, dOut)));
        using AesPrg prg = DataPrg(seed);
        double[] x = Gaussian(prg, rows * d, 2.0).Select(v => v + 1.5).ToArray(); // non-zero mean
        double[] gain = Gaussian(prg, d).Select(v => 1 + (0.3 * v)).ToArray();
        double[] beta = Gaussian(prg, d, 0.5);
        double[] w = Gaussian(prg, dOut * d, 0.2);
        double[] c = Gaussian(prg, dOut);

        // Plain: y = W (g * LN(x) + beta) + c.
        double[] ln = LayerNorm(x, d);
        for (int i = 0; i < ln.Length; i++)
        {
            ln[i] = (ln[i] * gain[i % d]) + beta[i % d];
        }

        double[] y = Linear(ln, w, c, rows, d, dOut);

        // Folded: W_f = W diag(g), c_f = c + W beta; then EE-rewrite W_f and c_f.
        float[] wf = new float[w.Length];
        float[] cf = new float[dOut];
        for (int o = 0; o < dOut; o++)
        {
            double s = c[o];
            for (int i = 0; i < d; i++)
            {
                wf[(o * d) + i] = (float)(w[(o * d) + i] * gain[i]);
                s += w[(o * d) + i] * beta[i];
            }

            cf[o] = (float)s;
        }

        key.EncryptWeight(wf, "out", "hidden");
        key.EncryptBias(cf, "out");
        double[] ye = Linear(LayerNorm(Apply(key.GetTransform("hidden"), x), d), ToDouble(wf), ToDouble(cf), rows, d, dOut);
        AssertClose(Apply(key.GetTransform("out"), y), ye, 1e-5, $"LayerNorm {kind} (seed {hex})");

        FeatureTransform q = key.GetTransform("hidden");
        AssertClose(Apply(q, LayerNorm(x, d)), LayerNorm(Apply(q, x), d), Tight, $"LayerNorm core {kind} (seed {hex})");
    }

    [Fact]
    public void Layernorm_does_not_commute_with_a_general_rotation()
    {
        const int d = 32;
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed);
        using var q = FeatureTransform.Create(new EeBoundary("q", EeTransformKind.Orthogonal, d), prg);
        double[] x = Gaussian(prg, 4 * d).Select(v => v + 1.0).ToArray();
        AssertFar(Apply(q, LayerNorm(x, d)), LayerNorm(Apply(q, x), d), 0.05, $"LayerNorm with a general rotation (seed {hex})");
    }

    // Row 6: RoPE on q/k pairs commutes with per-pair 2-D rotations and a permutation of whole heads; scores are kept.
    [Theory]
    [InlineData(false, 4, 1)]
    [InlineData(true, 4, 1)]
    [InlineData(false, 2, 3)]
    [InlineData(true, 2, 3)]
    public void Rope_commutes_with_pair_rotations_and_head_permutation(bool halfSplit, int kvHeads, int group)
    {
        const int hd = 16;
        const int seq = 7;
        int qHeads = kvHeads * group;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(EeBoundary.PairRotations("kv", hd, kvHeads, halfSplit)));
        var tk = key.GetTransform<PairRotationTransform>("kv");
        using PairRotationTransform tq = tk.RepeatHeads(group);
        using AesPrg prg = DataPrg(seed);
        double[] q = Gaussian(prg, seq * qHeads * hd);
        double[] k = Gaussian(prg, seq * kvHeads * hd);

        // RoPE(T x) = T RoPE(x), at shifted positions too (KV cache).
        AssertClose(Apply(tq, Rope(q, qHeads, hd, halfSplit, 5)), Rope(Apply(tq, q), qHeads, hd, halfSplit, 5), Tight, $"RoPE q (seed {hex})");
        AssertClose(Apply(tk, Rope(k, kvHeads, hd, halfSplit)), Rope(Apply(tk, k), kvHeads, hd, halfSplit), Tight, $"RoPE k (seed {hex})");

        // Scores of the EE model, head by head, are the plain scores with heads moved by MapHead.
        double[] s = Scores(Rope(q, qHeads, hd, halfSplit), Rope(k, kvHeads, hd, halfSplit), qHeads, kvHeads, hd);
        double[] se = Scores(Rope(Apply(tq, q), qHeads, hd, halfSplit), Rope(Apply(tk, k), kvHeads, hd, halfSplit), qHeads, kvHeads, hd);
        int block = seq * seq;
        double[] moved = new double[s.Length];
        for (int h = 0; h < qHeads; h++)
        {
            Array.Copy(s, h * block, moved, tq.MapHead(h) * block, block);
        }

        AssertClose(moved, se, Tight, $"scores (seed {hex})");

        // Values encrypted with the key/value transform give outputs encrypted with the query-side transform.
        double[] v = Gaussian(prg, seq * kvHeads * hd);
        double[] o = AttentionOutput(Softmax(s, seq), v, qHeads, kvHeads, hd, seq);
        double[] oe = AttentionOutput(Softmax(se, seq), Apply(tk, v), qHeads, kvHeads, hd, seq);
        AssertClose(Apply(tq, o), oe, Tight, $"attention output (seed {hex})");
    }

    private static double[] AttentionOutput(double[] p, double[] v, int qHeads, int kvHeads, int hd, int seq)
    {
        int g = qHeads / kvHeads;
        double[] o = new double[seq * qHeads * hd];
        for (int h = 0; h < qHeads; h++)
        {
            for (int i = 0; i < seq; i++)
            {
                for (int j = 0; j < seq; j++)
                {
                    double w = p[(((h * seq) + i) * seq) + j];
                    for (int t = 0; t < hd; t++)
                    {
                        o[(i * qHeads * hd) + (h * hd) + t] += w * v[(j * kvHeads * hd) + ((h / g) * hd) + t];
                    }
                }
            }
        }

        return o;
    }

    [Fact]
    public void Rope_does_not_commute_with_a_general_rotation_of_the_head()
    {
        const int hd = 16;
        var (seed, hex) = FreshSeed();
        using AesPrg prg = DataPrg(seed);
        using var q = FeatureTransform.Create(new EeBoundary("q", EeTransformKind.Orthogonal, hd), prg);
        double[] x = Gaussian(prg, 6 * hd);
        AssertFar(Apply(q, Rope(x, 1, hd, false)), Rope(Apply(q, x), 1, hd, false), 0.05, $"RoPE with a Haar rotation (seed {hex})");
    }

    // Row 7: attention softmax (over positions) commutes with any transform of the feature dims applied equally to q and k.
    [Fact]
    public void Attention_softmax_is_unchanged_by_the_same_rotation_on_q_and_k()
    {
        const int d = 16;
        const int seq = 9;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("qk", EeTransformKind.Orthogonal, d),
            new EeBoundary("v", EeTransformKind.ScaledPermutation, d)));
        using AesPrg prg = DataPrg(seed);
        double[] q = Gaussian(prg, seq * d);
        double[] k = Gaussian(prg, seq * d);
        double[] v = Gaussian(prg, seq * d);
        FeatureTransform tqk = key.GetTransform("qk");
        FeatureTransform tv = key.GetTransform("v");

        double[] p = Softmax(Scores(q, k, 1, 1, d), seq);
        double[] pe = Softmax(Scores(Apply(tqk, q), Apply(tqk, k), 1, 1, d), seq);
        AssertClose(p, pe, Tight, $"attention weights (seed {hex})");

        // out = P V; with V encrypted, out is encrypted by the same transform.
        double[] o = MatMul(p, v, seq, seq, d);
        double[] oe = MatMul(pe, Apply(tv, v), seq, seq, d);
        AssertClose(Apply(tv, o), oe, Tight, $"attention output (seed {hex})");

        // Different transforms on q and k change the scores.
        using var other = FeatureTransform.Create(new EeBoundary("o", EeTransformKind.Orthogonal, d), prg);
        AssertFar(p, Softmax(Scores(Apply(tqk, q), Apply(other, k), 1, 1, d), seq), 0.01, $"different q/k transforms (seed {hex})");
    }

    // Row 8: token embedding / LM head commute with a vocabulary permutation (embedding rows, logit order).
    [Fact]
    public void Embedding_and_lm_head_commute_with_a_vocabulary_permutation()
    {
        const int vocab = 64;
        const int d = 12;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("vocab", EeTransformKind.Permutation, vocab),
            new EeBoundary("hidden", EeTransformKind.Permutation, d)));
        using AesPrg prg = DataPrg(seed);
        float[] table = GaussianF(prg, vocab * d);
        float[] enc = (float[])table.Clone();
        key.EncryptEmbeddingTable(enc, "vocab", "hidden");
        Permutation pv = key.GetTransform<Permutation>("vocab");
        float[] row = new float[d];
        for (int t = 0; t < vocab; t++)
        {
            key.Encrypt("hidden", table.AsSpan(t * d, d), row);
            Assert.True(row.AsSpan().SequenceEqual(enc.AsSpan(pv.MapIndex(t) * d, d)), $"row of token {t} (seed {hex})");
        }

        // Tied LM head: logits' = E' h' = P_vocab (E h) exactly as a permutation of the logits.
        float[] h = GaussianF(prg, d);
        float[] he = new float[d];
        key.Encrypt("hidden", h, he);
        double[] logits = Linear(ToDouble(h), ToDouble(table), null, 1, d, vocab);
        double[] logitsEnc = Linear(ToDouble(he), ToDouble(enc), null, 1, d, vocab);
        AssertClose(Apply(pv, logits), logitsEnc, 1e-12, $"tied LM head (seed {hex})");
    }

    // Row 9: conv channels commute with channel permutation + positive per-channel scale (batch norm folded).
    [Fact]
    public void Conv_bn_relu_maxpool_commute_with_scaled_channel_permutations()
    {
        const int cin = 3;
        const int cmid = 8;
        const int cout = 5;
        const int hw = 6;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("c0", EeTransformKind.ScaledPermutation, cin),
            new EeBoundary("c1", EeTransformKind.ScaledPermutation, cmid),
            new EeBoundary("c2", EeTransformKind.ScaledPermutation, cout)));
        using AesPrg prg = DataPrg(seed);
        double[] x = Gaussian(prg, cin * hw * hw);

        // conv1 3x3 pad 1 with batch norm folded, ReLU, 2x2 max pool, conv2 1x1.
        double[] w1 = Gaussian(prg, cmid * cin * 9, 0.3);
        double[] b1 = Gaussian(prg, cmid, 0.1);
        double[] gamma = Gaussian(prg, cmid).Select(v => 1 + (0.2 * v)).ToArray();
        double[] betaBn = Gaussian(prg, cmid, 0.2);
        double[] mu = Gaussian(prg, cmid, 0.2);
        double[] var = Gaussian(prg, cmid).Select(v => 0.5 + (v * v)).ToArray();
        double[] w2 = Gaussian(prg, cout * cmid, 0.3);
        double[] b2 = Gaussian(prg, cout, 0.1);
        double[] w1f = new double[w1.Length];
        double[] b1f = new double[cmid];
        for (int o = 0; o < cmid; o++)
        {
            double a = gamma[o] / Math.Sqrt(var[o] + 1e-5);
            for (int j = 0; j < cin * 9; j++)
            {
                w1f[(o * cin * 9) + j] = w1[(o * cin * 9) + j] * a;
            }

            b1f[o] = ((b1[o] - mu[o]) * a) + betaBn[o];
        }

        double[] Forward(double[] input, double[] cw1, double[] cb1, double[] cw2, double[] cb2)
        {
            double[] h = Map(Conv2d(input, cw1, cb1, cin, cmid, hw, hw, 3, 1), Relu);
            double[] pooled = MaxPool2(h, cmid, hw);
            return Conv2d(pooled, cw2, cb2, cmid, cout, hw / 2, hw / 2, 1, 0);
        }

        double[] y = Forward(x, w1f, b1f, w2, b2);

        float[] ew1 = Array.ConvertAll(w1f, v => (float)v);
        float[] eb1 = Array.ConvertAll(b1f, v => (float)v);
        float[] ew2 = Array.ConvertAll(w2, v => (float)v);
        float[] eb2 = Array.ConvertAll(b2, v => (float)v);
        key.EncryptWeight(ew1, "c1", "c0", kernelSize: 9);
        key.EncryptBias(eb1, "c1");
        key.EncryptWeight(ew2, "c2", "c1");
        key.EncryptBias(eb2, "c2");
        double[] xe = Apply(key.GetTransform("c0"), x, hw * hw);
        double[] ye = Forward(xe, ToDouble(ew1), ToDouble(eb1), ToDouble(ew2), ToDouble(eb2));
        AssertClose(Apply(key.GetTransform("c2"), y, (hw / 2) * (hw / 2)), ye, 1e-5, $"conv/BN/ReLU/maxpool (seed {hex})");

        double[] yd = new double[ye.Length];
        key.GetTransform("c2").ApplyInverse(ye, yd, (hw / 2) * (hw / 2));
        AssertClose(y, yd, 1e-5, $"decrypted output (seed {hex})");
    }

    private static double[] MaxPool2(double[] x, int c, int hw)
    {
        int o = hw / 2;
        double[] y = new double[c * o * o];
        for (int ch = 0; ch < c; ch++)
        {
            for (int r = 0; r < o; r++)
            {
                for (int col = 0; col < o; col++)
                {
                    double m = double.NegativeInfinity;
                    for (int u = 0; u < 2; u++)
                    {
                        for (int v = 0; v < 2; v++)
                        {
                            m = Math.Max(m, x[(((ch * hw) + (2 * r) + u) * hw) + (2 * col) + v]);
                        }
                    }

                    y[(((ch * o) + r) * o) + col] = m;
                }
            }
        }

        return y;
    }
}
