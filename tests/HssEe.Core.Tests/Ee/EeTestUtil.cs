using System.Security.Cryptography;
using HssEe.Ee;
using HssEe.Randomness;

namespace HssEe.Core.Tests.Ee;

/// <summary>Seeds, random data and float64 reference operators for the EE tests.</summary>
internal static class EeTestUtil
{
    /// <summary>A fresh 256-bit seed and its hex form (print it in assertion messages to reproduce a failure).</summary>
    public static (byte[] Seed, string Hex) FreshSeed()
    {
        byte[] seed = RandomNumberGenerator.GetBytes(EeKey.SeedSize);
        return (seed, Convert.ToHexString(seed));
    }

    /// <summary>A deterministic data generator tied to a test seed.</summary>
    public static AesPrg DataPrg(byte[] seed, string purpose = "data")
    {
        byte[] h = SHA256.HashData([.. seed, .. System.Text.Encoding.ASCII.GetBytes(purpose)]);
        return AesPrg.CreateDeterministicForTesting(h.AsSpan(0, AesPrg.SeedSize));
    }

    public static AesPrg FixedPrg(byte value)
    {
        byte[] s = new byte[AesPrg.SeedSize];
        s.AsSpan().Fill(value);
        return AesPrg.CreateDeterministicForTesting(s);
    }

    public static double[] Gaussian(AesPrg prg, int n, double scale = 1.0)
    {
        double[] a = new double[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = scale * prg.NextGaussian();
        }

        return a;
    }

    public static float[] GaussianF(AesPrg prg, int n, double scale = 1.0) =>
        Array.ConvertAll(Gaussian(prg, n, scale), v => (float)v);

    public static double[] ToDouble(float[] a) => Array.ConvertAll(a, v => (double)v);

    public static double MaxAbsDiff(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++)
        {
            m = Math.Max(m, Math.Abs(a[i] - b[i]));
        }

        return m;
    }

    public static double MaxAbs(ReadOnlySpan<double> a)
    {
        double m = 0;
        foreach (double v in a)
        {
            m = Math.Max(m, Math.Abs(v));
        }

        return m;
    }

    /// <summary>Asserts <c>max |a - b| &lt;= tol * max(1, max |a|)</c>.</summary>
    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double tol, string context)
    {
        double diff = MaxAbsDiff(expected, actual);
        double scale = Math.Max(1.0, MaxAbs(expected));
        Assert.True(diff <= tol * scale, $"{context}: max |diff| = {diff:E3} > {tol:E1} x {scale:G4}");
    }

    /// <summary>Asserts that the two differ by more than <paramref name="minDiff"/> somewhere.</summary>
    public static void AssertFar(ReadOnlySpan<double> a, ReadOnlySpan<double> b, double minDiff, string context)
    {
        double diff = MaxAbsDiff(a, b);
        Assert.True(diff > minDiff, $"{context}: expected a clear difference, max |diff| = {diff:E3} <= {minDiff:E1}");
    }

    /// <summary>The dense matrix of a transform (column j = T e_j), row-major.</summary>
    public static double[] DenseMatrix(FeatureTransform t, bool inverse = false)
    {
        int d = t.Dimension;
        double[] m = new double[d * d];
        double[] e = new double[d];
        double[] col = new double[d];
        for (int j = 0; j < d; j++)
        {
            Array.Clear(e);
            e[j] = 1;
            if (inverse)
            {
                t.ApplyInverse(e, col);
            }
            else
            {
                t.Apply(e, col);
            }

            for (int i = 0; i < d; i++)
            {
                m[(i * d) + j] = col[i];
            }
        }

        return m;
    }

    /// <summary>c[m, n] = a[m, k] b[k, n] (all row-major).</summary>
    public static double[] MatMul(double[] a, double[] b, int m, int k, int n)
    {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int p = 0; p < k; p++)
            {
                double v = a[(i * k) + p];
                for (int j = 0; j < n; j++)
                {
                    c[(i * n) + j] += v * b[(p * n) + j];
                }
            }
        }

        return c;
    }

    /// <summary>y[rows, out] = x[rows, in] W^T + b, W in PyTorch layout [out, in].</summary>
    public static double[] Linear(double[] x, double[] w, double[]? b, int rows, int inF, int outF)
    {
        double[] y = new double[rows * outF];
        for (int r = 0; r < rows; r++)
        {
            for (int o = 0; o < outF; o++)
            {
                double s = b?[o] ?? 0;
                for (int i = 0; i < inF; i++)
                {
                    s += w[(o * inF) + i] * x[(r * inF) + i];
                }

                y[(r * outF) + o] = s;
            }
        }

        return y;
    }

    public static double[] Map(double[] x, Func<double, double> f) => Array.ConvertAll(x, v => f(v));

    public static double Relu(double v) => Math.Max(0, v);

    public static double Gelu(double v) => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + (0.044715 * v * v * v))));

    public static double Silu(double v) => v / (1 + Math.Exp(-v));

    /// <summary>RMSNorm without gain: x / sqrt(mean(x^2) + eps), per row.</summary>
    public static double[] RmsNorm(double[] x, int d, double eps = 1e-6)
    {
        double[] y = new double[x.Length];
        for (int r = 0; r < x.Length / d; r++)
        {
            double ss = 0;
            for (int i = 0; i < d; i++)
            {
                ss += x[(r * d) + i] * x[(r * d) + i];
            }

            double inv = 1 / Math.Sqrt((ss / d) + eps);
            for (int i = 0; i < d; i++)
            {
                y[(r * d) + i] = x[(r * d) + i] * inv;
            }
        }

        return y;
    }

    /// <summary>LayerNorm without gain and bias: (x - mean) / sqrt(var + eps), per row.</summary>
    public static double[] LayerNorm(double[] x, int d, double eps = 1e-5)
    {
        double[] y = new double[x.Length];
        for (int r = 0; r < x.Length / d; r++)
        {
            double mean = 0;
            for (int i = 0; i < d; i++)
            {
                mean += x[(r * d) + i];
            }

            mean /= d;
            double var = 0;
            for (int i = 0; i < d; i++)
            {
                double c = x[(r * d) + i] - mean;
                var += c * c;
            }

            double inv = 1 / Math.Sqrt((var / d) + eps);
            for (int i = 0; i < d; i++)
            {
                y[(r * d) + i] = (x[(r * d) + i] - mean) * inv;
            }
        }

        return y;
    }

    /// <summary>
    /// RoPE on x[positions, heads * headDim] (position = row index + offset), theta_p = base^(-2p/headDim);
    /// pairs (2p, 2p+1) or (p, p + headDim/2).
    /// </summary>
    public static double[] Rope(double[] x, int heads, int headDim, bool halfSplit, int positionOffset = 0)
    {
        int d = heads * headDim;
        int half = headDim / 2;
        double[] y = (double[])x.Clone();
        for (int r = 0; r < x.Length / d; r++)
        {
            int pos = r + positionOffset;
            for (int h = 0; h < heads; h++)
            {
                for (int p = 0; p < half; p++)
                {
                    double theta = Math.Pow(10000.0, -2.0 * p / headDim);
                    double c = Math.Cos(pos * theta);
                    double s = Math.Sin(pos * theta);
                    int a = (r * d) + (h * headDim) + (halfSplit ? p : 2 * p);
                    int b = (r * d) + (h * headDim) + (halfSplit ? p + half : (2 * p) + 1);
                    y[a] = (c * x[a]) - (s * x[b]);
                    y[b] = (s * x[a]) + (c * x[b]);
                }
            }
        }

        return y;
    }

    /// <summary>Per-head scores s[h, i, j] = q[i, head h] . k[j, head h] / sqrt(headDim); q has qHeads, k has kvHeads (GQA: q head h uses kv head h / (qHeads / kvHeads)).</summary>
    public static double[] Scores(double[] q, double[] k, int qHeads, int kvHeads, int headDim)
    {
        int g = qHeads / kvHeads;
        int nq = q.Length / (qHeads * headDim);
        int nk = k.Length / (kvHeads * headDim);
        double[] s = new double[qHeads * nq * nk];
        for (int h = 0; h < qHeads; h++)
        {
            int kh = h / g;
            for (int i = 0; i < nq; i++)
            {
                for (int j = 0; j < nk; j++)
                {
                    double dot = 0;
                    for (int t = 0; t < headDim; t++)
                    {
                        dot += q[(i * qHeads * headDim) + (h * headDim) + t] * k[(j * kvHeads * headDim) + (kh * headDim) + t];
                    }

                    s[(((h * nq) + i) * nk) + j] = dot / Math.Sqrt(headDim);
                }
            }
        }

        return s;
    }

    /// <summary>Row-wise softmax over the last axis of length n.</summary>
    public static double[] Softmax(double[] x, int n)
    {
        double[] y = new double[x.Length];
        for (int r = 0; r < x.Length / n; r++)
        {
            double max = double.NegativeInfinity;
            for (int i = 0; i < n; i++)
            {
                max = Math.Max(max, x[(r * n) + i]);
            }

            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                y[(r * n) + i] = Math.Exp(x[(r * n) + i] - max);
                sum += y[(r * n) + i];
            }

            for (int i = 0; i < n; i++)
            {
                y[(r * n) + i] /= sum;
            }
        }

        return y;
    }

    /// <summary>Conv2d, stride 1, zero padding pad: x[cin, h, w], w[cout, cin, k, k], b[cout] -> y[cout, h', w'].</summary>
    public static double[] Conv2d(double[] x, double[] w, double[] b, int cin, int cout, int h, int wd, int k, int pad)
    {
        int oh = h + (2 * pad) - k + 1;
        int ow = wd + (2 * pad) - k + 1;
        double[] y = new double[cout * oh * ow];
        for (int o = 0; o < cout; o++)
        {
            for (int r = 0; r < oh; r++)
            {
                for (int c = 0; c < ow; c++)
                {
                    double s = b[o];
                    for (int i = 0; i < cin; i++)
                    {
                        for (int u = 0; u < k; u++)
                        {
                            for (int v = 0; v < k; v++)
                            {
                                int rr = r + u - pad;
                                int cc = c + v - pad;
                                if (rr >= 0 && rr < h && cc >= 0 && cc < wd)
                                {
                                    s += w[(((((o * cin) + i) * k) + u) * k) + v] * x[(((i * h) + rr) * wd) + cc];
                                }
                            }
                        }
                    }

                    y[(((o * oh) + r) * ow) + c] = s;
                }
            }
        }

        return y;
    }
}
