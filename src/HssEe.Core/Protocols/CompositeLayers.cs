using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>
/// Composite layers (softmax, LayerNorm, RMSNorm) built from the gates: each <c>PlanBuilder</c>
/// method adds the steps, the matching <see cref="PartySession"/> method runs them. Gains and biases
/// of the norms are not applied here: as equivariant encryption requires, they are folded into the
/// next linear layer. Measured errors are in docs/PROTOCOLS.md.
/// </summary>
public static class CompositeLayers
{
    /// <summary>Fractional bits of public constants such as 1/d and 1/k^2 (f bits would make 1/768 six percent off).</summary>
    public const int ConstantBits = 24;

    /// <summary>
    /// Pieces of the per-row splines (the softmax reciprocal, the norms' rsqrt). They run once per row, so
    /// a fine partition costs little key material and keeps these scale factors, which multiply whole
    /// rows, within about 0.1% (measured errors in docs/PROTOCOLS.md).
    /// </summary>
    public const int RowSplineIntervals = 256;

    /// <summary>
    /// Extra fractional bits of the per-row scale factors (1/sum in softmax, 1/sqrt(mean square) in the
    /// norms): they are produced at f + 12 bits, because at f bits a factor such as 1/32 would keep only
    /// 7 significant bits (0.8%); the product with the row is truncated by f + 12 in one step.
    /// </summary>
    public const int RowScaleExtraBits = 12;

    /// <summary>How far below the valid scores the causal mask pushes masked scores (in real units).</summary>
    public const double CausalMaskOffset = 64;

    /// <summary>
    /// Adds a softmax along the last axis of <paramref name="shape"/> ([..., q, k] when causal: key j is
    /// masked for query i when j &gt; i + k - q). Steps: max tree (ceil(log2 k) rounds), exp spline on
    /// x - max (3), reciprocal spline of the row sums on [1/2, k + 1] (3), product (1), truncation (1).
    /// Scores must satisfy |x| &lt; 32 so that masked scores never win the maximum.
    /// </summary>
    /// <param name="builder">The plan builder.</param>
    /// <param name="shape">Scores shape [..., k] (rank at least 2 when causal).</param>
    /// <param name="causal">Apply the causal mask.</param>
    /// <param name="label">Label prefix.</param>
    /// <returns>The builder.</returns>
    public static PlanBuilder Softmax(this PlanBuilder builder, TensorShape shape, bool causal = false, string label = "softmax")
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (causal && shape.Rank < 2)
        {
            throw new ArgumentException($"A causal softmax needs scores of shape [..., q, k]; got {shape}.", nameof(shape));
        }

        int k = shape[-1];
        var rows = new TensorShape(shape.ElementCount / k);
        builder.MaxAlongLastAxis(shape, 32, label);
        builder.Spline(shape, NonLinearFunctions.ExpNegative(64, 2), label: $"{label}.exp");
        builder.Spline(rows, NonLinearFunctions.Reciprocal(0.5, k + 1, RowSplineIntervals), coefficientBits: NonLinearFunctions.InverseCoefficientBits, label: $"{label}.reciprocal", extraOutputBits: RowScaleExtraBits);
        builder.Multiply(shape, $"{label}.normalise");
        return builder.Truncate(shape, builder.FractionalBits + RowScaleExtraBits, 40 + RowScaleExtraBits, $"{label}.truncate");
    }

    /// <summary>
    /// Adds a LayerNorm over the last axis (without gain and bias): mean (1 round), squares (1),
    /// variance (1), rsqrt spline on [1/64, 1024] (3), product (1), truncation (1).
    /// </summary>
    /// <param name="builder">The plan builder.</param>
    /// <param name="shape">Input shape [..., d].</param>
    /// <param name="label">Label prefix.</param>
    /// <returns>The builder.</returns>
    public static PlanBuilder LayerNorm(this PlanBuilder builder, TensorShape shape, string label = "layernorm")
    {
        ArgumentNullException.ThrowIfNull(builder);
        var rows = new TensorShape(shape.ElementCount / shape[-1]);
        builder.Truncate(rows, ConstantBits, 64, $"{label}.mean");
        return AddNormTail(builder, shape, rows, label);
    }

    /// <summary>
    /// Adds an RMSNorm over the last axis (without gain): squares (1 round), mean square (1),
    /// rsqrt spline on [1/64, 1024] (3), product (1), truncation (1).
    /// </summary>
    /// <param name="builder">The plan builder.</param>
    /// <param name="shape">Input shape [..., d].</param>
    /// <param name="label">Label prefix.</param>
    /// <returns>The builder.</returns>
    public static PlanBuilder RmsNorm(this PlanBuilder builder, TensorShape shape, string label = "rmsnorm")
    {
        ArgumentNullException.ThrowIfNull(builder);
        return AddNormTail(builder, shape, new TensorShape(shape.ElementCount / shape[-1]), label);
    }

    private static PlanBuilder AddNormTail(PlanBuilder builder, TensorShape shape, TensorShape rows, string label)
    {
        builder.Square(shape, $"{label}.square");
        builder.Truncate(rows, builder.FractionalBits + ConstantBits, 64, $"{label}.variance");
        builder.Spline(rows, NonLinearFunctions.Rsqrt(RowSplineIntervals), coefficientBits: NonLinearFunctions.InverseCoefficientBits, label: $"{label}.rsqrt", extraOutputBits: RowScaleExtraBits);
        builder.Multiply(shape, $"{label}.scale");
        return builder.Truncate(shape, builder.FractionalBits + RowScaleExtraBits, 48 + RowScaleExtraBits, $"{label}.truncate");
    }

    /// <summary>Value given to padded positions of a max pool (in real units): inputs must stay above it.</summary>
    public const double MaxPoolPadValue = -65536;

    /// <summary>
    /// Adds a 2-D max pool over [C, H, W] (kernel k x k, stride s, zero-based padding p filled with
    /// <see cref="MaxPoolPadValue"/>): windows are gathered locally, then a ReLU tree finds each
    /// window's maximum in ceil(log2 k^2) rounds. Exact.
    /// </summary>
    /// <param name="builder">The plan builder.</param>
    /// <param name="shape">Input shape [C, H, W].</param>
    /// <param name="kernel">Window size k.</param>
    /// <param name="stride">Stride s.</param>
    /// <param name="padding">Padding p on every side.</param>
    /// <param name="label">Label prefix.</param>
    /// <returns>The builder.</returns>
    public static PlanBuilder MaxPool2d(this PlanBuilder builder, TensorShape shape, int kernel, int stride, int padding = 0, string label = "maxpool")
    {
        ArgumentNullException.ThrowIfNull(builder);
        (int c, int oh, int ow) = PoolOutput(shape, kernel, stride, padding);
        return builder.MaxAlongLastAxis(new TensorShape(c * oh * ow, kernel * kernel), 32, label);
    }

    /// <summary>
    /// Adds a 2-D average pool over [C, H, W] without padding (kernel k, stride s): local window sums
    /// times the public 1/k^2 (at <see cref="ConstantBits"/> bits), then one rounding truncation; outputs
    /// must stay below 2^(47 - f - 24) = 2048 in magnitude at f = 12. With k = H = W it is the global average pool.
    /// </summary>
    /// <param name="builder">The plan builder.</param>
    /// <param name="shape">Input shape [C, H, W].</param>
    /// <param name="kernel">Window size k.</param>
    /// <param name="stride">Stride s.</param>
    /// <param name="label">Label prefix.</param>
    /// <returns>The builder.</returns>
    public static PlanBuilder AvgPool2d(this PlanBuilder builder, TensorShape shape, int kernel, int stride, string label = "avgpool")
    {
        ArgumentNullException.ThrowIfNull(builder);
        (int c, int oh, int ow) = PoolOutput(shape, kernel, stride, 0);
        return builder.Truncate(new TensorShape(c, oh, ow), ConstantBits, 48, $"{label}.truncate");
    }

    internal static (int C, int OutH, int OutW) PoolOutput(TensorShape shape, int kernel, int stride, int padding)
    {
        if (shape.Rank != 3)
        {
            throw new ArgumentException($"2-D pooling takes [C, H, W]; got {shape}.", nameof(shape));
        }

        if (kernel < 1 || stride < 1 || padding < 0 || padding >= kernel)
        {
            throw new ArgumentException($"Invalid pooling: kernel {kernel}, stride {stride}, padding {padding}.", nameof(kernel));
        }

        int oh = ((shape[1] + (2 * padding) - kernel) / stride) + 1, ow = ((shape[2] + (2 * padding) - kernel) / stride) + 1;
        if (oh < 1 || ow < 1)
        {
            throw new ArgumentException($"Kernel {kernel} does not fit input {shape} with padding {padding}.", nameof(kernel));
        }

        return (shape[0], oh, ow);
    }

    /// <summary>Gathers k x k windows into rows [C * OH * OW, k * k]; padded positions get <paramref name="pad"/> on party A, 0 on B.</summary>
    internal static Share GatherWindows(Share x, int kernel, int stride, int padding, ulong pad)
    {
        (int c, int oh, int ow) = PoolOutput(x.Shape, kernel, stride, padding);
        int h = x.Shape[1], w = x.Shape[2];
        var t = new RingTensor(new TensorShape(c * oh * ow, kernel * kernel));
        ReadOnlySpan<ulong> v = x.Value.Span;
        Span<ulong> o = t.Span;
        ulong padValue = x.Party == Party.A ? pad : 0;
        int idx = 0;
        for (int ch = 0; ch < c; ch++)
        {
            for (int i = 0; i < oh; i++)
            {
                for (int j = 0; j < ow; j++)
                {
                    for (int di = 0; di < kernel; di++)
                    {
                        for (int dj = 0; dj < kernel; dj++)
                        {
                            int yy = (i * stride) + di - padding, xx = (j * stride) + dj - padding;
                            o[idx++] = yy >= 0 && yy < h && xx >= 0 && xx < w ? v[(((ch * h) + yy) * w) + xx] : padValue;
                        }
                    }
                }
            }
        }

        return new Share(x.Party, t, x.FractionalBits);
    }

    internal static Share RowSums(Share x)
    {
        int k = x.Shape[-1], rows = x.Shape.ElementCount / k;
        var sums = new RingTensor(new TensorShape(rows));
        ReadOnlySpan<ulong> v = x.Value.Span;
        for (int r = 0; r < rows; r++)
        {
            ulong s = 0;
            for (int j = 0; j < k; j++)
            {
                s += v[(r * k) + j];
            }

            sums.Span[r] = s;
        }

        return new Share(x.Party, sums, x.FractionalBits);
    }

    internal static Share BroadcastRows(Share perRow, TensorShape shape)
    {
        int k = shape[-1], rows = shape.ElementCount / k;
        var t = new RingTensor(shape);
        ReadOnlySpan<ulong> v = perRow.Value.Span;
        for (int r = 0; r < rows; r++)
        {
            t.Span.Slice(r * k, k).Fill(v[r]);
        }

        return new Share(perRow.Party, t, perRow.FractionalBits);
    }
}
