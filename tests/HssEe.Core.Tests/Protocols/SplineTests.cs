using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Core.Tests.Protocols;

public class SplineTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static async Task<(double MaxAbs, double MaxRel, IReadOnlyList<StepCost> Costs)> Measure(SplineSpec spec, Func<double, double> reference, double lo, double hi, int points, int coefficientBits = 16)
    {
        var q = new FixedPointFormat(12);
        var shape = new TensorShape(points);
        var x = new float[points];
        for (int i = 0; i < points; i++)
        {
            x[i] = (float)(lo + ((hi - lo) * i / (points - 1)));
        }

        var xs = ProtocolHarness.Shared(x, shape, q);
        Plan plan = new PlanBuilder(12).Spline(shape, spec, coefficientBits: coefficientBits, label: "f").Build();
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.SplineAsync(xs(s.Party), ct));
        Assert.Equal(12, run.A.FractionalBits);
        Assert.Equal(spec.Degree == 2 ? 5 : 4, run.Cost.Rounds); // select, [square,] product, two-round truncation
        float[] y = SecretSharing.ReconstructToSingle(run.A, run.B);
        double maxAbs = 0, maxRel = 0;
        for (int i = 0; i < points; i++)
        {
            double xe = q.Decode(q.Encode(x[i])); // the encoded input the gate actually saw
            double expected = reference(xe);
            double err = Math.Abs(y[i] - expected);
            maxAbs = Math.Max(maxAbs, err);
            maxRel = Math.Max(maxRel, err / Math.Max(Math.Abs(expected), 1e-3));
        }

        return (maxAbs, maxRel, costs);
    }

    [Fact]
    public async Task Spline_gate_equals_the_spec_up_to_fixed_point_rounding()
    {
        // A spec with a jump and negative slopes; the gate must agree with the spec's own float64 value.
        var spec = new SplineSpec([-2.0, 0.5, 3.0], [0.0, -1.5, 2.0, 0.25], [1.0, -2.0, 0.0, 4.0]);
        var (maxAbs, _, costs) = await Measure(spec, spec.Evaluate, -8, 8, 2001);
        // Slope rounding 2^-17 * |x| <= 6e-5, intercept rounding, truncation floor 2^-12: about 4e-4.
        Assert.True(maxAbs < 5e-4, $"spline gate deviates from its spec by {maxAbs}");
        Assert.Equal(3, costs.Count);
    }

    [Fact]
    public async Task Quadratic_spline_gate_equals_the_spec_up_to_fixed_point_rounding()
    {
        // Quadratic pieces around their centers, with jumps and negative curvature, linear tails.
        var spec = new SplineSpec([-2.0, 0.5, 3.0], [0.0, -0.75, 1.75, 0.0], [0.0, -0.8, 1.25, 0.0], [0.5, -1.5, 2.0, 0.25], [1.0, -2.0, 0.0, 4.0]);
        Assert.Equal(2, spec.Degree);
        var (maxAbs, _, costs) = await Measure(spec, spec.Evaluate, -8, 8, 2001);
        // Coefficient rounding (q at 2^-17 times d^2 <= 1.6: 1.2e-5), constant rounding, truncation to nearest 2^-13.
        Assert.True(maxAbs < 3e-4, $"quadratic spline gate deviates from its spec by {maxAbs}");
        Assert.Equal(4, costs.Count);
    }

    public static TheoryData<string, int, double, double, double> QuadraticFunctions => new()
    {
        // name, pieces (half the linear defaults), lo, hi, max abs error allowed
        { "gelu", 32, -10, 10, 1e-3 },
        { "silu", 48, -16, 16, 1e-3 },
        { "sigmoid", 32, -16, 16, 1e-3 },
        { "tanh", 32, -8, 8, 1e-3 },
        { "exp", 64, -20, 0, 1e-3 },
    };

    [Theory]
    [MemberData(nameof(QuadraticFunctions))]
    public async Task Quadratic_pieces_beat_the_linear_accuracy_with_half_the_pieces(string name, int pieces, double lo, double hi, double bound)
    {
        (SplineSpec spec, Func<double, double> reference) = name switch
        {
            "gelu" => (NonLinearFunctions.Gelu(pieces, 2), (Func<double, double>)NonLinearFunctions.GeluReference),
            "silu" => (NonLinearFunctions.Silu(pieces, 2), NonLinearFunctions.SiluReference),
            "sigmoid" => (NonLinearFunctions.Sigmoid(pieces, 2), NonLinearFunctions.SigmoidReference),
            "tanh" => (NonLinearFunctions.Tanh(pieces, 2), Math.Tanh),
            _ => (NonLinearFunctions.ExpNegative(pieces, 2), Math.Exp),
        };
        var (maxAbs, _, _) = await Measure(spec, reference, lo, hi, 4001);
        output.WriteLine($"{name}, {pieces} quadratic pieces: max abs error {maxAbs:E3}");
        Assert.True(maxAbs <= bound, $"{name} ({pieces} quadratic pieces): max abs error {maxAbs:E3} > {bound:E1}");
    }

    public static TheoryData<string, double, double, double> Functions => new()
    {
        // name, lo, hi, max abs error allowed (measured errors are documented in docs/PROTOCOLS.md)
        { "gelu", -10, 10, 3e-3 },
        { "silu", -16, 16, 3e-3 },
        { "sigmoid", -16, 16, 1.5e-3 },
        { "tanh", -8, 8, 3e-3 },
        { "exp", -20, 0, 1.5e-3 },
    };

    [Theory]
    [MemberData(nameof(Functions))]
    public async Task Activation_errors_against_float64_stay_within_the_documented_bound(string name, double lo, double hi, double bound)
    {
        (SplineSpec spec, Func<double, double> reference) = name switch
        {
            "gelu" => (NonLinearFunctions.Gelu(), (Func<double, double>)NonLinearFunctions.GeluReference),
            "silu" => (NonLinearFunctions.Silu(), x => x * NonLinearFunctions.SigmoidReference(x)),
            "sigmoid" => (NonLinearFunctions.Sigmoid(), NonLinearFunctions.SigmoidReference),
            "tanh" => (NonLinearFunctions.Tanh(), Math.Tanh),
            _ => (NonLinearFunctions.ExpNegative(), Math.Exp),
        };
        var (maxAbs, _, _) = await Measure(spec, reference, lo, hi, 4001);
        Assert.True(maxAbs <= bound, $"{name}: max abs error {maxAbs:E3} > {bound:E1}");
    }

    [Theory]
    [InlineData("reciprocal", 1.0 / 16, 64, 64, 0.03)]
    [InlineData("rsqrt", 1.0 / 64, 1024, 64, 0.02)]
    [InlineData("reciprocal", 0.5, 129, CompositeLayers.RowSplineIntervals, 0.02)]
    [InlineData("rsqrt", 1.0 / 64, 1024, CompositeLayers.RowSplineIntervals, 0.005)]
    public async Task Reciprocal_and_rsqrt_relative_errors_stay_within_the_documented_bound(string name, double lo, double hi, int intervals, double relBound)
    {
        (SplineSpec spec, Func<double, double> reference) = name == "reciprocal"
            ? (NonLinearFunctions.Reciprocal(lo, hi, intervals), x => 1 / x)
            : (NonLinearFunctions.Rsqrt(intervals), (Func<double, double>)(x => 1 / Math.Sqrt(x)));
        var (_, maxRel, _) = await Measure(spec, reference, lo, hi, 4001, NonLinearFunctions.InverseCoefficientBits);
        Assert.True(maxRel <= relBound, $"{name} ({intervals} pieces): max relative error {maxRel:E3} > {relBound:E1}");
    }

    [Fact]
    public void Invalid_specs_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new SplineSpec([1.0, 1.0], [0, 0, 0], [0, 0, 0]));
        Assert.Throws<ArgumentException>(() => new SplineSpec([1.0], [0], [0, 0]));
        Assert.Throws<ArgumentException>(() => new SplineSpec([double.NaN], [0, 0], [0, 0]));
    }
}
