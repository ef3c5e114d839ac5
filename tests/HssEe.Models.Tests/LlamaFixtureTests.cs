using HssEe.Ee;
using HssEe.Models.Engine;
using HssEe.Models.IO;
using HssEe.Models.Llama;
using Xunit;
using Xunit.Abstractions;

namespace HssEe.Models.Tests;

/// <summary>
/// The LLaMA definition against a PyTorch re-implementation of Hugging Face <c>LlamaForCausalLM</c>
/// (tools/reference/make_fixtures.py; BF16 weights, GQA 4/2 heads, 2 layers, 12 tokens).
/// </summary>
public sealed class LlamaFixtureTests(ITestOutputHelper output)
{
    internal static string FixtureDir(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    private static (LlamaModel Model, int[] Ids, float[] Logits, float[] Hidden0) Load()
    {
        LlamaModel model = LlamaModel.Load(FixtureDir("llama"));
        using SafeTensorsFile io = SafeTensorsFile.Open(Path.Combine(FixtureDir("llama"), "io.safetensors"));
        int[] ids = io.ReadInt64("input_ids").Select(v => checked((int)v)).ToArray();
        return (model, ids, io.ReadSingle("logits"), io.ReadSingle("hidden_after_layer0"));
    }

    [Fact]
    public async Task PlainMatchesPyTorch()
    {
        (LlamaModel model, int[] ids, float[] logits, float[] hidden0) = Load();
        float[] mine = model.ComputeLogits(ids);
        ModelAssert.AssertClose(logits, mine, 1e-4, "logits vs PyTorch");
        FloatTensor h = await model.ForwardAsync(new PlainEngine(), model.Embed(ids), new KvCache<FloatTensor>(model.Config.Layers), allPositions: true, stopAfterLayer: 0);
        ModelAssert.AssertClose(hidden0, h.Data, 1e-4, "hidden after layer 0 vs PyTorch");
        output.WriteLine($"max |diff| logits {ModelAssert.MaxDiff(logits, mine):G3} (max |logit| {logits.Max(Math.Abs):F3})");
    }

    [Fact]
    public async Task EeAndHssEeMatchPlainAtEveryPosition()
    {
        (LlamaModel model, int[] ids, float[] logits, _) = Load();
        int v = model.Config.VocabSize;
        using EeKey key = EeKey.Create(LlamaModel.CreateEeKeySpec(model.Config));
        LlamaModel encrypted = model.Encrypt(key);
        await using LlamaSession ee = LlamaSession.CreateEe(encrypted, key);
        await using LlamaSession hss = LlamaSession.CreateHssEe(encrypted, key);
        hss.PrepareKeys(1, ids.Length - 1);
        double fidelity = 0, maxDiff = 0;
        int agree = 0;
        var disagreements = new List<string>();
        for (int t = 0; t < ids.Length; t++)
        {
            float[] reference = logits.AsSpan(t * v, v).ToArray();
            float[] e = await ee.NextLogitsAsync(ids.AsMemory(t, 1));
            float[] h = await hss.NextLogitsAsync(ids.AsMemory(t, 1));
            ModelAssert.AssertClose(reference, e, 1e-4, $"EE position {t}");
            Assert.Equal(LlamaGenerator.ArgMax(reference), LlamaGenerator.ArgMax(e));
            fidelity += ModelAssert.Fidelity(reference, h);
            maxDiff = Math.Max(maxDiff, ModelAssert.MaxDiff(reference, h));
            if (LlamaGenerator.ArgMax(reference) == LlamaGenerator.ArgMax(h))
            {
                agree++;
            }
            else
            {
                disagreements.Add($"position {t}: top-2 margin {Margin(reference):G3}");
            }
        }

        fidelity /= ids.Length;
        output.WriteLine($"HSS-EE over {ids.Length} positions: fidelity {fidelity:F5}, top-1 agreement {agree}/{ids.Length}, max |logit diff| {maxDiff:G3}, cost {hss.TotalCost}");
        Assert.True(agree == ids.Length, $"top-1 disagreements: {string.Join("; ", disagreements)} (max |diff| {maxDiff:G3})");
        Assert.True(maxDiff < 0.05, $"max |logit diff| {maxDiff:G3}");
        Assert.True(fidelity >= 0.999, $"fidelity {fidelity:F5}");
    }

    private static double Margin(ReadOnlySpan<float> l)
    {
        float[] s = l.ToArray();
        Array.Sort(s);
        return s[^1] - s[^2];
    }
}
