using System.Collections.Immutable;
using System.Security.Cryptography;
using HssEe.Ring;

namespace HssEe.Protocols;

/// <summary>
/// A static two-party computation: an ordered list of <see cref="PlanStep"/>s with shapes and
/// bit-widths, identified by a stable SHA-256 hash of its canonical encoding. The dealer walks a
/// plan to emit key bundles; each party walks the same plan consuming its bundle in order.
/// </summary>
public sealed class Plan
{
    /// <summary>Version of the canonical encoding that the hash covers.</summary>
    public const int EncodingVersion = 1;

    private readonly byte[] _hash;

    internal Plan(ImmutableArray<PlanStep> steps, int fractionalBits)
    {
        Steps = steps;
        FractionalBits = fractionalBits;
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write("HssEe.Plan");
            writer.Write(EncodingVersion);
            writer.Write(fractionalBits);
            writer.Write(steps.Length);
            foreach (PlanStep step in steps)
            {
                step.WriteCanonical(writer);
            }
        }

        _hash = SHA256.HashData(buffer.ToArray());
    }

    /// <summary>The steps, in execution order.</summary>
    public ImmutableArray<PlanStep> Steps { get; }

    /// <summary>Fixed-point fractional bits f of the model's activations.</summary>
    public int FractionalBits { get; }

    /// <summary>SHA-256 of the plan's canonical encoding (32 bytes); bundles carry it.</summary>
    public ReadOnlySpan<byte> Hash => _hash;

    /// <summary>The hash as hex (for logs and messages).</summary>
    public string HashHex => Convert.ToHexString(_hash);

    /// <inheritdoc />
    public override string ToString() => $"Plan({Steps.Length} steps, f={FractionalBits}, hash {HashHex[..16]}...)";
}

/// <summary>Builds a <see cref="Plan"/> step by step.</summary>
public sealed class PlanBuilder
{
    private readonly List<PlanStep> _steps = [];

    /// <summary>Starts a plan whose activations carry <paramref name="fractionalBits"/> fractional bits.</summary>
    /// <param name="fractionalBits">f, 0 to 31 (products carry 2f bits and must stay below 2^63).</param>
    public PlanBuilder(int fractionalBits)
    {
        if (fractionalBits is < 0 or > 31)
        {
            throw new ArgumentOutOfRangeException(nameof(fractionalBits), fractionalBits, "Plans support 0 to 31 fractional bits.");
        }

        FractionalBits = fractionalBits;
    }

    /// <summary>Fractional bits of the plan.</summary>
    public int FractionalBits { get; }

    /// <summary>Number of steps added so far.</summary>
    public int Count => _steps.Count;

    /// <summary>The step added last (for callers that need its derived parameters, such as an output scale).</summary>
    internal PlanStep Last => _steps.Count > 0 ? _steps[^1] : throw new InvalidOperationException("The plan has no steps yet.");

    /// <summary>Adds an element-wise product of two shared tensors of the same shape (result carries 2f bits).</summary>
    /// <param name="shape">Shape of both inputs.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Multiply(TensorShape shape, string label = "") => Add(OperationKind.Multiply, [shape, shape], shape, 64, [], [], label);

    /// <summary>Adds an element-wise square (result carries 2f bits).</summary>
    /// <param name="shape">Input shape.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Square(TensorShape shape, string label = "") => Add(OperationKind.Square, [shape], shape, 64, [], [], label);

    /// <summary>Adds a product of shared matrices <c>[m, k] x [k, n]</c> (result carries 2f bits).</summary>
    /// <param name="m">Rows of the left matrix.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Columns of the right matrix.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder MatMul(int m, int k, int n, string label = "") =>
        Add(OperationKind.MatMul, [new TensorShape(m, k), new TensorShape(k, n)], new TensorShape(m, n), 64, [], [], label);

    /// <summary>Adds a batch of products of shared matrices <c>[B, m, k] x [B, k, n]</c> in one round (e.g. all attention heads; result carries 2f bits).</summary>
    /// <param name="batch">Batch size B.</param>
    /// <param name="m">Rows of each left matrix.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Columns of each right matrix.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder BatchMatMul(int batch, int m, int k, int n, string label = "") =>
        Add(OperationKind.MatMul, [new TensorShape(batch, m, k), new TensorShape(batch, k, n)], new TensorShape(batch, m, n), 64, [], [], label);

    /// <summary>Adds a ReLU gate (exact) evaluated at <paramref name="bits"/> bits: inputs must satisfy |x| &lt; 2^(bits-1).</summary>
    /// <param name="shape">Input shape.</param>
    /// <param name="bits">Gate bit-width n, 2 to 64.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Relu(TensorShape shape, int bits, string label = "") => Add(OperationKind.Relu, [shape], shape, CheckGateBits(bits), [], [], label);

    /// <summary>Adds a sign gate: shares of 1{x &gt;= 0} (scale 0), evaluated at <paramref name="bits"/> bits.</summary>
    /// <param name="shape">Input shape.</param>
    /// <param name="bits">Gate bit-width n, 2 to 64.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Sign(TensorShape shape, int bits, string label = "") => Add(OperationKind.Sign, [shape], shape, CheckGateBits(bits), [], [], label);

    /// <summary>
    /// Adds a select: <c>bit ? a : c</c> element-wise for a shared bit (0 or 1 at scale 0, e.g. from
    /// <see cref="Sign"/> or <see cref="Interval"/>) and shared a, c of one scale. Exact, one round, 8 bytes and
    /// one bit each way per element.
    /// </summary>
    /// <param name="shape">Shape of the bit and of both choices.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Select(TensorShape shape, string label = "") => Add(OperationKind.Select, [shape, shape, shape], shape, 64, [], [], label);

    /// <summary>
    /// Adds interval containment: shares of <c>1{lo &lt;= x &lt; hi}</c> (scale 0) for public bounds at the plan's
    /// scale. Exact, two rounds; one comparison key per element evaluated at both bounds.
    /// </summary>
    /// <param name="shape">Input shape.</param>
    /// <param name="lo">Lower bound (included).</param>
    /// <param name="hi">Upper bound (excluded), above <paramref name="lo"/>.</param>
    /// <param name="bits">Gate bit-width n: |x - lo| and |x - hi| must be below 2^(n-1) at scale f.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Interval(TensorShape shape, double lo, double hi, int bits, string label = "")
    {
        CheckGateBits(bits);
        var format = new FixedPointFormat(FractionalBits);
        if (!(lo < hi) || !double.IsFinite(lo) || !double.IsFinite(hi) || format.Encode(lo) == format.Encode(hi))
        {
            throw new ArgumentException($"An interval needs finite bounds lo < hi that differ at scale f = {FractionalBits}; got [{lo}, {hi}).", nameof(hi));
        }

        return Add(OperationKind.Interval, [shape], shape, bits, [(long)format.Encode(lo), (long)format.Encode(hi)], [], label);
    }

    /// <summary>
    /// Adds a faithful truncation: exact arithmetic right shift by <paramref name="shift"/> bits of an
    /// n-bit signed value (|x| &lt; 2^(bits-1)); the result's scale drops by <paramref name="shift"/>.
    /// </summary>
    /// <param name="shape">Input shape.</param>
    /// <param name="shift">Bits to shift, 0 to bits - 1 (usually f after a product).</param>
    /// <param name="bits">Gate bit-width n, 2 to 64.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Truncate(TensorShape shape, int shift, int bits = 64, string label = "")
    {
        CheckGateBits(bits);
        if (shift < 0 || shift >= bits)
        {
            throw new ArgumentOutOfRangeException(nameof(shift), shift, $"The shift must be between 0 and {bits - 1} for a {bits}-bit gate.");
        }

        return Add(OperationKind.Truncate, [shape], shape, bits, [shift], [], label);
    }

    /// <summary>
    /// A truncation whose borrow compares only the top <paramref name="comparedBits"/> of the shifted-out bits
    /// (a depth-t key instead of depth-s): the result is floor(x / 2^s), or the next integer when x / 2^s is
    /// within 2^-t below it (<see cref="BitTruncateGate"/>). For bit-widths up to 63; 64 stays exact.
    /// </summary>
    internal PlanBuilder TopBitsTruncate(TensorShape shape, int shift, int bits, int comparedBits, string label)
    {
        CheckGateBits(bits);
        if (bits > 63)
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "A top-bits truncation is for bit-widths up to 63 (64 uses the exact one-round truncation).");
        }

        if (shift < 1 || shift >= bits)
        {
            throw new ArgumentOutOfRangeException(nameof(shift), shift, $"The shift of a top-bits truncation must be between 1 and {bits - 1} for a {bits}-bit gate.");
        }

        if (comparedBits < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(comparedBits), comparedBits, "A top-bits truncation compares at least one bit.");
        }

        return Add(OperationKind.Truncate, [shape], shape, bits, [shift, Math.Min(comparedBits, shift)], [], label);
    }

    /// <summary>
    /// Adds the steps of a maximum along the last axis: a tree of ceil(log2 k) ReLU levels using
    /// max(a, b) = b + ReLU(a - b), two rounds each. Differences of two inputs must satisfy
    /// |a - b| &lt; 2^(bits-1). The output shape keeps the leading axes and has last axis 1.
    /// </summary>
    /// <param name="shape">Input shape [..., k], k at least 1.</param>
    /// <param name="bits">Gate bit-width n of the ReLU levels.</param>
    /// <param name="label">Label prefix for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder MaxAlongLastAxis(TensorShape shape, int bits, string label = "")
    {
        CheckGateBits(bits);
        if (shape.Rank < 1 || shape[-1] < 1)
        {
            throw new ArgumentException($"Max along the last axis needs a non-empty last axis; got shape {shape}.", nameof(shape));
        }

        int rows = shape.ElementCount / shape[-1];
        int level = 0;
        for (int k = shape[-1]; k > 1; k = (k / 2) + (k % 2), level++)
        {
            var levelShape = new TensorShape(rows, k / 2);
            Add(OperationKind.Relu, [levelShape], levelShape, bits, [], [], $"{label}.max{level}");
        }

        return this;
    }

    /// <summary>
    /// Adds a look-up table gate: shares of <c>table[x mod 2^k]</c>, exact, one round. The table
    /// has 2^k public ring entries (k = log2 of its length, 1 to 16) encoded with
    /// <paramref name="outputFractionalBits"/> fractional bits; the input's low k bits are the index.
    /// </summary>
    /// <param name="shape">Input shape.</param>
    /// <param name="table">2^k entries (two's complement ring values).</param>
    /// <param name="outputFractionalBits">Scale of the table entries.</param>
    /// <param name="label">Label for messages.</param>
    /// <returns>This builder.</returns>
    public PlanBuilder Lookup(TensorShape shape, ReadOnlySpan<ulong> table, int outputFractionalBits, string label = "")
    {
        if (table.Length < 2 || table.Length > (1 << 16) || (table.Length & (table.Length - 1)) != 0)
        {
            throw new ArgumentException($"A look-up table has 2^k entries with 1 <= k <= 16; got {table.Length}.", nameof(table));
        }

        if (outputFractionalBits is < 0 or > FixedPointFormat.MaxFractionalBits)
        {
            throw new ArgumentOutOfRangeException(nameof(outputFractionalBits), outputFractionalBits, "Invalid scale.");
        }

        int k = System.Numerics.BitOperations.Log2((uint)table.Length);
        return Add(OperationKind.Lookup, [shape], shape, k, [outputFractionalBits], System.Runtime.InteropServices.MemoryMarshal.AsBytes(table).ToArray(), label);
    }

    /// <summary>
    /// Adds a spline gate computing the piecewise polynomial <paramref name="spec"/> on shared x (scale f).
    /// Degree 1: an interval selection (one DCF key per element evaluated at every boundary, 1 round), a
    /// Beaver product slope * x (1 round) and a faithful truncation by <paramref name="coefficientBits"/>
    /// (2 rounds). Degree 2: the selection also gives the piece's center m, then d = x - m is squared
    /// (1 round), (q, s) times (d^2, d) is one product step (1 round), and the sum with c is truncated by
    /// f + <paramref name="coefficientBits"/> (2 rounds). Exact with respect to the fixed-point encoding of
    /// the spec; the approximation error of the spec itself is the caller's (see <see cref="SplineSpec.Fit"/>
    /// and <see cref="SplineSpec.FitQuadratic"/>).
    /// </summary>
    /// <param name="shape">Input shape.</param>
    /// <param name="spec">Boundaries and pieces.</param>
    /// <param name="bits">Bit-width n of the selection: every |x - b_j| must be below 2^(n-1) at scale f.</param>
    /// <param name="coefficientBits">Fractional bits fc of the slopes (degree 1) or quadratic coefficients (degree 2); the other coefficients carry f or 2f more.</param>
    /// <param name="truncationBits">Bit-width of the final truncation for degree 1: |slope x + intercept| &lt; 2^(truncationBits-1-f-fc). Degree 2 adds f (its sum carries 2f + fc fractional bits), up to 63.</param>
    /// <param name="label">Label prefix for messages.</param>
    /// <param name="extraOutputBits">
    /// Fractional bits of the output beyond f (0 to <paramref name="coefficientBits"/>): the output carries
    /// f + extraOutputBits bits. Useful for small outputs that scale whole rows (1/x, 1/sqrt x), whose
    /// relative precision at f bits would be poor.
    /// </param>
    /// <returns>This builder.</returns>
    public PlanBuilder Spline(TensorShape shape, SplineSpec spec, int bits = 32, int coefficientBits = 16, int truncationBits = 48, string label = "", int extraOutputBits = 0)
    {
        ArgumentNullException.ThrowIfNull(spec);
        CheckGateBits(bits);
        if (coefficientBits is < 0 or > 30)
        {
            throw new ArgumentOutOfRangeException(nameof(coefficientBits), coefficientBits, "Coefficient fractional bits must be between 0 and 30.");
        }

        if (extraOutputBits < 0 || extraOutputBits > coefficientBits)
        {
            throw new ArgumentOutOfRangeException(nameof(extraOutputBits), extraOutputBits, $"Extra output bits must be between 0 and the coefficient bits ({coefficientBits}).");
        }

        int f = FractionalBits, pieces = spec.Pieces, degree = spec.Degree;
        var input = new FixedPointFormat(f);
        var blob = new List<ulong>();
        blob.AddRange(spec.Boundaries.Select(input.Encode));

        // Half an output ulp folded into every constant term: the final truncation then rounds to nearest
        // instead of flooring, so errors do not accumulate a bias when outputs are summed (softmax).
        double half = Math.ScaleB(0.5, -(f + extraOutputBits));
        int[] dims = [.. shape.Dimensions];
        if (degree == 1)
        {
            var slopeFormat = new FixedPointFormat(coefficientBits);
            var interceptFormat = new FixedPointFormat(f + coefficientBits);
            blob.AddRange(spec.Slopes.Select(slopeFormat.Encode));
            blob.AddRange(Enumerable.Range(0, pieces).Select(i => interceptFormat.Encode(spec.Intercepts[i] - (spec.Slopes[i] * spec.Centers[i]) + half)));
            Add(OperationKind.Spline, [shape], new TensorShape([2, .. dims]), bits, [pieces, coefficientBits, 1], System.Runtime.InteropServices.MemoryMarshal.AsBytes(blob.ToArray().AsSpan()).ToArray(), $"{label}.select");
            Add(OperationKind.Multiply, [shape, shape], shape, 64, [], [], $"{label}.slope*x");
            return Truncate(shape, coefficientBits - extraOutputBits, truncationBits, $"{label}.truncate");
        }

        blob.AddRange(spec.Centers.Select(input.Encode));
        blob.AddRange(spec.Quadratics.Select(new FixedPointFormat(coefficientBits).Encode));
        blob.AddRange(spec.Slopes.Select(new FixedPointFormat(f + coefficientBits).Encode));
        var constantFormat = new FixedPointFormat(Math.Min(FixedPointFormat.MaxFractionalBits, (2 * f) + coefficientBits));
        blob.AddRange(spec.Intercepts.Select(c => constantFormat.Encode(c + half)));
        Add(OperationKind.Spline, [shape], new TensorShape([4, .. dims]), bits, [pieces, coefficientBits, 2], System.Runtime.InteropServices.MemoryMarshal.AsBytes(blob.ToArray().AsSpan()).ToArray(), $"{label}.select");
        Square(shape, $"{label}.d^2");
        Multiply(new TensorShape([2, .. dims]), $"{label}.(q,s)*(d^2,d)");
        return Truncate(shape, f + coefficientBits - extraOutputBits, Math.Min(63, truncationBits + f), $"{label}.truncate");
    }

    /// <summary>
    /// Adds a smooth activation (GeLU, SiLU, sigmoid, tanh, ...) evaluated from ONE look-up table of
    /// 2^<paramref name="tableBits"/> cells with a line (<paramref name="degree"/> 1) or a parabola (degree 2) in
    /// each cell. By default the table covers the whole input range |x| &lt; 2^(bits-1-f), so no comparison is
    /// needed: two rounds, ceil(bits/8) + 8 (degree + 1) online bytes per element each way; party A's key
    /// 8 (2 degree + 2) bytes per element, party B's 2^tableBits / 8, plus step-wide seeds.
    /// With a smaller <paramref name="range"/> the table covers |x| &lt; range and two evaluations of one
    /// comparison key (depth bits - 1 - j) switch to linear tails outside it (still two rounds; 8 + 8 (degree + 1)
    /// online bytes and two bits each way; both keys add the comparison key, 16 (bits - 6 - j) bytes, and party A
    /// 8 (4 degree + 8) bytes and two bits). The comparisons drop
    /// the j low bits for which the tail lines stay within half an output ulp (2^-(f+1)) of the function on the
    /// inputs just inside the thresholds, where a top-bits comparison may pick the tail instead of the table
    /// (GeLU on range 8 and SiLU on range 16 at f = 12: j = 13 and 14). With
    /// <paramref name="rescale"/> a two-round truncation follows and the output has scale f, rounded to nearest;
    /// otherwise the output keeps scale f + w for the caller to fold into a later truncation (w = u for lines,
    /// 2u + 1 for parabolas; u = log2 of the cell width in ring units).
    /// </summary>
    /// <param name="shape">Input shape.</param>
    /// <param name="function">The function, evaluated in float64 at plan time to fill the tables (part of the plan hash).</param>
    /// <param name="bits">Input bit-width n. Without clipping inputs must satisfy |x| &lt; 2^(n-1-f) - h; with it, |x| &lt; 2^(n-1-f) - range.</param>
    /// <param name="tableBits">
    /// Table size m, 4 to 12: cells of width h = 2 range / 2^m; the fit's error is about max|P''| h^2 / 4 for lines
    /// and max|P'''| h^3 / 24 for parabolas (so parabolas need about a quarter of the cells for the same error).
    /// </param>
    /// <param name="rescale">Append the truncation back to scale f.</param>
    /// <param name="label">Label prefix for messages.</param>
    /// <param name="range">
    /// Half-width of the table's range, a power of two at most 2^(bits-1-f); 0 (the default) means the whole
    /// input range. Outside [-range + h, range - h) the function is replaced by its secant lines over the rest of
    /// the input range on each side (exact for GeLU, SiLU, ReLU-like and saturating functions far enough out);
    /// tail slopes are rounded to w fractional bits.
    /// </param>
    /// <param name="degree">1: a line per cell (two tables); 2: a parabola per cell (three tables, one more opened word, output scale f + 2u + 1).</param>
    /// <returns>This builder.</returns>
    public PlanBuilder TableActivation(TensorShape shape, Func<double, double> function, int bits, int tableBits = 9, bool rescale = true, string label = "", double range = 0, int degree = 1)
    {
        ArgumentNullException.ThrowIfNull(function);
        CheckGateBits(bits);
        if (tableBits < 4 || tableBits > TableActivationGate.MaxTableBits || tableBits > bits)
        {
            throw new ArgumentOutOfRangeException(nameof(tableBits), tableBits, $"Table bits must be between 4 and {TableActivationGate.MaxTableBits}, and at most the input bits ({bits}).");
        }

        if (degree is not (1 or 2))
        {
            throw new ArgumentOutOfRangeException(nameof(degree), degree, "The degree of the table's polynomials must be 1 (lines) or 2 (parabolas).");
        }

        int f = FractionalBits;
        double inputRange = Math.ScaleB(1.0, bits - 1 - f);
        double tableRange = range == 0 ? inputRange : range;
        if (!(tableRange > 0) || tableRange > inputRange || Math.ScaleB(1.0, Math.ILogB(tableRange)) != tableRange)
        {
            throw new ArgumentOutOfRangeException(nameof(range), range, $"The table range must be 0 or a power of two no larger than the input range 2^(bits-1-f) = {inputRange}.");
        }

        int u = f + Math.ILogB(tableRange) + 1 - tableBits;
        if (u < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(tableBits), tableBits, $"2^{tableBits} cells over |x| < {tableRange} are finer than the fixed-point resolution 2^-{f}; use fewer table bits.");
        }

        int w = TableActivationGate.OutputShiftFor(degree, u);
        bool clip = tableRange < inputRange;
        ulong[] tables = TableActivationGate.BuildTables(function, u, tableBits, f, degree, w);
        int size = 1 << tableBits;
        rescale &= w > 0; // one cell per input value and lines: the output is already at scale f
        ulong half = rescale ? 1UL << (w - 1) : 0; // half an output ulp: the truncation then rounds to nearest
        for (int i = 0; i < size; i++)
        {
            tables[i] += half;
        }

        // The largest |T + S e + Q e^2| at scale f + w over |e| < 2^u, bounded term by term.
        double largestValue = 0;
        for (int i = 0; i < size; i++)
        {
            double value = Math.Abs((double)(long)tables[i]) + Math.ScaleB(Math.Abs((double)(long)tables[size + i]), u);
            if (degree == 2)
            {
                value += Math.ScaleB(Math.Abs((double)(long)tables[(2 * size) + i]), 2 * u);
            }

            largestValue = Math.Max(largestValue, value);
        }

        var parameters = new List<long> { tableBits, rescale ? 1 : 0, u, clip ? 1 : 0, degree, w };
        if (clip)
        {
            double h = Math.ScaleB(1.0, u - f), limit = tableRange - h;
            (double aL, double bL) = Secant(function, -inputRange, -limit);
            (double aR, double bR) = Secant(function, limit, inputRange);

            // A left tail within half an output ulp of 0 (GeLU, SiLU) becomes exactly 0: without a rescale's half in
            // the intercept, A_L = B_L = 0 and the gate deals two fewer rows per element.
            if (NegligibleTail(function, -inputRange, -limit, Math.ScaleB(1.0, -(f + 1))))
            {
                (aL, bL) = (0, 0);
            }
            long Slope(double a) => (long)Math.Round(Math.ScaleB(a, w));
            long Intercept(double b) => (long)new FixedPointFormat(f + w).Encode(b) + (long)half;
            long limitUnits = (long)Math.Round(Math.ScaleB(limit, f));
            parameters.AddRange([limitUnits, Slope(aL), Intercept(bL), Slope(aR), Intercept(bR)]);

            // Comparing only the top bits (dropping j low bits of the masked value and of the mask) makes each
            // threshold fuzzy by up to 2^j - 1 input units below it. The thresholds are placed so that the fuzzy
            // inputs lie inside the table (x in [-L, -L + 2^j - 2] or [L - 2^j + 1, L - 1]), where the tail line may
            // then be used instead of the table: take the largest j whose tail error there stays within half an
            // output ulp (2^-(f+1)), at most range / 4, so the comparison keys shrink by 16 j bytes and the
            // evaluation by j AES blocks per threshold.
            double TailError(double a, double b, double from, double to)
            {
                double worst = 0;
                for (int k = 0; k <= 64; k++)
                {
                    double x = from + ((to - from) * k / 64);
                    worst = Math.Max(worst, Math.Abs(function(x) - (Math.ScaleB(a, -w) * x) - Math.ScaleB(b - (long)half, -(f + w))));
                }

                return worst;
            }

            int fuzzBits = 0;
            for (int j = 1; j <= Math.Min(f + Math.ILogB(tableRange) - 2, bits - 2); j++)
            {
                double zone = Math.ScaleB((1L << j) - 1, -f);
                double worst = Math.Max(
                    TailError(Slope(aL), Intercept(bL), -limit, -limit + zone),
                    TailError(Slope(aR), Intercept(bR), limit - zone, limit));
                if (!(worst <= Math.ScaleB(1.0, -(f + 1))))
                {
                    break;
                }

                fuzzBits = j;
            }

            parameters.Add(fuzzBits);
            foreach ((double a, double b) in new[] { (aL, bL), (aR, bR) })
            {
                double tail = (Math.Abs((double)Slope(a)) * Math.ScaleB(1.0, bits - 1)) + Math.Abs((double)Intercept(b));
                largestValue = Math.Max(largestValue, tail);
            }
        }

        int truncationBits = largestValue >= Math.ScaleB(1.0, 63) ? 64 : 66 - System.Numerics.BitOperations.LeadingZeroCount((ulong)largestValue);
        if (truncationBits > 63)
        {
            throw new ArgumentException($"The activation's values need {truncationBits} bits at scale f + {w}; use fewer input bits.", nameof(function));
        }

        Add(OperationKind.TableActivation, [shape], shape, bits, [.. parameters], System.Runtime.InteropServices.MemoryMarshal.AsBytes(tables.AsSpan()).ToArray(), $"{label}.table");
        if (!rescale)
        {
            return this;
        }

        // The rescale's borrow compares the top RescaleComparedBits of the w shifted-out bits: the output is x / 2^w
        // rounded to nearest, except that values within 2^-7 ulp below a half may round up (BitTruncateGate).
        return TopBitsTruncate(shape, w, Math.Max(truncationBits, w + 2), RescaleComparedBits, $"{label}.rescale");
    }

    /// <summary>Compared bits of the table activations' rescale: 7, a comparison key without AES levels below its leaf.</summary>
    internal const int RescaleComparedBits = 7;

    /// <summary>
    /// True when |P(x)| &lt;= <paramref name="bound"/> on [<paramref name="from"/>, <paramref name="to"/>], sampled at 65
    /// even points and at points halving the distance to <paramref name="to"/> (where a decaying tail is largest).
    /// </summary>
    private static bool NegligibleTail(Func<double, double> function, double from, double to, double bound)
    {
        for (int k = 0; k <= 64; k++)
        {
            double even = from + ((to - from) * k / 64), near = to + ((from - to) * Math.ScaleB(1.0, -k));
            if (!(Math.Abs(function(even)) <= bound) || !(Math.Abs(function(near)) <= bound))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The line through (x0, P(x0)) and (x1, P(x1)).</summary>
    private static (double Slope, double Intercept) Secant(Func<double, double> function, double x0, double x1)
    {
        double y0 = function(x0), y1 = function(x1);
        double slope = (y1 - y0) / (x1 - x0);
        if (!double.IsFinite(slope) || !double.IsFinite(y0))
        {
            throw new ArgumentException($"The activation function is not finite on [{x0}, {x1}].", nameof(function));
        }

        return (slope, y0 - (slope * x0));
    }

    private static int CheckGateBits(int bits) => bits is >= 2 and <= 64
        ? bits
        : throw new ArgumentOutOfRangeException(nameof(bits), bits, "FSS gate bit-widths are between 2 and 64.");

    /// <summary>Adds a plan step of any kind (used by the gate helpers).</summary>
    internal PlanBuilder Add(OperationKind kind, TensorShape[] inputs, TensorShape output, int inputBits, long[] parameters, byte[] blob, string label)
    {
        ArgumentNullException.ThrowIfNull(label);
        if (inputBits is < 1 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(inputBits), inputBits, "Gate bit-widths are between 1 and 64.");
        }

        _steps.Add(new PlanStep(_steps.Count, kind, [.. inputs], output, inputBits, [.. parameters], [.. blob], label));
        return this;
    }

    /// <summary>Freezes the plan and computes its hash.</summary>
    /// <returns>The plan.</returns>
    public Plan Build() => new([.. _steps], FractionalBits);
}
