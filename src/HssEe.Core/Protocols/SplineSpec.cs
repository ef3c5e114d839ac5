using System.Collections.Immutable;

namespace HssEe.Protocols;

/// <summary>
/// A declarative description of a piecewise polynomial (degree 1 or 2) for the spline gate: boundaries
/// b_1 &lt; ... &lt; b_(K-1) split the real line into K pieces (piece 0 is x &lt; b_1, piece K-1 is
/// x &gt;= b_(K-1)), and piece i computes
/// quadratic_i (x - center_i)^2 + slope_i (x - center_i) + intercept_i (center and quadratic are 0 for
/// piecewise-linear specs). The gate compiles it to one DCF key per element whose K-1 evaluations give
/// every boundary comparison at once.
/// </summary>
public sealed class SplineSpec
{
    /// <summary>Creates a piecewise-linear spec from boundaries and per-piece (slope, intercept) pairs.</summary>
    /// <param name="boundaries">K-1 strictly increasing finite boundaries.</param>
    /// <param name="slopes">K slopes.</param>
    /// <param name="intercepts">K intercepts.</param>
    public SplineSpec(IReadOnlyList<double> boundaries, IReadOnlyList<double> slopes, IReadOnlyList<double> intercepts)
        : this(boundaries, new double[slopes?.Count ?? 0], new double[slopes?.Count ?? 0], slopes!, intercepts)
    {
    }

    /// <summary>Creates a piecewise-quadratic spec: piece i computes q_i (x - m_i)^2 + s_i (x - m_i) + c_i.</summary>
    /// <param name="boundaries">K-1 strictly increasing finite boundaries.</param>
    /// <param name="centers">K centers m_i (the expansion point of each piece, usually its midpoint).</param>
    /// <param name="quadratics">K quadratic coefficients q_i.</param>
    /// <param name="slopes">K slopes s_i at the centers.</param>
    /// <param name="intercepts">K values c_i at the centers.</param>
    public SplineSpec(IReadOnlyList<double> boundaries, IReadOnlyList<double> centers, IReadOnlyList<double> quadratics, IReadOnlyList<double> slopes, IReadOnlyList<double> intercepts)
    {
        ArgumentNullException.ThrowIfNull(boundaries);
        ArgumentNullException.ThrowIfNull(centers);
        ArgumentNullException.ThrowIfNull(quadratics);
        ArgumentNullException.ThrowIfNull(slopes);
        ArgumentNullException.ThrowIfNull(intercepts);
        int pieces = boundaries.Count + 1;
        if (slopes.Count != pieces || intercepts.Count != pieces || centers.Count != pieces || quadratics.Count != pieces)
        {
            throw new ArgumentException($"{boundaries.Count} boundaries need {pieces} centers, quadratics, slopes and intercepts; got {centers.Count}, {quadratics.Count}, {slopes.Count} and {intercepts.Count}.", nameof(slopes));
        }

        for (int i = 0; i < boundaries.Count; i++)
        {
            if (!double.IsFinite(boundaries[i]) || (i > 0 && boundaries[i] <= boundaries[i - 1]))
            {
                throw new ArgumentException($"Boundaries must be finite and strictly increasing; boundary {i} is {boundaries[i]}.", nameof(boundaries));
            }
        }

        if (slopes.Concat(intercepts).Concat(centers).Concat(quadratics).Any(v => !double.IsFinite(v)))
        {
            throw new ArgumentException("Centers, quadratics, slopes and intercepts must be finite.", nameof(slopes));
        }

        Boundaries = [.. boundaries];
        Centers = [.. centers];
        Quadratics = [.. quadratics];
        Slopes = [.. slopes];
        Intercepts = [.. intercepts];
    }

    /// <summary>The K-1 boundaries.</summary>
    public ImmutableArray<double> Boundaries { get; }

    /// <summary>The K centers (all 0 for a spec made piecewise-linear).</summary>
    public ImmutableArray<double> Centers { get; }

    /// <summary>The K quadratic coefficients (all 0 for a piecewise-linear spec).</summary>
    public ImmutableArray<double> Quadratics { get; }

    /// <summary>The K slopes (at the centers).</summary>
    public ImmutableArray<double> Slopes { get; }

    /// <summary>The K intercepts (values at the centers).</summary>
    public ImmutableArray<double> Intercepts { get; }

    /// <summary>Number of pieces K.</summary>
    public int Pieces => Slopes.Length;

    /// <summary>2 if any piece has a quadratic term, else 1.</summary>
    public int Degree => Quadratics.Any(q => q != 0) ? 2 : 1;

    /// <summary>Evaluates the spec in float64 (the function the gate computes, before fixed-point rounding).</summary>
    /// <param name="x">Input.</param>
    /// <returns>The polynomial of the piece containing x, at x.</returns>
    public double Evaluate(double x)
    {
        int piece = 0;
        while (piece < Boundaries.Length && x >= Boundaries[piece])
        {
            piece++;
        }

        double d = x - Centers[piece];
        return (Quadratics[piece] * d * d) + (Slopes[piece] * d) + Intercepts[piece];
    }

    /// <summary>
    /// Fits a piecewise-linear approximation of <paramref name="function"/> on the given knots: on
    /// each interval the chord between the knots, shifted to balance its largest positive and
    /// negative deviation (measured on a dense grid); outside the knots, the given linear tails.
    /// </summary>
    /// <param name="function">The float64 reference function.</param>
    /// <param name="knots">At least two strictly increasing knots; they become the inner boundaries.</param>
    /// <param name="leftTail">(slope, intercept) used below the first knot.</param>
    /// <param name="rightTail">(slope, intercept) used at or above the last knot.</param>
    /// <returns>The spec.</returns>
    public static SplineSpec Fit(Func<double, double> function, IReadOnlyList<double> knots, (double Slope, double Intercept) leftTail, (double Slope, double Intercept) rightTail)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(knots);
        if (knots.Count < 2)
        {
            throw new ArgumentException("At least two knots are needed.", nameof(knots));
        }

        var slopes = new List<double> { leftTail.Slope };
        var intercepts = new List<double> { leftTail.Intercept };
        for (int i = 0; i + 1 < knots.Count; i++)
        {
            double x0 = knots[i], x1 = knots[i + 1];
            double y0 = function(x0), y1 = function(x1);
            double slope = (y1 - y0) / (x1 - x0);
            double intercept = y0 - (slope * x0);
            double lo = 0, hi = 0;
            const int Grid = 64;
            for (int g = 0; g <= Grid; g++)
            {
                double x = x0 + ((x1 - x0) * g / Grid);
                double d = function(x) - ((slope * x) + intercept);
                lo = Math.Min(lo, d);
                hi = Math.Max(hi, d);
            }

            slopes.Add(slope);
            intercepts.Add(intercept + ((lo + hi) / 2));
        }

        slopes.Add(rightTail.Slope);
        intercepts.Add(rightTail.Intercept);
        return new SplineSpec(knots, slopes, intercepts);
    }

    /// <summary>
    /// Fits a piecewise-quadratic approximation of <paramref name="function"/> on the given knots: on each
    /// interval the parabola through both knots and the midpoint, expanded around the midpoint, its value
    /// shifted to balance its largest positive and negative deviation (measured on a dense grid); outside
    /// the knots, the given linear tails. The error falls with the cube of the interval width (the linear
    /// fit's with the square), so far fewer pieces, and so fewer comparisons, reach the same accuracy.
    /// </summary>
    /// <param name="function">The float64 reference function.</param>
    /// <param name="knots">At least two strictly increasing knots; they become the inner boundaries.</param>
    /// <param name="leftTail">(slope, intercept) used below the first knot.</param>
    /// <param name="rightTail">(slope, intercept) used at or above the last knot.</param>
    /// <returns>The spec.</returns>
    public static SplineSpec FitQuadratic(Func<double, double> function, IReadOnlyList<double> knots, (double Slope, double Intercept) leftTail, (double Slope, double Intercept) rightTail)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(knots);
        if (knots.Count < 2)
        {
            throw new ArgumentException("At least two knots are needed.", nameof(knots));
        }

        var centers = new List<double> { 0 };
        var quadratics = new List<double> { 0 };
        var slopes = new List<double> { leftTail.Slope };
        var intercepts = new List<double> { leftTail.Intercept };
        for (int i = 0; i + 1 < knots.Count; i++)
        {
            double x0 = knots[i], x1 = knots[i + 1], m = (x0 + x1) / 2, h = (x1 - x0) / 2;
            double f0 = function(x0), fm = function(m), f1 = function(x1);
            double slope = (f1 - f0) / (2 * h);
            double quadratic = (f1 - (2 * fm) + f0) / (2 * h * h);
            double lo = 0, hi = 0;
            const int Grid = 64;
            for (int g = 0; g <= Grid; g++)
            {
                double d = -h + (2 * h * g / Grid);
                double e = function(m + d) - ((quadratic * d * d) + (slope * d) + fm);
                lo = Math.Min(lo, e);
                hi = Math.Max(hi, e);
            }

            centers.Add(m);
            quadratics.Add(quadratic);
            slopes.Add(slope);
            intercepts.Add(fm + ((lo + hi) / 2));
        }

        centers.Add(0);
        quadratics.Add(0);
        slopes.Add(rightTail.Slope);
        intercepts.Add(rightTail.Intercept);
        return new SplineSpec(knots, centers, quadratics, slopes, intercepts);
    }

    /// <summary>Uniformly spaced knots from <paramref name="lo"/> to <paramref name="hi"/>.</summary>
    /// <param name="lo">First knot.</param>
    /// <param name="hi">Last knot.</param>
    /// <param name="intervals">Number of intervals (knots - 1), at least 1.</param>
    /// <returns>The knots.</returns>
    public static double[] UniformKnots(double lo, double hi, int intervals)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(intervals, 1);
        return [.. Enumerable.Range(0, intervals + 1).Select(i => lo + ((hi - lo) * i / intervals))];
    }

    /// <summary>Geometrically spaced knots from <paramref name="lo"/> to <paramref name="hi"/> (both positive), for 1/x and 1/sqrt(x).</summary>
    /// <param name="lo">First knot, positive.</param>
    /// <param name="hi">Last knot.</param>
    /// <param name="intervals">Number of intervals, at least 1.</param>
    /// <returns>The knots.</returns>
    public static double[] GeometricKnots(double lo, double hi, int intervals)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(intervals, 1);
        if (!(lo > 0 && hi > lo))
        {
            throw new ArgumentException("Geometric knots need 0 < lo < hi.", nameof(lo));
        }

        return [.. Enumerable.Range(0, intervals + 1).Select(i => lo * Math.Pow(hi / lo, i / (double)intervals))];
    }
}
