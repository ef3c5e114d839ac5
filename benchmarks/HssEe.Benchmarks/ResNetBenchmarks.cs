using BenchmarkDotNet.Attributes;
using HssEe.Ee;
using HssEe.Models;
using HssEe.Models.IO;
using HssEe.Models.ResNet;

using HssEe.Testing;

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
