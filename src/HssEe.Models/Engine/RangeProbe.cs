using HssEe.Ring;

namespace HssEe.Models.Engine;

/// <summary>
/// A float engine that records the ranges HSS-EE depends on while computing exactly what
/// <see cref="PlainEngine"/> computes: the largest magnitude of any value, of softmax inputs (must stay
/// below 32), of spline inputs, and the mean squares seen by RMS norms (the rsqrt spline covers
/// [1/64, 1024]). Run a model on it with representative inputs to check that a fixed-point run fits.
/// </summary>
internal sealed class RangeProbe : Engine<FloatTensor>
{
    private readonly PlainEngine _e = new();

    public double MaxAbs { get; private set; }

    public double MaxSoftmaxInput { get; private set; }

    public double MaxSplineInput { get; private set; }

    public double MinMeanSquare { get; private set; } = double.PositiveInfinity;

    public double MaxMeanSquare { get; private set; }

    /// <summary>The smallest value read by a padded gather (max-pool windows): must stay above the pad value.</summary>
    public double MinPoolInput { get; private set; } = double.PositiveInfinity;

    public override string ToString() =>
        $"max |value| {MaxAbs:G4}, max |softmax input| {MaxSoftmaxInput:G4} (limit 32), max |spline input| {MaxSplineInput:G4}, norm mean squares [{MinMeanSquare:G4}, {MaxMeanSquare:G4}] (limit [1/64, 1024])";

    private FloatTensor See(FloatTensor t)
    {
        foreach (float v in t.Data)
        {
            MaxAbs = Math.Max(MaxAbs, Math.Abs(v));
        }

        return t;
    }

    private static double AbsMax(FloatTensor t) => t.Data.Length == 0 ? 0 : t.Data.Max(v => Math.Abs(v));

    private async ValueTask<FloatTensor> See(ValueTask<FloatTensor> t) => See(await t.ConfigureAwait(false));

    public override TensorShape ShapeOf(FloatTensor x) => x.Shape;

    public override FloatTensor Reshape(FloatTensor x, TensorShape shape) => _e.Reshape(x, shape);

    public override ValueTask<FloatTensor> LinearAsync(FloatTensor x, LinearLayer layer) => See(_e.LinearAsync(x, layer));

    public override FloatTensor Add(FloatTensor a, FloatTensor b) => See(_e.Add(a, b));

    public override FloatTensor AddPublic(FloatTensor x, float[] constants) => See(_e.AddPublic(x, constants));

    public override FloatTensor MultiplyPublic(FloatTensor x, float[] constants) => See(_e.MultiplyPublic(x, constants));

    public override FloatTensor Scale(FloatTensor x, double factor) => See(_e.Scale(x, factor));

    public override FloatTensor Gather(FloatTensor x, int[] index, TensorShape shape, float pad = 0)
    {
        if (pad != 0)
        {
            foreach (int j in index)
            {
                if (j >= 0)
                {
                    MinPoolInput = Math.Min(MinPoolInput, x.Data[j]);
                }
            }
        }

        return _e.Gather(x, index, shape, pad);
    }

    public override FloatTensor Concat(FloatTensor a, FloatTensor b, TensorShape shape) => _e.Concat(a, b, shape);

    public override FloatTensor SumLastAxis(FloatTensor x, TensorShape shape) => See(_e.SumLastAxis(x, shape));

    public override ValueTask<FloatTensor> ReluAsync(FloatTensor x, string label) => See(_e.ReluAsync(x, label));

    public override ValueTask<FloatTensor> SiluAsync(FloatTensor x, string label)
    {
        MaxSplineInput = Math.Max(MaxSplineInput, AbsMax(x));
        return See(_e.SiluAsync(x, label));
    }

    public override ValueTask<FloatTensor> GeluAsync(FloatTensor x, bool tanhApproximation, string label)
    {
        MaxSplineInput = Math.Max(MaxSplineInput, AbsMax(x));
        return See(_e.GeluAsync(x, tanhApproximation, label));
    }

    public override ValueTask<FloatTensor> MultiplyAsync(FloatTensor a, FloatTensor b, string label) => See(_e.MultiplyAsync(a, b, label));

    public override ValueTask<FloatTensor> BatchMatMulAsync(FloatTensor a, FloatTensor b, string label) => See(_e.BatchMatMulAsync(a, b, label));

    public override ValueTask<FloatTensor> SoftmaxAsync(FloatTensor x, bool causal, string label)
    {
        MaxSoftmaxInput = Math.Max(MaxSoftmaxInput, AbsMax(x));
        return See(_e.SoftmaxAsync(x, causal, label));
    }

    public override ValueTask<FloatTensor> RmsNormAsync(FloatTensor x, double epsilon, string label)
    {
        int d = x.Shape[-1];
        for (int r = 0; r < x.Data.Length / d; r++)
        {
            double ms = 0;
            foreach (float v in x.Data.AsSpan(r * d, d))
            {
                ms += (double)v * v;
            }

            ms /= d;
            MinMeanSquare = Math.Min(MinMeanSquare, ms);
            MaxMeanSquare = Math.Max(MaxMeanSquare, ms);
        }

        return See(_e.RmsNormAsync(x, epsilon, label));
    }

    public override ValueTask<FloatTensor> RescaleAsync(FloatTensor x, string label) => See(_e.RescaleAsync(x, label));

    public override ValueTask<FloatTensor> MaxLastAxisAsync(FloatTensor x, TensorShape shape, string label) => See(_e.MaxLastAxisAsync(x, shape, label));
}
