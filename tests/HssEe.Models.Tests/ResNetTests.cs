using System.Diagnostics;
using System.Security.Cryptography;
using HssEe.Ee;
using HssEe.Models.Engine;
using HssEe.Models.IO;
using HssEe.Models.ResNet;
using HssEe.Ring;
using HssEe.Testing;
using Xunit;
using Xunit.Abstractions;

using static HssEe.Models.Tests.ModelAssert;

namespace HssEe.Models.Tests;

public sealed class ResNetTests(ITestOutputHelper output)
{
    // Odd, non-square images: padding at every edge, and a 3x2 map at the average pool (6 positions, not a power of two).
    private const int H = 69;
    private const int W = 37;
    private const int Classes = 10;

    internal static ResNetConfig Tiny(int depth, int width = 8) => new() { Depth = depth, NumClasses = Classes, Width = width };

    private static int FreshSeed() => RandomNumberGenerator.GetInt32(int.MaxValue);

    [Theory]
    [InlineData(18)]
    [InlineData(34)]
    [InlineData(50)]
    public async Task PlainMatchesFloat64Reference(int depth)
    {
        int seed = FreshSeed();
        ResNetConfig c = Tiny(depth, width: depth == 18 ? 8 : 4);
        InMemoryWeights weights = RandomResNetWeights.Create(c, seed);
        float[] image = RandomResNetWeights.Image(H, W, seed + 1);
        var sw = Stopwatch.StartNew();
        double[] reference = ReferenceForward(c, weights, image, H, W);
        TimeSpan refTime = sw.Elapsed;
        await using ResNetRunner plain = ResNetRunner.CreatePlain(ResNetModel.FromWeights(c, weights));
        float[] logits = await plain.ClassifyAsync(image, H, W);
        output.WriteLine($"ResNet-{depth} width {c.Width}, seed {seed}: max |diff| {MaxDiff(reference, logits):G3} over max |logit| {MaxAbs(reference):G3}; reference {refTime.TotalMilliseconds:F0} ms, plain {plain.LastCost.Elapsed.TotalMilliseconds:F1} ms");
        AssertClose(reference, logits, 1e-4, $"ResNet-{depth}, seed {seed}");
    }

    [Theory]
    [InlineData(18)]
    [InlineData(50)]
    public async Task EeMatchesPlain(int depth)
    {
        int seed = FreshSeed();
        ResNetConfig c = Tiny(depth);
        var model = ResNetModel.FromWeights(c, RandomResNetWeights.Create(c, seed));
        using EeKey key = EeKey.Create(ResNetModel.CreateEeKeySpec(c));
        ResNetModel encrypted = model.Encrypt(key);
        Assert.True(encrypted.IsEncrypted);
        Assert.False(model.IsEncrypted);
        await using ResNetRunner plain = ResNetRunner.CreatePlain(model);
        await using ResNetRunner ee = ResNetRunner.CreateEe(encrypted, key);
        Assert.Equal(ExecutionMode.Ee, ee.Mode);
        for (int i = 0; i < 2; i++)
        {
            float[] image = RandomResNetWeights.Image(H, W, seed + 1 + i);
            float[] p = await plain.ClassifyAsync(image, H, W);
            float[] e = await ee.ClassifyAsync(image, H, W);
            output.WriteLine($"ResNet-{depth}, seed {seed}, image {i}: max |diff| {MaxDiff(p, e):G3}, max |logit| {MaxAbs(p):G3}");
            AssertClose(p, e, 1e-4, $"ResNet-{depth}, seed {seed}, image {i}");
            Assert.Equal(ArgMax(p), ArgMax(e));
        }

        // The rewritten weights differ from the originals (the key did something).
        Assert.NotEqual(model.Stem.Layer.Weight, encrypted.Stem.Layer.Weight);
    }

    [Theory]
    [InlineData(18)]
    [InlineData(50)]
    public async Task HssEeMatchesPlain(int depth)
    {
        int seed = FreshSeed();
        ResNetConfig c = Tiny(depth);
        var model = ResNetModel.FromWeights(c, RandomResNetWeights.Create(c, seed));
        using EeKey key = EeKey.Create(ResNetModel.CreateEeKeySpec(c));
        ResNetModel encrypted = model.Encrypt(key);
        float[] image = RandomResNetWeights.Image(H, W, seed + 1);
        (double maxAbs, double minPoolInput) = ActivationRange(encrypted, image, H, W, key);
        await using ResNetRunner plain = ResNetRunner.CreatePlain(model);
        await using ResNetRunner hss = ResNetRunner.CreateHssEe(encrypted, key);
        Assert.Equal(ExecutionMode.HssEe, hss.Mode);
        float[] p = await plain.ClassifyAsync(image, H, W);
        var sw = Stopwatch.StartNew();
        float[] h = await hss.ClassifyAsync(image, H, W);
        sw.Stop();
        double fidelity = Fidelity(p, h);
        output.WriteLine(
            $"ResNet-{depth} width {c.Width} {H}x{W}, seed {seed}: max |diff| {MaxDiff(p, h):G3} (max |logit| {MaxAbs(p):G3}), fidelity {fidelity:F5}, " +
            $"top-1 {ArgMax(p)} / {ArgMax(h)}; encrypted max |activation| {maxAbs:G4}, min max-pool input {minPoolInput:G4}; call {sw.Elapsed.TotalMilliseconds:F0} ms; cost {hss.LastCost}");
        Assert.True(maxAbs < (1 << 15), $"seed {seed}: activations reach {maxAbs}, beyond the rescaling range 2^15 (HssEngine.MagnitudeBits)");
        AssertSameTop1(p, h, $"ResNet-{depth}, seed {seed}");
        AssertClose(p, h, 0.03, $"ResNet-{depth}, seed {seed}");
        Assert.True(hss.LastCost.OnlineBytes > 0 && hss.LastCost.Rounds > 0 && hss.LastCost.KeyBytes > 0, hss.LastCost.ToString());
    }

    [Fact]
    public async Task HssEePreparedKeysAreUsedOnceAndSizesAreChecked()
    {
        int seed = FreshSeed();
        ResNetConfig c = Tiny(18, width: 4);
        var model = ResNetModel.FromWeights(c, RandomResNetWeights.Create(c, seed));
        using EeKey key = EeKey.Create(ResNetModel.CreateEeKeySpec(c));
        await using ResNetRunner plain = ResNetRunner.CreatePlain(model);
        await using ResNetRunner hss = ResNetRunner.CreateHssEe(model.Encrypt(key), key);
        hss.PrepareKeys(32, 32, count: 1);
        for (int i = 0; i < 2; i++)
        {
            // The first call uses the prepared keys, the second deals fresh ones.
            float[] image = RandomResNetWeights.Image(32, 32, seed + i);
            float[] p = await plain.ClassifyAsync(image, 32, 32);
            float[] h = await hss.ClassifyAsync(image, 32, 32);
            output.WriteLine($"seed {seed}, image {i}: max |diff| {MaxDiff(p, h):G3}, cost {hss.LastCost}");
            AssertSameTop1(p, h, $"seed {seed}, image {i}");
            AssertClose(p, h, 0.03, $"seed {seed}, image {i}");
        }

        Assert.Equal(2 * hss.LastCost.Rounds, hss.TotalCost.Rounds);

        // The average pool's scale must be exact in fixed point: an 8192x600 image leaves 256x19 positions (> 2^12).
        NotSupportedException n = Assert.Throws<NotSupportedException>(() => hss.PrepareKeys(8192, 600));
        output.WriteLine(n.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => hss.PrepareKeys(0, 600));
    }

    [Fact]
    public async Task WrongInputsGiveClearErrors()
    {
        ResNetConfig c = Tiny(18, width: 4);
        var model = ResNetModel.FromWeights(c, RandomResNetWeights.Create(c, 1));
        await using ResNetRunner plain = ResNetRunner.CreatePlain(model);
        ArgumentException e = await Assert.ThrowsAsync<ArgumentException>(() => plain.ClassifyAsync(new float[3 * 32 * 31], 32, 32));
        Assert.Contains("[3, 32, 32]", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => plain.ClassifyAsync([], 0, 5));

        // Wrong tensor shape and a missing tensor name the tensor.
        InMemoryWeights bad = RandomResNetWeights.Create(c, 1), renamed = new();
        foreach (string name in bad.Names)
        {
            float[] data = bad.ReadSingle(name);
            IReadOnlyList<int> shape = bad.GetShape(name);
            if (name == "fc.bias")
            {
                renamed.Add(name, [shape[0] - 1], data[1..]);
            }
            else
            {
                renamed.Add(name, shape, data);
            }
        }

        FormatException f = Assert.Throws<FormatException>(() => ResNetModel.FromWeights(c, renamed));
        Assert.Contains("fc.bias", f.Message, StringComparison.Ordinal);
        KeyNotFoundException k = Assert.Throws<KeyNotFoundException>(() => ResNetModel.FromWeights(Tiny(50, width: 4), bad));
        Assert.Contains("'layer1.0.", k.Message, StringComparison.Ordinal);

        // Keys and modes must fit.
        using EeKey other = EeKey.Create(ResNetModel.CreateEeKeySpec(Tiny(18, width: 8)));
        ArgumentException wrongKey = Assert.Throws<ArgumentException>(() => model.Encrypt(other));
        Assert.Contains("boundary 'layer1'", wrongKey.Message, StringComparison.Ordinal);
        using EeKey key = EeKey.Create(ResNetModel.CreateEeKeySpec(c));
        ResNetModel encrypted = model.Encrypt(key);
        Assert.Throws<InvalidOperationException>(() => encrypted.Encrypt(key));
        Assert.Throws<ArgumentException>(() => ResNetRunner.CreatePlain(encrypted));
        Assert.Throws<ArgumentException>(() => ResNetRunner.CreateEe(model, key));
        Assert.Throws<ArgumentException>(() => ResNetRunner.CreateHssEe(model, key));
        Assert.Throws<ArgumentException>(() => ResNetModel.FromWeights(new ResNetConfig { Depth = 101 }, bad));
    }

    [Fact]
    public void KeySpecSharesTransformsAlongResidualStreams()
    {
        EeKeySpec basic = ResNetModel.CreateEeKeySpec(ResNetConfig.ResNet18());
        EeKeySpec bottleneck = ResNetModel.CreateEeKeySpec(ResNetConfig.ResNet50());
        Assert.False(basic.TryGetBoundary("stem", out _));
        Assert.True(basic.TryGetBoundary("layer1", out EeBoundary? l1) && l1.Dimension == 64 && l1.Kind == EeTransformKind.ScaledPermutation);
        Assert.True(basic.TryGetBoundary("layer4", out EeBoundary? l4) && l4.Dimension == 512);
        Assert.True(basic.TryGetBoundary("layer3.1.conv1", out _));
        Assert.False(basic.TryGetBoundary("layer3.1.conv2", out _));
        Assert.True(bottleneck.TryGetBoundary("stem", out EeBoundary? stem) && stem.Dimension == 64);
        Assert.True(bottleneck.TryGetBoundary("layer4", out EeBoundary? b4) && b4.Dimension == 2048);
        Assert.True(bottleneck.TryGetBoundary("layer4.2.conv2", out EeBoundary? mid) && mid.Dimension == 512);
        Assert.True(bottleneck.TryGetBoundary("input", out EeBoundary? input) && input.Kind == EeTransformKind.Permutation && input.Dimension == 3);
        Assert.True(bottleneck.TryGetBoundary("classes", out EeBoundary? classes) && classes.Kind == EeTransformKind.Permutation && classes.Dimension == 1000);
    }

    // ---- Independent float64 reference: CHW tensors, direct convolution loops, unfolded batch norm. ----

    internal static double[] ReferenceForward(ResNetConfig c, IWeightSource weights, float[] image, int h, int w, int stopAfterStage = 0)
    {
        double[] x = Array.ConvertAll(image, v => (double)v);
        int ch = 3;
        double[] ConvBn(double[] input, int cin, ref int hh, ref int ww, string conv, string bn, int stride, int pad, bool relu)
        {
            IReadOnlyList<int> shape = weights.GetShape(conv);
            int cout = shape[0], k = shape[2];
            float[] wt = weights.ReadSingle(conv);
            int oh = ((hh + (2 * pad) - k) / stride) + 1, ow = ((ww + (2 * pad) - k) / stride) + 1;
            var y = new double[cout * oh * ow];
            for (int o = 0; o < cout; o++)
            {
                for (int oy = 0; oy < oh; oy++)
                {
                    for (int ox = 0; ox < ow; ox++)
                    {
                        double sum = 0;
                        for (int i = 0; i < cin; i++)
                        {
                            for (int ky = 0; ky < k; ky++)
                            {
                                int iy = (oy * stride) - pad + ky;
                                if (iy < 0 || iy >= hh)
                                {
                                    continue;
                                }

                                for (int kx = 0; kx < k; kx++)
                                {
                                    int ix = (ox * stride) - pad + kx;
                                    if (ix >= 0 && ix < ww)
                                    {
                                        sum += wt[(((((o * cin) + i) * k) + ky) * k) + kx] * input[(((i * hh) + iy) * ww) + ix];
                                    }
                                }
                            }
                        }

                        y[(((o * oh) + oy) * ow) + ox] = sum;
                    }
                }
            }

            float[] g = weights.ReadSingle(bn + ".weight"), b = weights.ReadSingle(bn + ".bias");
            float[] m = weights.ReadSingle(bn + ".running_mean"), v = weights.ReadSingle(bn + ".running_var");
            for (int o = 0; o < cout; o++)
            {
                for (int q = 0; q < oh * ow; q++)
                {
                    double z = ((y[(o * oh * ow) + q] - m[o]) / Math.Sqrt(v[o] + 1e-5) * g[o]) + b[o];
                    y[(o * oh * ow) + q] = relu ? Math.Max(z, 0) : z;
                }
            }

            (hh, ww) = (oh, ow);
            return y;
        }

        x = ConvBn(x, ch, ref h, ref w, "conv1.weight", "bn1", 2, 3, relu: true);
        ch = c.Width;

        // Max pool 3x3 / 2, padding 1 (padding never wins).
        int ph = ((h + 2 - 3) / 2) + 1, pw = ((w + 2 - 3) / 2) + 1;
        var pooled = new double[ch * ph * pw];
        for (int i = 0; i < ch; i++)
        {
            for (int oy = 0; oy < ph; oy++)
            {
                for (int ox = 0; ox < pw; ox++)
                {
                    double max = double.NegativeInfinity;
                    for (int iy = (2 * oy) - 1; iy <= (2 * oy) + 1; iy++)
                    {
                        for (int ix = (2 * ox) - 1; ix <= (2 * ox) + 1; ix++)
                        {
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                            {
                                max = Math.Max(max, x[(((i * h) + iy) * w) + ix]);
                            }
                        }
                    }

                    pooled[(((i * ph) + oy) * pw) + ox] = max;
                }
            }
        }

        (x, h, w) = (pooled, ph, pw);
        for (int s = 0; s < 4; s++)
        {
            for (int b = 0; b < c.BlocksPerStage[s]; b++)
            {
                string p = $"layer{s + 1}.{b}.";
                int stride = b == 0 && s > 0 ? 2 : 1;
                int h2 = h, w2 = w;
                double[] y;
                int cout;
                if (c.UsesBottleneck)
                {
                    int planes = c.Width << s;
                    y = ConvBn(x, ch, ref h2, ref w2, p + "conv1.weight", p + "bn1", 1, 0, relu: true);
                    y = ConvBn(y, planes, ref h2, ref w2, p + "conv2.weight", p + "bn2", stride, 1, relu: true);
                    y = ConvBn(y, planes, ref h2, ref w2, p + "conv3.weight", p + "bn3", 1, 0, relu: false);
                    cout = planes * 4;
                }
                else
                {
                    int planes = c.Width << s;
                    y = ConvBn(x, ch, ref h2, ref w2, p + "conv1.weight", p + "bn1", stride, 1, relu: true);
                    y = ConvBn(y, planes, ref h2, ref w2, p + "conv2.weight", p + "bn2", 1, 1, relu: false);
                    cout = planes;
                }

                double[] identity = x;
                if (weights.Contains(p + "downsample.0.weight"))
                {
                    int h3 = h, w3 = w;
                    identity = ConvBn(x, ch, ref h3, ref w3, p + "downsample.0.weight", p + "downsample.1", stride, 0, relu: false);
                }

                for (int i = 0; i < y.Length; i++)
                {
                    y[i] = Math.Max(y[i] + identity[i], 0);
                }

                (x, h, w, ch) = (y, h2, w2, cout);
            }

            if (stopAfterStage == s + 1)
            {
                return x;
            }
        }

        var features = new double[ch];
        for (int i = 0; i < ch; i++)
        {
            double sum = 0;
            for (int q = 0; q < h * w; q++)
            {
                sum += x[(i * h * w) + q];
            }

            features[i] = sum / (h * w);
        }

        float[] fc = weights.ReadSingle("fc.weight"), fcb = weights.ReadSingle("fc.bias");
        var logits = new double[c.NumClasses];
        for (int o = 0; o < logits.Length; o++)
        {
            double sum = fcb[o];
            for (int i = 0; i < ch; i++)
            {
                sum += fc[(o * ch) + i] * features[i];
            }

            logits[o] = sum;
        }

        return logits;
    }

    /// <summary>
    /// Largest |value| any operation produces in float (what the HSS-EE servers hold in fixed point), and the
    /// smallest max-pool input (padding excluded). With a key: the encrypted model on the encrypted image.
    /// </summary>
    internal static (double MaxAbs, double MinPoolInput) ActivationRange(ResNetModel model, float[] image, int h, int w, EeKey? key = null)
    {
        var probe = new RangeProbe();
        FloatTensor x = ResNetModel.ToChannelsLast(image, h, w);
        key?.Encrypt(ResNetModel.InputBoundary, x.Data, x.Data);
        _ = model.ForwardAsync(probe, x, h, w).AsTask().GetAwaiter().GetResult();
        return (probe.MaxAbs, probe.MinPoolInput);
    }

    // ---- Comparison helpers. ----

    /// <summary>
    /// Top-1 agreement of fixed-point logits with float ones. Random weights can produce a near-tie: a different
    /// top-1 is accepted only when its float logit is within twice the observed error of the float maximum.
    /// </summary>
    internal static void AssertSameTop1(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string context)
    {
        int e = ArgMax(expected), a = ArgMax(actual);
        double gap = expected[e] - expected[a], error = MaxDiff(expected, actual);
        Assert.True(e == a || gap <= 2 * error, $"{context}: top-1 {a} instead of {e}, float gap {gap:G4} is not a near-tie (max |diff| {error:G4})");
    }
}
