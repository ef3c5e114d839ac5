using HssEe.Models.Llama;
using Xunit;

namespace HssEe.Models.Tests;

/// <summary>Comparisons of logits shared by the model tests.</summary>
internal static class ModelAssert
{
    public static int ArgMax(ReadOnlySpan<float> logits) => LlamaGenerator.ArgMax(logits);

    /// <summary>Top-1 minus top-2.</summary>
    public static double Margin(ReadOnlySpan<float> logits)
    {
        float[] s = logits.ToArray();
        Array.Sort(s);
        return s[^1] - s[^2];
    }

    public static double MaxAbs(ReadOnlySpan<float> v)
    {
        double m = 0;
        foreach (float x in v)
        {
            m = Math.Max(m, Math.Abs(x));
        }

        return m;
    }

    public static double MaxAbs(ReadOnlySpan<double> v)
    {
        double m = 0;
        foreach (double x in v)
        {
            m = Math.Max(m, Math.Abs(x));
        }

        return m;
    }

    public static double MaxDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++)
        {
            m = Math.Max(m, Math.Abs(a[i] - b[i]));
        }

        return m;
    }

    public static double MaxDiff(ReadOnlySpan<double> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++)
        {
            m = Math.Max(m, Math.Abs(a[i] - b[i]));
        }

        return m;
    }

    /// <summary>Max |expected - actual| within <paramref name="relative"/> times max |expected|.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relative, string context)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = MaxDiff(expected, actual), scale = MaxAbs(expected);
        Assert.True(diff <= relative * Math.Max(scale, 1e-6), $"{context}: max |diff| {diff:G4} exceeds {relative:G3} x max |expected| {scale:G4}");
    }

    /// <summary>As above, against a float64 reference.</summary>
    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double relative, string context)
    {
        double diff = MaxDiff(expected, actual), scale = MaxAbs(expected);
        Assert.True(diff <= relative * Math.Max(scale, 1e-6), $"{context}: max |diff| {diff:G4} exceeds {relative:G3} x max |expected| {scale:G4}");
    }

    /// <summary>The EE paper's fidelity on the top-1 softmax confidence: <c>1 - |s1 - s2| / max(s1, s2)</c>.</summary>
    public static double Fidelity(ReadOnlySpan<float> reference, ReadOnlySpan<float> actual)
    {
        static double Top(ReadOnlySpan<float> l)
        {
            double max = double.NegativeInfinity, sum = 0;
            foreach (float v in l)
            {
                max = Math.Max(max, v);
            }

            foreach (float v in l)
            {
                sum += Math.Exp(v - max);
            }

            return 1 / sum;
        }

        double a = Top(reference), b = Top(actual);
        return 1 - (Math.Abs(a - b) / Math.Max(a, b));
    }
}
