using MathNet.Numerics;

namespace HssEe.Protocols;

/// <summary>
/// Spline specs (piecewise linear or quadratic) of the activation and normalisation functions, for
/// <see cref="PlanBuilder.Spline"/>. Each states its input range; outside it the spec
/// follows the stated tail. The measured errors of the two-party evaluation against float64
/// references are in docs/PROTOCOLS.md (and checked by tests).
/// </summary>
public static class NonLinearFunctions
{
    /// <summary>The float64 reference of GeLU (erf form): x/2 (1 + erf(x / sqrt 2)).</summary>
    /// <param name="x">Input.</param>
    /// <returns>GeLU(x).</returns>
    public static double GeluReference(double x) => 0.5 * x * (1 + SpecialFunctions.Erf(x / Math.Sqrt(2)));

    /// <summary>The float64 reference of the logistic sigmoid.</summary>
    /// <param name="x">Input.</param>
    /// <returns>1 / (1 + e^-x).</returns>
    public static double SigmoidReference(double x) => 1 / (1 + Math.Exp(-x));

    /// <summary>The float64 reference of SiLU: x sigmoid(x).</summary>
    /// <param name="x">Input.</param>
    /// <returns>x / (1 + e^-x).</returns>
    public static double SiluReference(double x) => x * SigmoidReference(x);

    /// <summary>GeLU (erf form): knots on [-6, 6]; 0 below, x above (|GeLU(x) - tail| &lt; 6e-9 there).</summary>
    /// <param name="intervals">Number of pieces on [-6, 6].</param>
    /// <param name="degree">1 (linear pieces) or 2 (quadratic pieces: far fewer intervals for the same error).</param>
    /// <returns>The spec.</returns>
    public static SplineSpec Gelu(int intervals = 64, int degree = 1) => Fit(degree, GeluReference, SplineSpec.UniformKnots(-6, 6, intervals), (0, 0), (1, 0));

    /// <summary>SiLU x sigmoid(x): knots on [-12, 12]; 0 below (|SiLU| &lt; 7.4e-5 there), x above.</summary>
    /// <param name="intervals">Number of pieces on [-12, 12].</param>
    /// <param name="degree">1 (linear pieces) or 2 (quadratic pieces).</param>
    /// <returns>The spec.</returns>
    public static SplineSpec Silu(int intervals = 96, int degree = 1) => Fit(degree, SiluReference, SplineSpec.UniformKnots(-12, 12, intervals), (0, 0), (1, 0));

    /// <summary>Sigmoid: knots on [-12, 12]; 0 below, 1 above (error &lt; 6.2e-6 there).</summary>
    /// <param name="intervals">Number of pieces on [-12, 12].</param>
    /// <param name="degree">1 (linear pieces) or 2 (quadratic pieces).</param>
    /// <returns>The spec.</returns>
    public static SplineSpec Sigmoid(int intervals = 64, int degree = 1) => Fit(degree, SigmoidReference, SplineSpec.UniformKnots(-12, 12, intervals), (0, 0), (0, 1));

    /// <summary>Tanh: knots on [-6, 6]; -1 below, 1 above (error &lt; 1.3e-5 there).</summary>
    /// <param name="intervals">Number of pieces on [-6, 6].</param>
    /// <param name="degree">1 (linear pieces) or 2 (quadratic pieces).</param>
    /// <returns>The spec.</returns>
    public static SplineSpec Tanh(int intervals = 64, int degree = 1) => Fit(degree, Math.Tanh, SplineSpec.UniformKnots(-6, 6, intervals), (0, -1), (0, 1));

    /// <summary>e^x for x &lt;= 0 (softmax after max subtraction): knots on [-16, 0]; 0 below (error &lt; 1.2e-7), 1 at and above 0.</summary>
    /// <param name="intervals">Number of pieces on [-16, 0].</param>
    /// <param name="degree">1 (linear pieces) or 2 (quadratic pieces).</param>
    /// <returns>The spec.</returns>
    public static SplineSpec ExpNegative(int intervals = 128, int degree = 1) => Fit(degree, Math.Exp, SplineSpec.UniformKnots(-16, 0, intervals), (0, 0), (0, 1));

    /// <summary>Coefficient fractional bits recommended for the reciprocal and rsqrt specs (their slopes are tiny at large x).</summary>
    public const int InverseCoefficientBits = 26;

    /// <summary>1/x on [1/16, 64] (geometric knots); clamped to 16 below and 1/64 above (outside the domain). Use <see cref="InverseCoefficientBits"/>.</summary>
    /// <param name="intervals">Number of linear pieces.</param>
    /// <returns>The spec.</returns>
    public static SplineSpec Reciprocal(int intervals = 64) => SplineSpec.Fit(x => 1 / x, SplineSpec.GeometricKnots(1.0 / 16, 64, intervals), (0, 16), (0, 1.0 / 64));

    /// <summary>1/x on [<paramref name="lo"/>, <paramref name="hi"/>] (geometric knots), clamped outside (softmax denominators use [1/2, k + 1]).</summary>
    /// <param name="lo">Smallest input, positive.</param>
    /// <param name="hi">Largest input.</param>
    /// <param name="intervals">Number of linear pieces.</param>
    /// <returns>The spec.</returns>
    public static SplineSpec Reciprocal(double lo, double hi, int intervals) => SplineSpec.Fit(x => 1 / x, SplineSpec.GeometricKnots(lo, hi, intervals), (0, 1 / lo), (0, 1 / hi));

    /// <summary>1/sqrt(x) on [1/64, 1024] (geometric knots); clamped to 8 below and 1/32 above (outside the domain). Use <see cref="InverseCoefficientBits"/>.</summary>
    /// <param name="intervals">Number of linear pieces.</param>
    /// <returns>The spec.</returns>
    public static SplineSpec Rsqrt(int intervals = 64) => SplineSpec.Fit(x => 1 / Math.Sqrt(x), SplineSpec.GeometricKnots(1.0 / 64, 1024, intervals), (0, 8), (0, 1.0 / 32));

    private static SplineSpec Fit(int degree, Func<double, double> function, double[] knots, (double, double) left, (double, double) right) => degree switch
    {
        1 => SplineSpec.Fit(function, knots, left, right),
        2 => SplineSpec.FitQuadratic(function, knots, left, right),
        _ => throw new ArgumentOutOfRangeException(nameof(degree), degree, "Spline pieces have degree 1 or 2."),
    };
}
