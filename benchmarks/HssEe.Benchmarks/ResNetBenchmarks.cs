using BenchmarkDotNet.Attributes;
using HssEe.Ee;
using HssEe.Models;
using HssEe.Models.IO;
using HssEe.Models.ResNet;

namespace HssEe.Benchmarks;

/// <summary>
/// Classification of one image (batch 1) by a torchvision ResNet with random weights, through
/// <see cref="ResNetRunner.ClassifyAsync"/> in the three modes:
/// <list type="bullet">
/// <item><c>ResNet-18 224</c> and <c>ResNet-50 224</c>: ImageNet size, Plain and EE.</item>
/// <item><c>ResNet-18 64</c>: a 64 x 64 image, Plain, EE and HSS-EE.</item>
/// <item><c>ResNet-18 112</c>: a 112 x 112 image, HSS-EE only (the largest size whose keys stay in memory).</item>
/// </list>
/// What is timed is the whole call as the client sees it: the image converted to channels-last, the colour
/// channels permuted (EE, HSS-EE), the forward pass, and the logits un-permuted. EE runs the same float
/// engine on the rewritten weights, so EE over Plain is the EE overhead. HSS-EE also encodes and splits the
/// image, runs the online phase of both servers in one process and reconstructs the logits; its FSS keys are
/// dealt before each iteration with <see cref="ResNetRunner.PrepareKeys"/> (single use, not timed). Online
/// bytes, rounds, key bytes and key-generation time are printed at setup (<c>COST</c> lines).
/// HSS-EE at 224 x 224 is not run: key bytes grow with the number of activations (H * W). ResNet-18 takes
/// about 1.4 GB of keys (both servers) at 64 x 64 and 4.2 GB at 112 x 112; at 224 x 224 it would take
/// about 4 times that, some 16 GB held in memory (plus the dealer's working set) on a 24 GB machine, and
/// ResNet-50 more still.
/// </summary>
[Config(typeof(Config))]
public class ResNetBenchmarks
{
    private ResNetRunner? _runner;
    private EeKey? _key;
    private float[] _image = null!;
    private int _size;

    /// <summary>Architecture and image size.</summary>
    [Params("ResNet-18 224", "ResNet-18 112", "ResNet-18 64", "ResNet-50 224")]
    public string Shape { get; set; } = "ResNet-18 64";

    /// <summary>Execution mode.</summary>
    [Params("Plain", "EE", "HSS-EE")]
    public string Mode { get; set; } = "Plain";

    /// <summary>Where ResNet-18 224 HSS-EE spills its key bundles (environment variable <c>HSSEE_BENCHMARK_SPILL_DIR</c>); not run when unset.</summary>
    private static string? SpillDirectory => Environment.GetEnvironmentVariable("HSSEE_BENCHMARK_SPILL_DIR");

    /// <summary>Builds the model, the rewritten model and the runner; for HSS-EE runs once and prints the costs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        string? skip = (Shape, Mode) switch
        {
            ("ResNet-18 112", not "HSS-EE") => "112 x 112 is an HSS-EE case only (the largest size whose keys fit in memory)",
            ("ResNet-18 224", "HSS-EE") when SpillDirectory is null => "its keys would be about 16 GB per image (key bytes grow with H*W: about 4x those of ResNet-18 112 HSS-EE, 12x those at 64), too much to hold in memory beside the run on this 24 GB machine; set HSSEE_BENCHMARK_SPILL_DIR to a folder to run it with the bundles spilled to delete-on-close files there",
            ("ResNet-50 224", "HSS-EE") => "its keys would be well above the 16 GB of ResNet-18 at 224 (more activations at every stage)",
            _ => null,
        };
        if (skip is not null)
        {
            Console.WriteLine($"COST {Shape} {Mode}: not run: {skip}");
            return;
        }

        ResNetConfig config = Shape.StartsWith("ResNet-50", StringComparison.Ordinal) ? ResNetConfig.ResNet50() : ResNetConfig.ResNet18();
        _size = int.Parse(Shape.AsSpan(Shape.LastIndexOf(' ') + 1), System.Globalization.CultureInfo.InvariantCulture);
        _image = RandomResNetWeights.Image(_size, _size, 5);
        var model = ResNetModel.FromWeights(config, RandomResNetWeights.Create(config, 3));
        if (Mode == "Plain")
        {
            _runner = ResNetRunner.CreatePlain(model);
            return;
        }

        _key = EeKey.Create(ResNetModel.CreateEeKeySpec(config));
        ResNetModel encrypted = model.Encrypt(_key);
        if (Mode == "EE")
        {
            _runner = ResNetRunner.CreateEe(encrypted, _key);
            return;
        }

        DealtKeys.SpillDirectoryForBenchmarks = _size > 112 ? SpillDirectory : null;
        _runner = ResNetRunner.CreateHssEe(encrypted, _key);
        IterationSetup();
        _ = _runner.ClassifyAsync(_image, _size, _size).GetAwaiter().GetResult();
        InferenceCost cost = _runner.LastCost;
        Console.WriteLine($"COST {Shape} HSS-EE: online {cost.OnlineBytes} B ({cost.OnlineBytes / 1048576.0:F2} MiB), rounds {cost.Rounds}, key bytes {cost.KeyBytes} ({cost.KeyBytes / 1048576.0:F1} MiB), keygen {cost.KeyGeneration.TotalMilliseconds:F0} ms, online time {cost.Elapsed.TotalMilliseconds:F1} ms");
    }

    /// <summary>Deals fresh keys before each HSS-EE iteration (not timed).</summary>
    [IterationSetup]
    public void IterationSetup()
    {
        if (Mode == "HSS-EE" && _runner is not null)
        {
            GC.Collect();
            _runner.PrepareKeys(_size, _size);
        }
    }

    /// <summary>One image classified.</summary>
    /// <returns>A logit (keeps the work alive).</returns>
    [Benchmark]
    public async Task<float> Classify()
    {
        if (_runner is null)
        {
            return 0;
        }

        float[] logits = await _runner.ClassifyAsync(_image, _size, _size).ConfigureAwait(false);
        return logits[0];
    }

    /// <summary>Releases the runner and the key.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _runner?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _runner = null;
        _key?.Dispose();
        _key = null;
    }
}

/// <summary>
/// Random torchvision ResNet weights (state-dict names): Kaiming-normal convolutions, batch-norm statistics in
/// sane ranges with the last norm of every block damped so that the residual stream stays O(1) (as HSS-EE's
/// fixed point needs), and a classifier with N(0, 4 / features) weights.
/// </summary>
internal static class RandomResNetWeights
{
    public static InMemoryWeights Create(ResNetConfig c, int seed)
    {
        var random = new Random(seed);
        var weights = new InMemoryWeights();
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        float[] Fill(int n, Func<double> f)
        {
            var d = new float[n];
            for (int i = 0; i < n; i++)
            {
                d[i] = (float)f();
            }

            return d;
        }

        void Conv(string name, int o, int i, int k)
        {
            double std = Math.Sqrt(2.0 / (i * k * k));
            weights.Add(name, [o, i, k, k], Fill(o * i * k * k, () => std * Normal()));
        }

        void Bn(string name, int n, double gammaLow, double gammaHigh)
        {
            weights.Add(name + ".weight", [n], Fill(n, () => gammaLow + ((gammaHigh - gammaLow) * random.NextDouble())));
            weights.Add(name + ".bias", [n], Fill(n, () => 0.1 * Normal()));
            weights.Add(name + ".running_mean", [n], Fill(n, () => 0.2 * Normal()));
            weights.Add(name + ".running_var", [n], Fill(n, () => 0.5 + random.NextDouble()));
        }

        Conv("conv1.weight", c.Width, 3, 7);
        Bn("bn1", c.Width, 0.5, 1.2);
        int inC = c.Width;
        for (int s = 0; s < 4; s++)
        {
            int planes = c.Width << s, outC = planes * c.Expansion;
            for (int b = 0; b < c.BlocksPerStage[s]; b++)
            {
                string p = $"layer{s + 1}.{b}.";
                int stride = b == 0 && s > 0 ? 2 : 1;
                if (c.UsesBottleneck)
                {
                    Conv(p + "conv1.weight", planes, inC, 1);
                    Bn(p + "bn1", planes, 0.5, 1.2);
                    Conv(p + "conv2.weight", planes, planes, 3);
                    Bn(p + "bn2", planes, 0.5, 1.2);
                    Conv(p + "conv3.weight", outC, planes, 1);
                    Bn(p + "bn3", outC, 0.2, 0.5);
                }
                else
                {
                    Conv(p + "conv1.weight", planes, inC, 3);
                    Bn(p + "bn1", planes, 0.5, 1.2);
                    Conv(p + "conv2.weight", planes, planes, 3);
                    Bn(p + "bn2", planes, 0.2, 0.5);
                }

                if (stride != 1 || inC != outC)
                {
                    Conv(p + "downsample.0.weight", outC, inC, 1);
                    Bn(p + "downsample.1", outC, 0.5, 1.0);
                }

                inC = outC;
            }
        }

        double fcStd = 2 / Math.Sqrt(c.FeatureCount);
        weights.Add("fc.weight", [c.NumClasses, c.FeatureCount], Fill(c.NumClasses * c.FeatureCount, () => fcStd * Normal()));
        weights.Add("fc.bias", [c.NumClasses], Fill(c.NumClasses, () => 0.1 * Normal()));
        return weights;
    }

    /// <summary>A normalised-looking image <c>[3, H, W]</c> with values in [-2.1, 2.3].</summary>
    public static float[] Image(int height, int width, int seed)
    {
        var random = new Random(seed);
        var x = new float[3 * height * width];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)((random.NextDouble() * 4.4) - 2.1);
        }

        return x;
    }
}
