using System.Diagnostics;
using HssEe.Randomness;

namespace HssEe.Ee;

/// <summary>
/// A positive monomial transform: a permutation followed by a positive diagonal scaling,
/// <c>y[i] = scale[i] * x[source[i]]</c> (matrix <c>D P</c>). With the identity permutation it is the
/// <see cref="EeTransformKind.PositiveScaling"/> kind. It commutes with ReLU (and max pooling), so it
/// suits conv channels with batch norm folded into the weights.
/// </summary>
/// <remarks>
/// Scales are drawn log-uniformly in [<see cref="MinScale"/>, <see cref="MaxScale"/>): <c>2^(2u - 1)</c>
/// with <c>u</c> uniform in [0, 1). Float32 data is scaled in float64 and rounded once, so a round trip
/// is exact up to one rounding (a relative error below 2^-23).
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class ScaledPermutation : FeatureTransform
{
    /// <summary>Smallest scale factor (inclusive).</summary>
    public const double MinScale = 0.5;

    /// <summary>Largest scale factor (exclusive).</summary>
    public const double MaxScale = 2.0;

    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly int[] _source;

    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly double[] _scale;

    private ScaledPermutation(string name, EeTransformKind kind, int[] source, double[] scale)
        : base(name, kind, source.Length)
    {
        _source = source;
        _scale = scale;
    }

    /// <summary>A copy of the source indices (secret; tests only).</summary>
    internal int[] CopySourceIndices()
    {
        ThrowIfDisposed();
        return (int[])_source.Clone();
    }

    /// <summary>A copy of the scales (secret; tests only).</summary>
    internal double[] CopyScales()
    {
        ThrowIfDisposed();
        return (double[])_scale.Clone();
    }

    internal static ScaledPermutation CreateRandom(string name, EeTransformKind kind, int n, AesPrg prg)
    {
        int[] source;
        if (kind == EeTransformKind.ScaledPermutation)
        {
            source = EeSampling.FisherYates(n, prg);
        }
        else
        {
            source = SecretArray<int>(n);
            for (int i = 0; i < n; i++)
            {
                source[i] = i;
            }
        }

        double[] scale = SecretArray<double>(n);
        for (int i = 0; i < n; i++)
        {
            scale[i] = Math.Pow(2.0, (2.0 * prg.NextDouble()) - 1.0);
        }

        return new ScaledPermutation(name, kind, source, scale);
    }

    private protected override void WipeCore()
    {
        Array.Clear(_source);
        Array.Clear(_scale);
    }

    // D P:          Forward           y[i] = s[i] x[src[i]]      (gather, multiply)
    // (D P)^-1:     Inverse           y[src[i]] = x[i] / s[i]    (scatter, divide)
    // (D P)^T:      Transpose         y[src[i]] = s[i] x[i]      (scatter, multiply)
    // (D P)^-T:     InverseTranspose  y[i] = x[src[i]] / s[i]    (gather, divide)
    private protected override void RunCore<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int inner, TransformOp op)
    {
        bool scatter = op is TransformOp.Inverse or TransformOp.Transpose;
        bool divide = op is TransformOp.Inverse or TransformOp.InverseTranspose;
        T[]? copy = DetachIfOverlapping(ref x, y);
        try
        {
            int d = Dimension;
            int block = d * inner;
            for (int o = 0; o < outer; o++)
            {
                ReadOnlySpan<T> xs = x.Slice(o * block, block);
                Span<T> ys = y.Slice(o * block, block);
                for (int i = 0; i < d; i++)
                {
                    double s = _scale[i];
                    int from = (scatter ? i : _source[i]) * inner;
                    int to = (scatter ? _source[i] : i) * inner;
                    for (int c = 0; c < inner; c++)
                    {
                        double v = double.CreateTruncating(xs[from + c]);
                        ys[to + c] = T.CreateTruncating(divide ? v / s : v * s);
                    }
                }
            }
        }
        finally
        {
            Release(copy);
        }
    }

    private protected override void FiberCore(ReadOnlySpan<double> src, Span<double> dst, TransformOp op)
    {
        bool scatter = op is TransformOp.Inverse or TransformOp.Transpose;
        bool divide = op is TransformOp.Inverse or TransformOp.InverseTranspose;
        for (int i = 0; i < _source.Length; i++)
        {
            double v = src[scatter ? i : _source[i]];
            dst[scatter ? _source[i] : i] = divide ? v / _scale[i] : v * _scale[i];
        }
    }
}
