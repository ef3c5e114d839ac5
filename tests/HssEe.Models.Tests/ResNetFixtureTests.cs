using System.Diagnostics;
using System.Text;
using HssEe.Ee;
using HssEe.Models.Engine;
using HssEe.Models.IO;
using HssEe.Models.ResNet;
using Xunit;
using Xunit.Abstractions;

namespace HssEe.Models.Tests;

/// <summary>
/// torchvision <c>resnet18</c> against PyTorch (tools/reference/make_fixtures.py, Fixtures/resnet18): the
/// weights are not stored but regenerated here with the fixture's counter-based SplitMix64 generator
/// (Fixtures/resnet18/README.md), bit for bit.
/// </summary>
public sealed class ResNetFixtureTests(ITestOutputHelper output)
{
    private static readonly Lazy<(InMemoryWeights Weights, ResNetModel Model)> Generated = new(() =>
    {
        InMemoryWeights w = GenerateResNet18();
        return (w, ResNetModel.FromWeights(ResNetConfig.ResNet18(), w));
    });

    private static string FixtureFile => Path.Combine(AppContext.BaseDirectory, "Fixtures", "resnet18", "io.safetensors");

    [Fact]
    public void GeneratorReproducesTheProbe()
    {
        Assert.Equal(0x69a29a2cee47d254UL, Fnv1a64("conv1.weight"));
        using SafeTensorsFile io = SafeTensorsFile.Open(FixtureFile);
        float[] probe = io.ReadSingle("probe");
        InMemoryWeights w = Generated.Value.Weights;
        string[] names = ["conv1.weight", "bn1.running_var", "layer4.1.conv2.weight", "fc.bias"];
        for (int t = 0; t < names.Length; t++)
        {
            float[] data = w.ReadSingle(names[t]);
            for (int i = 0; i < 4; i++)
            {
                // Bit-exact: the same float64 expressions rounded once to float32.
                Assert.Equal(BitConverter.SingleToInt32Bits(probe[(4 * t) + i]), BitConverter.SingleToInt32Bits(data[i]));
            }
        }
    }

    [Fact]
    public async Task PlainMatchesPyTorch()
    {
        ResNetModel model = Generated.Value.Model;
        using SafeTensorsFile io = SafeTensorsFile.Open(FixtureFile);
        await using ResNetRunner plain = ResNetRunner.CreatePlain(model);
        foreach (int size in new[] { 64, 224 })
        {
            float[] expected = io.ReadSingle($"logits.{size}");
            float[] logits = await plain.ClassifyAsync(GenerateInput($"input.{size}", 3 * size * size), size, size);
            output.WriteLine($"{size}x{size}: max |diff| {ModelAssert.MaxDiff(expected, logits):G3} (max |logit| {ModelAssert.MaxAbs(expected):F2}), argmax {ModelAssert.ArgMax(expected)} / {ModelAssert.ArgMax(logits)}, {plain.LastCost.Elapsed.TotalMilliseconds:F0} ms");
            ModelAssert.AssertClose(expected, logits, 1e-4, $"logits.{size} vs PyTorch");
            Assert.Equal(ModelAssert.ArgMax(expected), ModelAssert.ArgMax(logits));
        }

        // Stage output: PyTorch [1, 64, 16, 16] (NCHW) against ours, channels-last [16*16, 64].
        float[] layer1 = io.ReadSingle("after_layer1.64");
        FloatTensor x = ResNetModel.ToChannelsLast(GenerateInput("input.64", 3 * 64 * 64), 64, 64);
        FloatTensor mine = await model.ForwardAsync(new PlainEngine(), x, 64, 64, stopAfterStage: 1);
        Assert.Equal(16 * 16 * 64, mine.Data.Length);
        var chw = new float[mine.Data.Length];
        for (int p = 0; p < 256; p++)
        {
            for (int c = 0; c < 64; c++)
            {
                chw[(c * 256) + p] = mine.Data[(p * 64) + c];
            }
        }

        output.WriteLine($"after_layer1.64: max |diff| {ModelAssert.MaxDiff(layer1, chw):G3} (max |x| {ModelAssert.MaxAbs(layer1):F2})");
        ModelAssert.AssertClose(layer1, chw, 1e-4, "after_layer1.64 vs PyTorch");
    }

    [Fact]
    public async Task HssEeAgreesWithPyTorchOnTop1()
    {
        ResNetModel model = Generated.Value.Model;
        using SafeTensorsFile io = SafeTensorsFile.Open(FixtureFile);
        float[] expected = io.ReadSingle("logits.64");
        float[] image = GenerateInput("input.64", 3 * 64 * 64);
        using EeKey key = EeKey.Create(ResNetModel.CreateEeKeySpec(model.Config));
        var sw = Stopwatch.StartNew();
        ResNetModel encrypted = model.Encrypt(key);
        TimeSpan encryptTime = sw.Elapsed;
        (double maxAbs, double minPool) = ResNetTests.ActivationRange(encrypted, image, 64, 64, key);
        Assert.True(maxAbs < 1 << 15, $"activations reach {maxAbs}, beyond the rescaling range 2^15 (HssEngine.MagnitudeBits)");
        await using ResNetRunner hss = ResNetRunner.CreateHssEe(encrypted, key);
        sw.Restart();
        float[] logits = await hss.ClassifyAsync(image, 64, 64);
        output.WriteLine(
            $"HSS-EE 64x64: max |diff| {ModelAssert.MaxDiff(expected, logits):G3} (max |logit| {ModelAssert.MaxAbs(expected):F2}), fidelity {ModelAssert.Fidelity(expected, logits):F5}, " +
            $"argmax {ModelAssert.ArgMax(expected)} / {ModelAssert.ArgMax(logits)} (top-2 gap {TopGap(expected):F2}); encrypted max |activation| {maxAbs:F1}, min max-pool input {minPool:G3}; encrypt {encryptTime.TotalMilliseconds:F0} ms, call {sw.Elapsed.TotalSeconds:F1} s; cost {hss.LastCost}");
        Assert.Equal(ModelAssert.ArgMax(expected), ModelAssert.ArgMax(logits));
        ModelAssert.AssertClose(expected, logits, 0.03, "HSS-EE logits.64 vs PyTorch");
        Assert.True(ModelAssert.Fidelity(expected, logits) >= 0.999, $"fidelity {ModelAssert.Fidelity(expected, logits):F5}");
    }

    private static double TopGap(float[] logits)
    {
        float[] sorted = [.. logits.OrderDescending()];
        return sorted[0] - sorted[1];
    }

    internal static ulong Fnv1a64(string name)
    {
        ulong h = 0xcbf29ce484222325;
        foreach (byte c in Encoding.UTF8.GetBytes(name))
        {
            h = (h ^ c) * 0x100000001b3;
        }

        return h;
    }

    /// <summary>The fixture generator's uniform u in [0, 1) for element <paramref name="i"/> of tensor <paramref name="h"/> (FNV-1a of its name).</summary>
    internal static double Uniform(ulong h, long i)
    {
        ulong z = h + ((ulong)(i + 1) * 0x9E3779B97F4A7C15);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }

    internal static float[] GenerateInput(string name, int count)
    {
        ulong h = Fnv1a64(name);
        var x = new float[count];
        for (int i = 0; i < count; i++)
        {
            x[i] = (float)((2.0 * Uniform(h, i)) - 1.0);
        }

        return x;
    }

    /// <summary>All tensors of torchvision <c>resnet18(num_classes=1000)</c> but <c>num_batches_tracked</c>, as the fixture's generator makes them.</summary>
    internal static InMemoryWeights GenerateResNet18()
    {
        var w = new InMemoryWeights();
        void Add(string name, int[] shape, Func<double, double> value)
        {
            ulong h = Fnv1a64(name);
            int n = shape.Aggregate(1, (a, b) => a * b);
            var data = new float[n];
            for (int i = 0; i < n; i++)
            {
                data[i] = (float)value(Uniform(h, i));
            }

            w.Add(name, shape, data);
        }

        void Kaiming(string name, int[] shape)
        {
            double bound = Math.Sqrt(6.0 / shape[1..].Aggregate(1, (a, b) => a * b));
            Add(name, shape, u => ((2 * u) - 1) * bound);
        }

        void Bn(string name, int n)
        {
            Add(name + ".weight", [n], u => 0.5 + u);
            Add(name + ".bias", [n], u => 0.2 * ((2 * u) - 1));
            Add(name + ".running_mean", [n], u => 0.1 * ((2 * u) - 1));
            Add(name + ".running_var", [n], u => 0.5 + u);
        }

        Kaiming("conv1.weight", [64, 3, 7, 7]);
        Bn("bn1", 64);
        int inC = 64;
        for (int s = 0; s < 4; s++)
        {
            int planes = 64 << s;
            for (int b = 0; b < 2; b++)
            {
                string p = $"layer{s + 1}.{b}.";
                Kaiming(p + "conv1.weight", [planes, b == 0 ? inC : planes, 3, 3]);
                Bn(p + "bn1", planes);
                Kaiming(p + "conv2.weight", [planes, planes, 3, 3]);
                Bn(p + "bn2", planes);
                if (b == 0 && s > 0)
                {
                    Kaiming(p + "downsample.0.weight", [planes, inC, 1, 1]);
                    Bn(p + "downsample.1", planes);
                }
            }

            inC = planes;
        }

        Kaiming("fc.weight", [1000, 512]);
        Add("fc.bias", [1000], u => 0.1 * ((2 * u) - 1));
        return w;
    }
}
