using HssEe.Models.Engine;
using HssEe.Models.IO;
using HssEe.Models.Llama;
using Xunit;
using Xunit.Abstractions;

namespace HssEe.Models.Tests;

/// <summary>The demo's embedded character model (samples/HssEe.Demo/Model) against its PyTorch reference.</summary>
public sealed class DemoModelTests(ITestOutputHelper output)
{
    private static string Dir => Path.Combine(AppContext.BaseDirectory, "DemoModel");

    [Fact]
    public async Task PlainGreedyGenerationMatchesPyTorch()
    {
        LlamaModel model = LlamaModel.Load(Dir);
        using SafeTensorsFile reference = SafeTensorsFile.Open(Path.Combine(Dir, "reference.safetensors"));
        int[] prompt = [.. reference.ReadInt64("prompt_ids").Select(v => (int)v)];
        int[] expected = [.. reference.ReadInt64("greedy_ids").Select(v => (int)v)];
        float[] promptLogits = reference.ReadSingle("prompt_logits");
        ModelAssert.AssertClose(promptLogits, model.ComputeLogits(prompt), 1e-4, "prompt logits vs PyTorch");
        await using LlamaSession session = LlamaSession.CreatePlain(model);
        int[] generated = await LlamaGenerator.GenerateAsync(session, prompt, expected.Length);
        Assert.Equal(expected, generated);
    }

    [Fact]
    public async Task ActivationsStayWithinTheFixedPointRanges()
    {
        LlamaModel model = LlamaModel.Load(Dir);
        using SafeTensorsFile reference = SafeTensorsFile.Open(Path.Combine(Dir, "reference.safetensors"));
        int[] ids = [.. reference.ReadInt64("prompt_ids").Select(v => (int)v), .. reference.ReadInt64("greedy_ids").Select(v => (int)v)];
        var probe = new RangeProbe();
        await model.ForwardAsync(probe, model.Embed(ids), new KvCache<FloatTensor>(model.Config.Layers), allPositions: true);
        output.WriteLine(probe.ToString());
        Assert.True(probe.MaxSoftmaxInput < 32, probe.ToString());
        Assert.True(probe.MinMeanSquare >= 1.0 / 64 && probe.MaxMeanSquare <= 1024, probe.ToString());
        Assert.True(probe.MaxAbs < 1 << (HssEngine.MagnitudeBits - 1), probe.ToString());
    }
}
