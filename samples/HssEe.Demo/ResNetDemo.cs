using System.Diagnostics;
using HssEe.Ee;
using HssEe.Models;
using HssEe.Models.IO;
using HssEe.Models.ResNet;

namespace HssEe.Demo;

/// <summary>
/// <c>--model resnet</c>: torchvision-layout ResNet-18 with random weights (He-scaled convolutions, random
/// batch-norm statistics) classifying a random 64x64 image in the chosen mode, against plain float32.
/// </summary>
internal static class ResNetDemo
{
    public static async Task<int> RunAsync(DemoOptions options)
    {
        const int Side = 64;
        ResNetConfig config = ResNetConfig.ResNet18();
        Console.WriteLine($"HssEe demo: ResNet-18 (random weights, torchvision layout) on a random {Side}x{Side} image, mode {options.Mode}");
        var sw = Stopwatch.StartNew();
        var model = ResNetModel.FromWeights(config, RandomWeights(config, seed: 2024));
        var random = new Random(7);
        float[] image = new float[3 * Side * Side];
        for (int i = 0; i < image.Length; i++)
        {
            image[i] = (float)((random.NextDouble() * 2) - 1);
        }

        using EeKey key = EeKey.Create(ResNetModel.CreateEeKeySpec(config));
        ResNetModel encrypted = model.Encrypt(key);
        Console.WriteLine($"[1/3] model built, EE key made and weights rewritten in {sw.ElapsedMilliseconds} ms");

        await using ResNetRunner plainRunner = ResNetRunner.CreatePlain(model);
        float[] plain = await plainRunner.ClassifyAsync(image, Side, Side);
        Console.WriteLine($"[2/3] plaintext: {plainRunner.LastCost.Elapsed.TotalMilliseconds:F0} ms");

        await using ResNetRunner runner = options.Mode switch
        {
            ExecutionMode.Plain => ResNetRunner.CreatePlain(model),
            ExecutionMode.Ee => ResNetRunner.CreateEe(encrypted, key),
            _ => ResNetRunner.CreateHssEe(encrypted, key),
        };
        sw.Restart();
        runner.PrepareKeys(Side, Side);
        if (options.Mode == ExecutionMode.HssEe)
        {
            Console.WriteLine($"[3/3] client (dealer): keys dealt in {sw.ElapsedMilliseconds} ms; servers running...");
        }

        float[] priv = await runner.ClassifyAsync(image, Side, Side);
        int top = ArgMax(plain), topPrivate = ArgMax(priv);
        double maxDiff = plain.Zip(priv).Max(p => Math.Abs(p.First - p.Second));
        Console.WriteLine($"  plaintext top-1 : class {top} (logit {plain[top]:F3})");
        Console.WriteLine($"  {options.Mode,-9} top-1 : class {topPrivate} (logit {priv[topPrivate]:F3}), max |logit diff| {maxDiff:G3}");
        Console.WriteLine($"  cost            : {runner.LastCost}");
        return top == topPrivate ? 0 : 1;
    }

    private static int ArgMax(float[] v) => Array.IndexOf(v, v.Max());

    /// <summary>Random torchvision-named weights: convolutions U(+-sqrt(6/fan_in)), BN gamma in [0.5, 1.5), beta, mean small, var in [0.5, 1.5).</summary>
    private static InMemoryWeights RandomWeights(ResNetConfig config, int seed)
    {
        var random = new Random(seed);
        var w = new InMemoryWeights();
        void Conv(string name, int cout, int cin, int k)
        {
            double a = Math.Sqrt(6.0 / (cin * k * k));
            w.Add(name, [cout, cin, k, k], Uniform(cout * cin * k * k, -a, a));
        }

        void Bn(string name, int c)
        {
            w.Add(name + ".weight", [c], Uniform(c, 0.5, 1.5));
            w.Add(name + ".bias", [c], Uniform(c, -0.2, 0.2));
            w.Add(name + ".running_mean", [c], Uniform(c, -0.1, 0.1));
            w.Add(name + ".running_var", [c], Uniform(c, 0.5, 1.5));
        }

        float[] Uniform(int n, double lo, double hi)
        {
            var v = new float[n];
            for (int i = 0; i < n; i++)
            {
                v[i] = (float)(lo + ((hi - lo) * random.NextDouble()));
            }

            return v;
        }

        int width = config.Width;
        Conv("conv1.weight", width, 3, 7);
        Bn("bn1", width);
        int inC = width;
        for (int s = 0; s < 4; s++)
        {
            int c = width << s;
            for (int b = 0; b < config.BlocksPerStage[s]; b++)
            {
                string p = $"layer{s + 1}.{b}.";
                Conv(p + "conv1.weight", c, inC, 3);
                Bn(p + "bn1", c);
                Conv(p + "conv2.weight", c, c, 3);
                Bn(p + "bn2", c);
                if (b == 0 && (s > 0 || inC != c))
                {
                    Conv(p + "downsample.0.weight", c, inC, 1);
                    Bn(p + "downsample.1", c);
                }

                inC = c;
            }
        }

        double fa = Math.Sqrt(6.0 / inC);
        w.Add("fc.weight", [config.NumClasses, inC], Uniform(config.NumClasses * inC, -fa, fa));
        w.Add("fc.bias", [config.NumClasses], Uniform(config.NumClasses, -0.1, 0.1));
        return w;
    }
}
