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
        builder.PiecewiseLinear(shape, NonLinearFunctions.ExpNegative(), label: $"{label}.exp");
        builder.PiecewiseLinear(rows, NonLinearFunctions.Reciprocal(0.5, k + 1, 64), coefficientBits: NonLinearFunctions.InverseCoefficientBits, label: $"{label}.reciprocal");
        builder.Multiply(shape, $"{label}.normalise");
        return builder.Truncate(shape, builder.FractionalBits, 40, $"{label}.truncate");
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
        builder.Truncate(rows, builder.FractionalBits, 64, $"{label}.mean");
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
        builder.Truncate(rows, 2 * builder.FractionalBits, 64, $"{label}.variance");
        builder.PiecewiseLinear(rows, NonLinearFunctions.Rsqrt(), coefficientBits: NonLinearFunctions.InverseCoefficientBits, label: $"{label}.rsqrt");
        builder.Multiply(shape, $"{label}.scale");
        return builder.Truncate(shape, builder.FractionalBits, 48, $"{label}.truncate");
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
