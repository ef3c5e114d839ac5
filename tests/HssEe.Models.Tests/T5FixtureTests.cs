using HssEe.Ee;
using HssEe.Models.IO;
using HssEe.Models.T5;
using Xunit;
using Xunit.Abstractions;

namespace HssEe.Models.Tests;

/// <summary>
/// The T5 definition against a PyTorch re-implementation of Hugging Face <c>T5ForConditionalGeneration</c>
/// (tools/reference/make_fixtures.py; F16 weights, d_model 64, 4 heads of 16, 2 + 2 layers, 10 input and
/// 6 decoder tokens): v1.0 (ReLU, tied head) and v1.1 (gated GeLU, own LM head).
/// </summary>
public sealed class T5FixtureTests(ITestOutputHelper output)
{
    private static (T5Model Model, int[] Input, int[] Decoder, float[] Encoded, float[] Logits) Load(string name)
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", name);
        T5Model model = T5Model.Load(dir);
        using SafeTensorsFile io = SafeTensorsFile.Open(Path.Combine(dir, "io.safetensors"));
        int[] input = io.ReadInt64("input_ids").Select(v => checked((int)v)).ToArray();
        int[] decoder = io.ReadInt64("decoder_input_ids").Select(v => checked((int)v)).ToArray();
        return (model, input, decoder, io.ReadSingle("encoder_output"), io.ReadSingle("logits"));
    }

    [Theory]
    [InlineData("t5_v10", T5FeedForwardKind.Relu, true)]
    [InlineData("t5_v11", T5FeedForwardKind.GatedGelu, false)]
    public async Task PlainMatchesPyTorch(string name, T5FeedForwardKind ff, bool tied)
    {
        (T5Model model, int[] input, int[] decoder, float[] encoded, float[] logits) = Load(name);
        Assert.Equal(ff, model.Config.FeedForward);
        Assert.Equal(tied, model.Config.TieWordEmbeddings);
        float[] myEncoded = model.ComputeEncoderOutput(input);
        ModelAssert.AssertClose(encoded, myEncoded, 1e-4, $"{name}: encoder output vs PyTorch");
        float[] mine = model.ComputeLogits(input, decoder);
        ModelAssert.AssertClose(logits, mine, 1e-4, $"{name}: logits vs PyTorch");
        output.WriteLine($"{name}: max |diff| encoder {ModelAssert.MaxDiff(encoded, myEncoded):G3} (max {ModelAssert.MaxAbs(encoded):F3}), logits {ModelAssert.MaxDiff(logits, mine):G3} (max {ModelAssert.MaxAbs(logits):F3})");

        // The cached session, one decoder token at a time, gives the same logits.
        int v = model.Config.VocabSize;
        await using T5Session s = T5Session.CreatePlain(model);
        await s.EncodeAsync(input);
        for (int t = 0; t < decoder.Length; t++)
        {
            float[] step = await s.NextLogitsAsync(decoder.AsMemory(t, 1));
            ModelAssert.AssertClose(logits.AsSpan(t * v, v), step, 1e-4, $"{name}: cached step {t}");
        }
    }

    [Theory]
    [InlineData("t5_v10")]
    [InlineData("t5_v11")]
    public async Task EeAndHssEeMatchPyTorchAtEveryPosition(string name)
    {
        (T5Model model, int[] input, int[] decoder, _, float[] logits) = Load(name);
        int v = model.Config.VocabSize;
        using EeKey key = EeKey.Create(T5Model.CreateEeKeySpec(model.Config));
        T5Model encrypted = model.Encrypt(key);
        await using T5Session ee = T5Session.CreateEe(encrypted, key);
        await using T5Session hss = T5Session.CreateHssEe(encrypted, key);
        await ee.EncodeAsync(input);
        await hss.EncodeAsync(input);
        output.WriteLine($"{name}: encode ({input.Length} tokens) {hss.LastCost}");
        double fidelity = 0, maxDiff = 0, maxRelative = 0;
        int agree = 0;
        var disagreements = new List<string>();
        for (int t = 0; t < decoder.Length; t++)
        {
            float[] reference = logits.AsSpan(t * v, v).ToArray();
            float[] e = await ee.NextLogitsAsync(decoder.AsMemory(t, 1));
            float[] h = await hss.NextLogitsAsync(decoder.AsMemory(t, 1));
            ModelAssert.AssertClose(reference, e, 1e-4, $"{name}: EE position {t}");
            Assert.Equal(ModelAssert.ArgMax(reference), ModelAssert.ArgMax(e));
            double diff = ModelAssert.MaxDiff(reference, h);
            fidelity += ModelAssert.Fidelity(reference, h);
            maxDiff = Math.Max(maxDiff, diff);
            maxRelative = Math.Max(maxRelative, diff / ModelAssert.MaxAbs(reference));
            output.WriteLine($"  step {t}: max |diff| {diff:G3} (top-2 margin {ModelAssert.Margin(reference):G3}), {hss.LastCost}");
            if (ModelAssert.ArgMax(reference) == ModelAssert.ArgMax(h))
            {
                agree++;
            }
            else
            {
                disagreements.Add($"position {t}: top-2 margin {ModelAssert.Margin(reference):G3}");
            }
        }

        fidelity /= decoder.Length;
        output.WriteLine($"{name} HSS-EE over {decoder.Length} decoder positions: fidelity {fidelity:F5}, top-1 agreement {agree}/{decoder.Length}, max |logit diff| {maxDiff:G3} ({maxRelative:P2} of max |logit|), total {hss.TotalCost}");
        Assert.True(agree == decoder.Length, $"top-1 disagreements: {string.Join("; ", disagreements)} (max |diff| {maxDiff:G3})");
        Assert.True(maxRelative < 0.03, $"max relative logit error {maxRelative:G3}");

        // The EE paper's fidelity on top-1 confidence; measured 0.9999 (v1.0) and 0.9992-0.9994 (v1.1,
        // gated GeLU spline) at the default f = 14. v1.1 is asserted with some slack against run-to-run
        // variation (fresh keys and masks each run).
        Assert.True(fidelity >= (name == "t5_v11" ? 0.998 : 0.999), $"{name}: fidelity {fidelity:F5}");
    }
}
