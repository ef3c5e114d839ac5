using HssEe.Models.IO;
using HssEe.Models.ResNet;

namespace HssEe.Testing;

/// <summary>Random ResNet weights and images for the model tests and the benchmarks (one copy, linked into both projects).</summary>
internal static class RandomResNetWeights
{
    /// <summary>
    /// Random torchvision-named weights: Kaiming-normal convolutions, batch-norm statistics in sane ranges
    /// (the last norm of every block damped so that the residual stream stays O(1)), an fc that separates logits.
    /// </summary>
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

        void Conv(string name, int o, int i, int k) =>
            weights.Add(name, [o, i, k, k], Fill(o * i * k * k, () => Normal() * Math.Sqrt(2.0 / (i * k * k))));
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
                    weights.Add(p + "downsample.1.num_batches_tracked", [], [0]);
                }

                inC = outC;
            }
        }

        weights.Add("fc.weight", [c.NumClasses, c.FeatureCount], Fill(c.NumClasses * c.FeatureCount, () => 2 * Normal() / Math.Sqrt(c.FeatureCount)));
        weights.Add("fc.bias", [c.NumClasses], Fill(c.NumClasses, () => 0.1 * Normal()));
        return weights;
    }

    /// <summary>A normalised-looking image <c>[3, H, W]</c> with values in [-2.1, 2.3].</summary>
    public static float[] Image(int h, int w, int seed)
    {
        var random = new Random(seed);
        var x = new float[3 * h * w];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)((random.NextDouble() * 4.4) - 2.1);
        }

        return x;
    }
}
