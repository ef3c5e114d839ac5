using System.Security.Cryptography;
using HssEe.Ee;
using HssEe.Models.IO;
using HssEe.Models.Llama;
using Xunit;
using Xunit.Abstractions;

using static HssEe.Models.Tests.ModelAssert;

namespace HssEe.Models.Tests;

public sealed class LlamaModesTests(ITestOutputHelper output)
{
    internal static LlamaConfig TinyConfig(int layers = 2, bool tie = false) => new()
    {
        VocabSize = 37,
        HiddenSize = 32,
        IntermediateSize = 48,
        Layers = layers,
        Heads = 4,
        KeyValueHeads = 2,
        RopeTheta = 10000,
        RmsNormEpsilon = 1e-5,
        MaxPositions = 64,
        TieWordEmbeddings = tie,
    };

    /// <summary>Random weights with scales that give well-separated logits (N(0, 1/fan_in) linears, N(0,1) embedding).</summary>
    internal static InMemoryWeights RandomWeights(LlamaConfig c, int seed)
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

        int d = c.HiddenSize, hd = c.HeadDimension;
        Add("model.embed_tokens.weight", c.VocabSize, d, 1);
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"model.layers.{i}.";
            Add(p + "input_layernorm.weight", d, 1, 0.1, 1);
            Add(p + "post_attention_layernorm.weight", d, 1, 0.1, 1);
            Add(p + "self_attn.q_proj.weight", c.Heads * hd, d, 1 / Math.Sqrt(d));
            Add(p + "self_attn.k_proj.weight", c.KeyValueHeads * hd, d, 1 / Math.Sqrt(d));
            Add(p + "self_attn.v_proj.weight", c.KeyValueHeads * hd, d, 1 / Math.Sqrt(d));
            Add(p + "self_attn.o_proj.weight", d, c.Heads * hd, 1 / Math.Sqrt(d));
            Add(p + "mlp.gate_proj.weight", c.IntermediateSize, d, 1 / Math.Sqrt(d));
            Add(p + "mlp.up_proj.weight", c.IntermediateSize, d, 1 / Math.Sqrt(d));
            Add(p + "mlp.down_proj.weight", d, c.IntermediateSize, 1 / Math.Sqrt(c.IntermediateSize));
        }

        Add("model.norm.weight", d, 1, 0.1, 1);
        if (!c.TieWordEmbeddings)
        {
            Add("lm_head.weight", c.VocabSize, d, 1 / Math.Sqrt(d));
        }

        return w;
    }

    private static int FreshSeed() => RandomNumberGenerator.GetInt32(int.MaxValue);

    [Fact]
    public async Task KvCacheStepsMatchTheFullSequence()
    {
        int seed = FreshSeed();
        LlamaConfig c = TinyConfig();
        var model = LlamaModel.FromWeights(c, RandomWeights(c, seed));
        int[] tokens = [3, 14, 15, 9, 2, 6, 5, 35];
        float[] full = model.ComputeLogits(tokens);
        await using LlamaSession s = LlamaSession.CreatePlain(model);
        float[] last = await s.NextLogitsAsync(tokens.AsMemory(0, 5));
        AssertClose(full.AsSpan(4 * c.VocabSize, c.VocabSize), last, 1e-4, $"seed {seed}, prefill");
        for (int t = 5; t < tokens.Length; t++)
        {
            last = await s.NextLogitsAsync(tokens.AsMemory(t, 1));
            AssertClose(full.AsSpan(t * c.VocabSize, c.VocabSize), last, 1e-4, $"seed {seed}, position {t}");
        }
    }

    [Theory]
    [InlineData(EeTransformKind.Orthogonal)]
    [InlineData(EeTransformKind.Permutation)]
    public async Task EeMatchesPlain(EeTransformKind hidden)
    {
        int seed = FreshSeed();
        LlamaConfig c = TinyConfig();
        var model = LlamaModel.FromWeights(c, RandomWeights(c, seed));
        using EeKey key = EeKey.Create(LlamaModel.CreateEeKeySpec(c, hidden));
        LlamaModel encrypted = model.Encrypt(key);
        int[] prompt = [1, 2, 3, 4, 5, 6];
        await using LlamaSession plain = LlamaSession.CreatePlain(model);
        await using LlamaSession ee = LlamaSession.CreateEe(encrypted, key);
        float[] p = await plain.NextLogitsAsync(prompt);
        float[] e = await ee.NextLogitsAsync(prompt);
        AssertClose(p, e, 1e-4, $"seed {seed}");
        Assert.Equal(LlamaGenerator.ArgMax(p), LlamaGenerator.ArgMax(e));
        p = await plain.NextLogitsAsync(new[] { 7 });
        e = await ee.NextLogitsAsync(new[] { 7 });
        AssertClose(p, e, 1e-4, $"seed {seed}, decode");
    }

    [Fact]
    public async Task HssEeMatchesPlainOverPrefillAndDecode()
    {
        int seed = FreshSeed();
        LlamaConfig c = TinyConfig();
        var model = LlamaModel.FromWeights(c, RandomWeights(c, seed));
        using EeKey key = EeKey.Create(LlamaModel.CreateEeKeySpec(c));
        LlamaModel encrypted = model.Encrypt(key);
        int[] prompt = [5, 1, 30, 22, 7];
        await using LlamaSession plain = LlamaSession.CreatePlain(model);
        await using LlamaSession hss = LlamaSession.CreateHssEe(encrypted, key);
        hss.PrepareKeys(prompt.Length, 2);
        float[] p = await plain.NextLogitsAsync(prompt);
        float[] h = await hss.NextLogitsAsync(prompt);
        double fid = Fidelity(p, h);
        output.WriteLine($"seed {seed}: prefill max |diff| {MaxDiff(p, h):G3}, fidelity {fid:F5}, cost {hss.LastCost}");
        Assert.Equal(LlamaGenerator.ArgMax(p), LlamaGenerator.ArgMax(h));
        AssertClose(p, h, 0.05, $"seed {seed}, prefill");
        for (int t = 0; t < 3; t++)
        {
            int next = LlamaGenerator.ArgMax(p);
            p = await plain.NextLogitsAsync(new[] { next });
            h = await hss.NextLogitsAsync(new[] { next });
            output.WriteLine($"decode {t}: max |diff| {MaxDiff(p, h):G3}, cost {hss.LastCost}");
            AssertClose(p, h, 0.05, $"seed {seed}, decode {t}");
        }
    }

    [Fact]
    public async Task SeededSamplingRepeatsAndStaysInTheVocabulary()
    {
        LlamaConfig c = TinyConfig();
        var model = LlamaModel.FromWeights(c, RandomWeights(c, FreshSeed()));
        async Task<int[]> Sample(int? seed)
        {
            await using LlamaSession s = LlamaSession.CreatePlain(model);
            return await LlamaGenerator.GenerateAsync(s, [1, 2, 3], 24, temperature: 1.5, seed: seed);
        }

        int[] a = await Sample(42), b = await Sample(42), fresh = await Sample(null);
        Assert.Equal(a, b);
        Assert.All(a.Concat(fresh), t => Assert.InRange(t, 0, c.VocabSize - 1));
    }

    [Fact]
    public async Task MisuseIsRefusedWithClearErrors()
    {
        LlamaConfig c = TinyConfig();
        var model = LlamaModel.FromWeights(c, RandomWeights(c, 1));
        using EeKey wrong = EeKey.Create(LlamaModel.CreateEeKeySpec(TinyConfig(layers: 1)));
        var ex = Assert.Throws<ArgumentException>(() => model.Encrypt(wrong));
        Assert.Contains("L1.qk", ex.Message, StringComparison.Ordinal);
        using EeKey key = EeKey.Create(LlamaModel.CreateEeKeySpec(c));
        LlamaModel encrypted = model.Encrypt(key);
        Assert.Throws<InvalidOperationException>(() => encrypted.Encrypt(key));
        Assert.Throws<ArgumentException>(() => LlamaSession.CreateHssEe(model, key));
        Assert.Throws<ArgumentException>(() => LlamaSession.CreatePlain(encrypted));
        await using LlamaSession hss = LlamaSession.CreateHssEe(encrypted, key);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => hss.NextLogitsAsync(new[] { c.VocabSize }));
        await Assert.ThrowsAsync<ArgumentException>(() => hss.NextLogitsAsync(new int[c.MaxPositions + 1]));
        Assert.Equal(0, hss.Position);
        var missing = RandomWeights(c, 2);
        var partial = new InMemoryWeights();
        foreach (string name in missing.Names.Where(n => !n.Contains("layers.1.mlp.up_proj", StringComparison.Ordinal)))
        {
            partial.Add(name, missing.GetShape(name), missing.ReadSingle(name));
        }

        var missingEx = Assert.Throws<KeyNotFoundException>(() => LlamaModel.FromWeights(c, partial));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", missingEx.Message, StringComparison.Ordinal);
    }
}
