using HssEe.Ring;

namespace HssEe.Models.Engine;

/// <summary>
/// A linear layer <c>y = x W^T + b</c> with PyTorch layout <c>W [out, in]</c> (a convolution is one, on
/// im2col rows with <c>in = C_in * kh * kw</c>). Holds float32 weights and, for HSS-EE, their fixed-point
/// encoding (made once per fractional-bit count and cached).
/// </summary>
internal sealed class LinearLayer
{
    private readonly Lock _gate = new();
    private (int Bits, int InputBits, RingTensor Weight, RingTensor? Bias)? _encoded;

    public LinearLayer(string name, int outFeatures, int inFeatures, float[] weight, float[]? bias = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(outFeatures, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(inFeatures, 1);
        if (weight.Length != (long)outFeatures * inFeatures)
        {
            throw new ArgumentException($"Layer '{name}': weight has {weight.Length} elements, expected [{outFeatures}, {inFeatures}].", nameof(weight));
        }

        if (bias is not null && bias.Length != outFeatures)
        {
            throw new ArgumentException($"Layer '{name}': bias has {bias.Length} elements, expected {outFeatures}.", nameof(bias));
        }

        Name = name;
        Out = outFeatures;
        In = inFeatures;
        Weight = weight;
        Bias = bias;
    }

    public string Name { get; }

    public int Out { get; }

    public int In { get; }

    public float[] Weight { get; }

    public float[]? Bias { get; }

    /// <summary>A deep copy (the EE rewrite works on copies).</summary>
    public LinearLayer Clone() => new(Name, Out, In, (float[])Weight.Clone(), (float[]?)Bias?.Clone());

    /// <summary>Scales row <c>o</c> of W by <c>s[i]</c> along the input axis: <c>W[o, i] *= s[i]</c> (folds a norm gain).</summary>
    public void ScaleInputs(ReadOnlySpan<float> s)
    {
        if (s.Length != In)
        {
            throw new ArgumentException($"Layer '{Name}': gain length {s.Length} differs from its input size {In}.", nameof(s));
        }

        for (int o = 0; o < Out; o++)
        {
            Span<float> row = Weight.AsSpan(o * In, In);
            for (int i = 0; i < In; i++)
            {
                row[i] *= s[i];
            }
        }
    }

    /// <summary>The fixed-point weights at <paramref name="bits"/> and the bias at <c>bits + inputBits</c>.</summary>
    public (RingTensor Weight, RingTensor? Bias) Encoded(int bits, int inputBits)
    {
        lock (_gate)
        {
            if (_encoded is { } e && e.Bits == bits && e.InputBits == inputBits)
            {
                return (e.Weight, e.Bias);
            }

            var format = new FixedPointFormat(bits);
            RingTensor w = format.Encode(Weight, new TensorShape(Out, In));
            RingTensor? b = Bias is null ? null : new FixedPointFormat(bits + inputBits).Encode(Bias, new TensorShape(Out));
            _encoded = (bits, inputBits, w, b);
            return (w, b);
        }
    }

    public override string ToString() => $"Linear '{Name}' [{Out}, {In}]";
}
