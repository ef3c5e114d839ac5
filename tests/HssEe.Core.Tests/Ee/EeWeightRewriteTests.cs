using HssEe.Ee;
using HssEe.Randomness;
using static HssEe.Core.Tests.Ee.EeTestUtil;

namespace HssEe.Core.Tests.Ee;

public class EeWeightRewriteTests
{
    private static EeKeySpec Spec(int dIn, int dOut) => new(
        new EeBoundary("in.perm", EeTransformKind.Permutation, dIn),
        new EeBoundary("in.scale", EeTransformKind.PositiveScaling, dIn),
        new EeBoundary("in.monomial", EeTransformKind.ScaledPermutation, dIn),
        new EeBoundary("in.rot", EeTransformKind.Orthogonal, dIn),
        new EeBoundary("in.rot1", EeTransformKind.OrthogonalFixingOnes, dIn),
        EeBoundary.PairRotations("in.pairs", dIn / 3, 3),
        new EeBoundary("out.perm", EeTransformKind.Permutation, dOut),
        new EeBoundary("out.monomial", EeTransformKind.ScaledPermutation, dOut),
        new EeBoundary("out.rot", EeTransformKind.Orthogonal, dOut),
        EeBoundary.PairRotations("out.pairs", dOut / 2, 2, halfSplitPairs: true));

    private static readonly string[] Inputs = ["in.perm", "in.scale", "in.monomial", "in.rot", "in.rot1", "in.pairs"];
    private static readonly string[] Outputs = ["out.perm", "out.monomial", "out.rot", "out.pairs"];

    [Fact]
    public void Rewritten_linear_layer_is_equivariant_for_every_pair_of_kinds()
    {
        // W' (T_in x) + b' = T_out (W x + b) on random inputs, for every input/output kind and for the
        // input-only and output-only rewrites.
        const int dIn = 18;
        const int dOut = 12;
        const int rows = 7;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, Spec(dIn, dOut));
        using AesPrg prg = DataPrg(seed);
        float[] w = GaussianF(prg, dOut * dIn, 0.3);
        float[] b = GaussianF(prg, dOut);
        float[] x = GaussianF(prg, rows * dIn);
        double[] y = Linear(ToDouble(x), ToDouble(w), ToDouble(b), rows, dIn, dOut);

        foreach (string? input in Inputs.Append(null))
        {
            foreach (string? output in Outputs.Append(null))
            {
                float[] w2 = (float[])w.Clone();
                float[] b2 = (float[])b.Clone();
                key.EncryptWeight(w2, output, input);
                if (output is not null)
                {
                    key.EncryptBias(b2, output);
                }

                float[] xe = (float[])x.Clone();
                if (input is not null)
                {
                    key.Encrypt(input, xe, xe);
                }

                double[] ye = Linear(ToDouble(xe), ToDouble(w2), ToDouble(b2), rows, dIn, dOut);
                double[] expected = (double[])y.Clone();
                if (output is not null)
                {
                    key.GetTransform(output).Apply(expected, expected);
                }

                AssertClose(expected, ye, 1e-5, $"in={input ?? "none"} out={output ?? "none"} (seed {hex})");
            }
        }
    }

    [Fact]
    public void Rewrite_equals_the_explicit_matrix_product()
    {
        // W' = T_out W T_in^-1 with dense matrices built from Apply / ApplyInverse.
        const int dIn = 18;
        const int dOut = 12;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, Spec(dIn, dOut));
        using AesPrg prg = DataPrg(seed);
        float[] w = GaussianF(prg, dOut * dIn);
        foreach (string input in Inputs)
        {
            foreach (string output in Outputs)
            {
                double[] tOut = DenseMatrix(key.GetTransform(output));
                double[] tInInv = DenseMatrix(key.GetTransform(input), inverse: true);
                double[] expected = MatMul(MatMul(tOut, ToDouble(w), dOut, dOut, dIn), tInInv, dOut, dIn, dIn);
                float[] w2 = (float[])w.Clone();
                FeatureTransform.TransformWeight(w2, key.GetTransform(output), key.GetTransform(input));
                AssertClose(expected, ToDouble(w2), 1e-5, $"{output} W {input}^-1 (seed {hex})");
            }
        }
    }

    [Fact]
    public void Conv_weights_rewrite_channel_axes_with_kernel_elements()
    {
        // Weight [out, in, k]: one output pixel is sum_{i, s} W[o, i, s] patch[i, s]; the channel axis of
        // the patch [in, k] is transformed with innerSize = k.
        const int cin = 6;
        const int cout = 4;
        const int k = 9;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("cin", EeTransformKind.ScaledPermutation, cin),
            new EeBoundary("cout", EeTransformKind.ScaledPermutation, cout),
            new EeBoundary("rot", EeTransformKind.Orthogonal, cin)));
        using AesPrg prg = DataPrg(seed);
        float[] w = GaussianF(prg, cout * cin * k);
        float[] patch = GaussianF(prg, cin * k);
        double[] y = Linear(ToDouble(patch), ToDouble(w), null, 1, cin * k, cout);
        foreach (string input in new[] { "cin", "rot" })
        {
            float[] w2 = (float[])w.Clone();
            key.EncryptWeight(w2, "cout", input, kernelSize: k);
            float[] pe = new float[patch.Length];
            key.Encrypt(input, patch, pe, innerSize: k);
            double[] ye = Linear(ToDouble(pe), ToDouble(w2), null, 1, cin * k, cout);
            double[] expected = (double[])y.Clone();
            key.GetTransform("cout").Apply(expected, expected);
            AssertClose(expected, ye, 1e-5, $"conv {input} (seed {hex})");
        }

        Assert.Throws<ArgumentException>(() => key.EncryptWeight(new float[cout * cin * k], "cout", "cin", kernelSize: 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => key.EncryptWeight(new float[cout * cin * k], "cout", "cin", kernelSize: 0));
    }

    [Fact]
    public void Embedding_table_tokens_and_lm_head_round_trip()
    {
        const int vocab = 50;
        const int d = 16;
        const int seq = 9;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("vocab", EeTransformKind.Permutation, vocab),
            new EeBoundary("hidden", EeTransformKind.Orthogonal, d)));
        using AesPrg prg = DataPrg(seed);
        float[] table = GaussianF(prg, vocab * d);
        float[] lmHead = GaussianF(prg, vocab * d);
        int[] tokens = Enumerable.Range(0, seq).Select(_ => prg.NextInt32(vocab)).ToArray();

        float[] encTable = (float[])table.Clone();
        key.EncryptEmbeddingTable(encTable, "vocab", "hidden");
        float[] encHead = (float[])lmHead.Clone();
        key.EncryptWeight(encHead, "vocab", "hidden");

        // Token ids: exact round trip.
        int[] encTokens = new int[seq];
        key.EncryptTokens("vocab", tokens, encTokens);
        int[] decTokens = new int[seq];
        key.DecryptTokens("vocab", encTokens, decTokens);
        Assert.Equal(tokens, decTokens);

        // Server-side lookup of encrypted ids gives the encrypted embeddings; the client decrypts them.
        float[] plainEmb = new float[seq * d];
        float[] serverEmb = new float[seq * d];
        for (int i = 0; i < seq; i++)
        {
            table.AsSpan(tokens[i] * d, d).CopyTo(plainEmb.AsSpan(i * d));
            encTable.AsSpan(encTokens[i] * d, d).CopyTo(serverEmb.AsSpan(i * d));
        }

        float[] clientEnc = new float[seq * d];
        key.Encrypt("hidden", plainEmb, clientEnc);
        AssertClose(ToDouble(clientEnc), ToDouble(serverEmb), 1e-6, $"E'[enc(t)] = T E[t] (seed {hex})");
        float[] decEmb = new float[seq * d];
        key.Decrypt("hidden", serverEmb, decEmb);
        AssertClose(ToDouble(plainEmb), ToDouble(decEmb), 1e-6, $"embedding decrypt (seed {hex})");

        // LM head on encrypted hidden states gives permuted logits; DecryptLogits restores them, and
        // the argmax decrypts to the plain argmax.
        double[] logits = Linear(ToDouble(plainEmb), ToDouble(lmHead), null, seq, d, vocab);
        float[] encLogits = Array.ConvertAll(Linear(ToDouble(serverEmb), ToDouble(encHead), null, seq, d, vocab), v => (float)v);
        float[] decLogits = new float[encLogits.Length];
        key.DecryptLogits("vocab", encLogits, decLogits);
        AssertClose(logits, ToDouble(decLogits), 1e-5, $"logits (seed {hex})");
        for (int i = 0; i < seq; i++)
        {
            int plainArgmax = ArgMax(logits.AsSpan(i * vocab, vocab));
            int encArgmax = ArgMax(encLogits.AsSpan(i * vocab, vocab));
            int[] dec = new int[1];
            key.DecryptTokens("vocab", [encArgmax], dec);
            Assert.True(plainArgmax == dec[0], $"argmax row {i} (seed {hex})");
        }
    }

    private static int ArgMax(ReadOnlySpan<double> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++)
        {
            if (v[i] > v[best])
            {
                best = i;
            }
        }

        return best;
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++)
        {
            if (v[i] > v[best])
            {
                best = i;
            }
        }

        return best;
    }
}
