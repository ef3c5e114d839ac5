using System.Security.Cryptography;
using HssEe.Ee;
using HssEe.Models.IO;
using HssEe.Models.T5;
using Xunit;
using Xunit.Abstractions;

using static HssEe.Models.Tests.ModelAssert;

namespace HssEe.Models.Tests;

public sealed class T5Tests(ITestOutputHelper output)
{
    /// <summary>A tiny T5 whose attention width (4 x 6 = 24) differs from d_model (32), with few buckets so short inputs reach the logarithmic ones.</summary>
    internal static T5Config TinyConfig(T5FeedForwardKind ff = T5FeedForwardKind.Relu, int encoderLayers = 2, int decoderLayers = 2) => new()
    {
        VocabSize = 41,
        ModelDimension = 32,
        KeyValueDimension = 6,
        Heads = 4,
        FeedForwardDimension = 48,
        EncoderLayers = encoderLayers,
        DecoderLayers = decoderLayers,
        RelativeAttentionBuckets = 8,
        RelativeAttentionMaxDistance = 16,
        LayerNormEpsilon = 1e-6,
        FeedForward = ff,
        TieWordEmbeddings = ff == T5FeedForwardKind.Relu,
        DecoderStartTokenId = 0,
        EosTokenId = 1,
    };

    /// <summary>Random weights: N(0, 1/fan_in) linears, N(0, 1) embedding and bias tables, gains 1 + 0.1 N(0, 1).</summary>
    internal static InMemoryWeights RandomWeights(T5Config c, int seed)
    {
        var random = new Random(seed);
        var w = new InMemoryWeights();
        void Add(string name, int rows, int cols, double std, double mean = 0)
        {
            var data = new float[rows * cols];
            for (int i = 0; i < data.Length; i++)
            {
                double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
                data[i] = (float)(mean + (std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2)));
            }

            w.Add(name, cols == 1 ? [rows] : [rows, cols], data);
        }

        void Attention(string p)
        {
            int d = c.ModelDimension, inner = c.InnerDimension;
            Add(p + "q.weight", inner, d, 1 / Math.Sqrt(d));
            Add(p + "k.weight", inner, d, 1 / Math.Sqrt(d));
            Add(p + "v.weight", inner, d, 1 / Math.Sqrt(d));
            Add(p + "o.weight", d, inner, 1 / Math.Sqrt(inner));
        }

        void FeedForward(string p)
        {
            int d = c.ModelDimension, ff = c.FeedForwardDimension;
            if (c.FeedForward == T5FeedForwardKind.Relu)
            {
                Add(p + "wi.weight", ff, d, 1 / Math.Sqrt(d));
            }
            else
            {
                Add(p + "wi_0.weight", ff, d, 1 / Math.Sqrt(d));
                Add(p + "wi_1.weight", ff, d, 1 / Math.Sqrt(d));
            }

            Add(p + "wo.weight", d, ff, 1 / Math.Sqrt(ff));
        }

        int dm = c.ModelDimension;
        Add("shared.weight", c.VocabSize, dm, 1);
        for (int i = 0; i < c.EncoderLayers; i++)
        {
            string p = $"encoder.block.{i}.";
            Attention(p + "layer.0.SelfAttention.");
            if (i == 0)
            {
                Add(p + "layer.0.SelfAttention.relative_attention_bias.weight", c.RelativeAttentionBuckets, c.Heads, 1);
            }

            Add(p + "layer.0.layer_norm.weight", dm, 1, 0.1, 1);
            FeedForward(p + "layer.1.DenseReluDense.");
            Add(p + "layer.1.layer_norm.weight", dm, 1, 0.1, 1);
        }

        Add("encoder.final_layer_norm.weight", dm, 1, 0.1, 1);
        for (int i = 0; i < c.DecoderLayers; i++)
        {
            string p = $"decoder.block.{i}.";
            Attention(p + "layer.0.SelfAttention.");
            if (i == 0)
            {
                Add(p + "layer.0.SelfAttention.relative_attention_bias.weight", c.RelativeAttentionBuckets, c.Heads, 1);
            }

            Add(p + "layer.0.layer_norm.weight", dm, 1, 0.1, 1);
            Attention(p + "layer.1.EncDecAttention.");
            Add(p + "layer.1.layer_norm.weight", dm, 1, 0.1, 1);
            FeedForward(p + "layer.2.DenseReluDense.");
            Add(p + "layer.2.layer_norm.weight", dm, 1, 0.1, 1);
        }

        Add("decoder.final_layer_norm.weight", dm, 1, 0.1, 1);
        if (!c.TieWordEmbeddings)
        {
            Add("lm_head.weight", c.VocabSize, dm, 1 / Math.Sqrt(dm));
        }

        return w;
    }

    private static int FreshSeed() => RandomNumberGenerator.GetInt32(int.MaxValue);

    // Hand-derived from HF _relative_position_bucket (relative = key - query).
    // 32 buckets, max 128, bidirectional: 16 per side, exact below 8, else 8 + floor(ln(|r|/8) / ln(16) * 8), at most 15; +16 when r > 0.
    // 32 buckets, max 128, unidirectional: r > 0 -> 0; exact below 16, else 16 + floor(ln(-r/16) / ln(8) * 16), at most 31.
    // 8 buckets, max 20, bidirectional: 4 per side, exact below 2, else 2 + floor(ln(|r|/2) / ln(10) * 2), at most 3.
    [Theory]
    [InlineData(0, true, 32, 128, 0)]
    [InlineData(-3, true, 32, 128, 3)]
    [InlineData(3, true, 32, 128, 19)]
    [InlineData(-8, true, 32, 128, 8)] // ln(1) = 0
    [InlineData(-12, true, 32, 128, 9)] // ln(1.5)/ln(16)*8 = 1.17
    [InlineData(-20, true, 32, 128, 10)] // ln(2.5)/ln(16)*8 = 2.64
    [InlineData(20, true, 32, 128, 26)]
    [InlineData(-127, true, 32, 128, 15)] // 7.98
    [InlineData(-1000, true, 32, 128, 15)] // 13.9, clipped
    [InlineData(1000, true, 32, 128, 31)]
    [InlineData(5, false, 32, 128, 0)] // future key
    [InlineData(-5, false, 32, 128, 5)]
    [InlineData(-15, false, 32, 128, 15)]
    [InlineData(-16, false, 32, 128, 16)]
    [InlineData(-20, false, 32, 128, 17)] // ln(1.25)/ln(8)*16 = 1.72
    [InlineData(-100, false, 32, 128, 30)] // 14.10
    [InlineData(-127, false, 32, 128, 31)] // 15.94
    [InlineData(-500, false, 32, 128, 31)] // clipped
    [InlineData(-5, true, 8, 20, 2)] // ln(2.5)/ln(10)*2 = 0.80
    [InlineData(7, true, 8, 20, 7)] // 4 + 2 + floor(1.09)
    [InlineData(30, true, 8, 20, 7)] // 4 + min(2 + 2, 3)
    [InlineData(-1, true, 8, 20, 1)]
    public void RelativePositionBucket_MatchesHuggingFace(int relative, bool bidirectional, int buckets, int maxDistance, int expected) =>
        Assert.Equal(expected, T5Model.RelativePositionBucket(relative, bidirectional, buckets, maxDistance));

    [Fact]
    public void Config_ParsesHuggingFaceJson()
    {
        const string json = """
            {"architectures": ["T5ForConditionalGeneration"], "vocab_size": 32128, "d_model": 512, "d_kv": 64, "d_ff": 1024,
             "num_heads": 6, "num_layers": 8, "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
             "layer_norm_epsilon": 1e-06, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false,
             "decoder_start_token_id": 0, "eos_token_id": 1, "dropout_rate": 0.1}
            """;
        T5Config c = T5Config.FromJson(json);
        Assert.Equal(32128, c.VocabSize);
        Assert.Equal(384, c.InnerDimension);
        Assert.Equal(8, c.DecoderLayers);
        Assert.Equal(T5FeedForwardKind.GatedGelu, c.FeedForward);
        Assert.False(c.TieWordEmbeddings);
        T5Config v10 = T5Config.FromJson("""{"vocab_size": 10, "d_model": 8, "d_kv": 2, "d_ff": 16, "num_heads": 4, "num_layers": 1, "num_decoder_layers": 3}""");
        Assert.True(v10.TieWordEmbeddings);
        Assert.Equal(T5FeedForwardKind.Relu, v10.FeedForward);
        Assert.Equal(3, v10.DecoderLayers);
        Assert.Throws<FormatException>(() => T5Config.FromJson("""{"vocab_size": 10, "d_model": 8, "d_kv": 2, "d_ff": 16, "num_heads": 4, "num_layers": 1, "feed_forward_proj": "gated-silu"}"""));
    }

    [Theory]
    [InlineData(T5FeedForwardKind.Relu)]
    [InlineData(T5FeedForwardKind.GatedGelu)]
    public async Task KvCachedDecodingMatchesFullRecomputation(T5FeedForwardKind ff)
    {
        int seed = FreshSeed();
        T5Config c = TinyConfig(ff, encoderLayers: 1, decoderLayers: 3);
        var model = T5Model.FromWeights(c, RandomWeights(c, seed));
        int[] input = [4, 17, 9, 33, 2, 25, 8, 12, 40, 3, 6];
        int[] decoder = [0, 5, 19, 7, 31, 2, 11, 22, 16, 9, 30, 1, 13];
        float[] full = model.ComputeLogits(input, decoder);
        int v = c.VocabSize;
        await using T5Session s = T5Session.CreatePlain(model);
        await s.EncodeAsync(input);
        float[] last = await s.NextLogitsAsync(decoder.AsMemory(0, 3));
        AssertClose(full.AsSpan(2 * v, v), last, 1e-4, $"seed {seed}, prefill");
        for (int t = 3; t < decoder.Length; t++)
        {
            last = await s.NextLogitsAsync(decoder.AsMemory(t, 1));
            AssertClose(full.AsSpan(t * v, v), last, 1e-4, $"seed {seed}, position {t}");
        }

        // A second encode restarts the decoder.
        await s.EncodeAsync(input.AsMemory(0, 4));
        float[] again = await s.NextLogitsAsync(decoder.AsMemory(0, 2));
        float[] reference = model.ComputeLogits(input.AsSpan(0, 4), decoder.AsSpan(0, 2));
        AssertClose(reference.AsSpan(v, v), again, 1e-4, $"seed {seed}, re-encoded");
        Assert.Equal(2, s.DecoderPosition);
    }

    [Theory]
    [InlineData(EeTransformKind.Orthogonal, T5FeedForwardKind.Relu)]
    [InlineData(EeTransformKind.Orthogonal, T5FeedForwardKind.GatedGelu)]
    [InlineData(EeTransformKind.Permutation, T5FeedForwardKind.GatedGelu)]
    public async Task EeMatchesPlain(EeTransformKind hidden, T5FeedForwardKind ff)
    {
        int seed = FreshSeed();
        T5Config c = TinyConfig(ff);
        var model = T5Model.FromWeights(c, RandomWeights(c, seed));
        using EeKey key = EeKey.Create(T5Model.CreateEeKeySpec(c, hidden));
        T5Model encrypted = model.Encrypt(key);
        Assert.True(encrypted.IsEncrypted);
        int[] input = [7, 3, 22, 15, 9, 38, 1, 27, 11];
        int[] decoder = [0, 12, 5, 30, 8];
        await using T5Session plain = T5Session.CreatePlain(model);
        await using T5Session ee = T5Session.CreateEe(encrypted, key);
        Assert.Equal(ExecutionMode.Ee, ee.Mode);
        await plain.EncodeAsync(input);
        await ee.EncodeAsync(input);
        float[] p = await plain.NextLogitsAsync(decoder.AsMemory(0, 2));
        float[] e = await ee.NextLogitsAsync(decoder.AsMemory(0, 2));
        AssertClose(p, e, 1e-4, $"seed {seed}, prefill");
        Assert.Equal(ArgMax(p), ArgMax(e));
        for (int t = 2; t < decoder.Length; t++)
        {
            p = await plain.NextLogitsAsync(decoder.AsMemory(t, 1));
            e = await ee.NextLogitsAsync(decoder.AsMemory(t, 1));
            AssertClose(p, e, 1e-4, $"seed {seed}, step {t}");
            Assert.Equal(ArgMax(p), ArgMax(e));
        }

        // Greedy generation agrees token for token.
        int[] gp = await T5Session.GenerateAsync(plain, input, 6, stopAtEos: false);
        int[] ge = await T5Session.GenerateAsync(ee, input, 6, stopAtEos: false);
        Assert.Equal(gp, ge);
    }

    [Fact]
    public void Encrypt_RejectsForeignKeysAndSessionsCheckModes()
    {
        T5Config c = TinyConfig();
        var model = T5Model.FromWeights(c, RandomWeights(c, 1));
        using EeKey other = EeKey.Create(T5Model.CreateEeKeySpec(c with { FeedForwardDimension = 40 }));
        using EeKey key = EeKey.Create(T5Model.CreateEeKeySpec(c));
        Assert.Throws<ArgumentException>(() => model.Encrypt(other));
        T5Model encrypted = model.Encrypt(key);
        Assert.Throws<InvalidOperationException>(() => encrypted.Encrypt(key));
        Assert.Throws<InvalidOperationException>(() => encrypted.ComputeEncoderOutput([1, 2]));
        Assert.Throws<ArgumentException>(() => T5Session.CreatePlain(encrypted));
        Assert.Throws<ArgumentException>(() => T5Session.CreateEe(model, key));
        Assert.Throws<ArgumentException>(() => T5Session.CreateHssEe(model, key));
        Assert.Throws<ArgumentException>(() => T5Model.CreateEeKeySpec(c with { KeyValueDimension = 5 }));
    }

    [Fact]
    public async Task Decoding_BeforeEncoding_Throws()
    {
        T5Config c = TinyConfig();
        await using T5Session s = T5Session.CreatePlain(T5Model.FromWeights(c, RandomWeights(c, 2)));
        await Assert.ThrowsAsync<InvalidOperationException>(() => s.NextLogitsAsync(new[] { 0 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => s.EncodeAsync(new[] { c.VocabSize }));
    }

    // Fixed weights (the EE key and the shares stay random), chosen so that the plain top-2 margins
    // (printed) are far above the HSS-EE error: a fresh seed would now and then give a near tie.
    [Theory]
    [InlineData(T5FeedForwardKind.Relu, 126)]
    [InlineData(T5FeedForwardKind.GatedGelu, 113)]
    public async Task HssEeMatchesPlain(T5FeedForwardKind ff, int seed)
    {
        T5Config c = TinyConfig(ff);
        var model = T5Model.FromWeights(c, RandomWeights(c, seed));
        using EeKey key = EeKey.Create(T5Model.CreateEeKeySpec(c));
        T5Model encrypted = model.Encrypt(key);
        int[] input = [9, 14, 3, 27, 35, 6, 20, 11];
        await using T5Session plain = T5Session.CreatePlain(model);
        await using T5Session hss = T5Session.CreateHssEe(encrypted, key, fractionalBits: 12);
        Assert.Equal(ExecutionMode.HssEe, hss.Mode);
        await plain.EncodeAsync(input);
        await hss.EncodeAsync(input);
        output.WriteLine($"{ff}, seed {seed}: encode ({input.Length} tokens) cost {hss.LastCost}");
        float[] p = await plain.NextLogitsAsync(new[] { 0, 17 });
        float[] h = await hss.NextLogitsAsync(new[] { 0, 17 });
        output.WriteLine($"prefill 2: max |diff| {MaxDiff(p, h):G3} (max |logit| {MaxAbs(p):G3}, top-2 margin {Margin(p):G3}), fidelity {Fidelity(p, h):F5}, cost {hss.LastCost}");
        Assert.Equal(ArgMax(p), ArgMax(h));
        AssertClose(p, h, 0.03, $"seed {seed}, prefill");
        for (int t = 0; t < 3; t++)
        {
            int next = ArgMax(p);
            p = await plain.NextLogitsAsync(new[] { next });
            h = await hss.NextLogitsAsync(new[] { next });
            output.WriteLine($"step {t}: max |diff| {MaxDiff(p, h):G3} (top-2 margin {Margin(p):G3}), fidelity {Fidelity(p, h):F5}, cost {hss.LastCost}");
            Assert.Equal(ArgMax(p), ArgMax(h));
            AssertClose(p, h, 0.03, $"seed {seed}, step {t}");
        }

        output.WriteLine($"total {hss.TotalCost}");
    }
}
