using System.Runtime.Intrinsics;
using HssEe.Fss;
using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Core.Tests.Protocols;

public class TableActivationTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static long Signed(ulong v, int bits) => bits == 64 ? (long)v : ((long)(v << (64 - bits))) >> (64 - bits);

    [Theory]
    [InlineData(10, 6, 4, 1, false)]
    [InlineData(9, 4, 3, 1, false)]
    [InlineData(8, 8, 2, 1, false)] // u = 0: one cell per input value
    [InlineData(10, 5, 4, 2, false)]
    [InlineData(9, 4, 3, 2, false)]
    [InlineData(11, 7, 4, 2, false)] // two pad words per element (the vector look-up rotates across words)
    [InlineData(12, 8, 4, 1, false)] // four
    [InlineData(10, 6, 4, 1, true)]
    [InlineData(10, 5, 4, 2, true)]
    public async Task Every_input_gives_the_table_polynomial_of_one_of_its_two_nearest_anchors_exactly(int n, int m, int f, int degree, bool scalarOutput)
    {
        TableActivationGate.UseScalarOutput(scalarOutput); // both output loops (the vector one where the CPU has it)
        // All valid n-bit inputs: |x| < 2^(n-1) - 2^u (one cell of margin).
        int u = n - m;
        int limit = (1 << (n - 1)) - (1 << u);
        int count = (2 * limit) - 1;
        var shape = new TensorShape(count);
        var values = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = (ulong)(long)(i - limit + 1);
        }

        Func<double, double> function = x => Math.Sin(3 * x) + (x * x / 4);
        Plan plan = new PlanBuilder(f).TableActivation(shape, function, n, m, rescale: false, label: "t", degree: degree).Build();
        (Share a, Share b) = SecretSharing.Split(new RingTensor(values, shape), f);
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.TableActivationAsync(s.Party == Party.A ? a : b, ct));
        RingTensor output = SecretSharing.Reconstruct(run.A, run.B);
        Assert.Equal(f + TableActivationGate.OutputShiftFor(degree, u), run.A.FractionalBits);

        ulong[] tables = TableActivationGate.BuildTables(function, u, m, f, degree);
        for (int i = 0; i < count; i++)
        {
            long x = Signed(values[i], 64);
            long below = x >> u; // floor
            long e0 = x - (below << u);
            ulong got = output.Span[i];
            Assert.True(got == Cell(tables, m, degree, below, e0) || got == Cell(tables, m, degree, below + 1, e0 - (1L << u)), $"x = {x}: output {Signed(got, 64)} is neither anchor's polynomial");
        }

        // Two rounds; ceil(n/8) + 8 (degree + 1) bytes per element each way; party A's dealer shares 8 (2 degree + 2) bytes.
        Assert.Equal(2, run.Cost.Rounds);
        Assert.Equal((long)count * (((n + 7) / 8) + (8 * (degree + 1))), costs[0].OnlineBytesSent);
        long keyA = 8L * ((2 * degree) + 2) * count;
        Assert.InRange(costs[0].KeyBytes, keyA, keyA + 1024);
    }

    /// <summary>T + S e (+ Q e^2) of cell idx, as the ring computes it.</summary>
    private static ulong Cell(ulong[] tables, int m, int degree, long idx, long e)
    {
        int size = 1 << m, k = (int)(idx & (size - 1));
        ulong value = tables[k] + (tables[size + k] * (ulong)e);
        return degree == 1 ? value : value + (tables[(2 * size) + k] * (ulong)(e * e));
    }

    [Theory]
    [InlineData(10, 5, 4, 2.0, 1, false, 0)]
    [InlineData(12, 4, 3, 4.0, 1, false, 0)]
    [InlineData(10, 5, 4, 2.0, 2, false, 0)]
    [InlineData(12, 4, 3, 4.0, 2, false, 0)]
    [InlineData(10, 5, 4, 2.0, 1, true, 0)]
    [InlineData(12, 4, 3, 4.0, 2, true, 0)]
    [InlineData(10, 5, 4, 2.0, 1, false, 13)] // party B's chunks start off multiples of 8 (some straddle a bit word) and len is no multiple of 13
    [InlineData(12, 4, 3, 4.0, 2, false, 13)]
    [InlineData(12, 4, 3, 4.0, 2, true, 13)]
    [InlineData(12, 4, 3, 4.0, 1, false, 1000)]
    [InlineData(12, 4, 3, 4.0, 1, false, 0, true)] // a left tail below half an output ulp: A_L = B_L = 0, two fewer dealer rows
    [InlineData(12, 4, 3, 4.0, 2, false, 0, true)]
    [InlineData(12, 4, 3, 4.0, 2, true, 13, true)]
    public async Task Clipped_tables_give_the_tails_outside_and_a_nearest_anchor_polynomial_inside_exactly(int n, int m, int f, double range, int degree, bool scalarOutput, int chunk, bool zeroLeftTail = false)
    {
        TableActivationGate.UseScalarOutput(scalarOutput); // both output loops (the vector one where the CPU has it)
        ClippedTableActivationGate.UseChunkElements(chunk); // party B's dealer-share chunks (0: the default)
        double offset = zeroLeftTail ? 0 : 0.25;
        Func<double, double> function = x => (x * NonLinearFunctions.SigmoidReference(2 * x)) + offset;
        Plan plan = new PlanBuilder(f).TableActivation(new TensorShape(1), function, n, m, rescale: false, label: "t", range: range, degree: degree).Build();
        PlanStep step0 = plan.Steps[0];
        Assert.Equal(zeroLeftTail, ClippedTableActivationGate.ZeroLeft(step0));
        int u = TableActivationGate.CellShift(step0);
        (ulong limitU, ulong aL, ulong bL, ulong aR, ulong bR) = ClippedTableActivationGate.Tails(step0);
        long limit = (long)limitU;
        int fuzz = ClippedTableActivationGate.FuzzBits(step0);
        long zone = (1L << fuzz) - 1; // inputs within 2^j - 1 inside either threshold may get the tail or the table

        // Every input with |x| < 2^(n-1) - L, then 64 more copies of each input in the fuzzy zones (each copy
        // gets its own mask, so the zones' tail-or-table choice is exercised).
        long bound = (1L << (n - 1)) - limit;
        var list = new List<ulong>();
        for (long x = -bound + 1; x < bound; x++)
        {
            list.Add((ulong)x);
        }

        for (long d = 1; d <= zone; d++)
        {
            for (int copy = 0; copy < 64; copy++)
            {
                list.Add((ulong)(-limit + zone - d));
                list.Add((ulong)(limit - d));
            }
        }

        ulong[] values = [.. list];
        int count = values.Length;
        var shape = new TensorShape(count);

        plan = new PlanBuilder(f).TableActivation(shape, function, n, m, rescale: false, label: "t", range: range, degree: degree).Build();
        (Share a, Share b) = SecretSharing.Split(new RingTensor(values, shape), f);
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.TableActivationAsync(s.Party == Party.A ? a : b, ct));
        RingTensor output = SecretSharing.Reconstruct(run.A, run.B);
        Assert.Equal(f + TableActivationGate.OutputShiftFor(degree, u), run.A.FractionalBits);
        ulong[] tables = TableActivationGate.BuildTables(function, u, m, f, degree);
        bool fuzzySeen = false;
        int distinct = 0;
        for (int i = 0; i < count; i++)
        {
            long x = (long)values[i];
            ulong got = output.Span[i];
            ulong left = (aL * (ulong)x) + bL, right = (aR * (ulong)x) + bR;
            long below = x >> u, e0 = x - (below << u);
            ulong Line(long idx, long e) => Cell(tables, m, degree, idx, e);
            bool table = got == Line(below, e0) || got == Line(below + 1, e0 - (1L << u));
            if (x < -limit)
            {
                Assert.True(got == left, $"x = {x}: left tail expected");
            }
            else if (x >= limit)
            {
                Assert.True(got == right, $"x = {x}: right tail expected");
            }
            else if (x < -limit + zone)
            {
                Assert.True(table || got == left, $"x = {x} (lower fuzzy zone, j = {fuzz}): output {Signed(got, 64)} is neither the table nor the left tail");
                fuzzySeen |= got == left && !table;
                distinct += left != Line(below, e0) && left != Line(below + 1, e0 - (1L << u)) ? 1 : 0;
            }
            else if (x >= limit - zone)
            {
                Assert.True(table || got == right, $"x = {x} (upper fuzzy zone, j = {fuzz}): output {Signed(got, 64)} is neither the table nor the right tail");
                fuzzySeen |= got == right && !table;
                distinct += right != Line(below, e0) && right != Line(below + 1, e0 - (1L << u)) ? 1 : 0;
            }
            else
            {
                Assert.True(table, $"x = {x}: output {Signed(got, 64)} is neither anchor's line");
            }
        }

        // The plan's j must be used where the tails allow it (this function's tails are close near the thresholds).
        Assert.True(fuzz >= 1, $"expected a fuzzy comparison (j >= 1), got j = {fuzz}");
        Assert.True(fuzzySeen || distinct == 0, $"no input in the fuzzy zones took a tail (j = {fuzz}, L = {limit}, {distinct} zone inputs where tail and table differ)");

        // Party A's key is the comparison key of depth n - 1 - j, its 4 degree + 8 dealer shares (6 without a left tail)
        // and two bit words per element, plus seeds.
        int shares = (4 * degree) + (ClippedTableActivationGate.ZeroLeft(plan.Steps[0]) ? 6 : 8);
        long keyA = BitDcf.BatchBytes(n - 1 - fuzz, count) + (8L * ((shares * count) + (2 * ((count + 63) / 64))));
        Assert.InRange(costs[0].KeyBytes, keyA, keyA + 1024);

        // Two rounds: Y (8 bytes), then the degree + 1 W and two bit vectors in one message.
        Assert.Equal(2, run.Cost.Rounds);
        Assert.Equal((8L * count) + (8L * (degree + 1) * count) + (2 * 8 * (long)((count + 63) / 64)), costs[0].OnlineBytesSent);
    }

    /// <summary>The float64 reference of an accuracy case's function name.</summary>
    private static Func<double, double> Reference(string name) => name switch
    {
        "gelu" => NonLinearFunctions.GeluReference,
        "silu" => NonLinearFunctions.SiluReference,
        "sigmoid" => NonLinearFunctions.SigmoidReference,
        _ => Math.Tanh,
    };

    public static TheoryData<string, double, int, int, int, double, bool> WideAccuracy => new()
    {
        // function, table range, table bits, degree, input bits n, documented max abs error (f = 12; inputs up to +-1000)
        { "gelu", 8, 9, 1, 32, 1.0e-3, true },
        { "silu", 16, 10, 1, 32, 1.0e-3, true },
        { "silu", 16, 9, 1, 32, 1.0e-3, true },
        { "sigmoid", 16, 9, 1, 32, 1.0e-3, true },
        { "tanh", 8, 9, 1, 32, 1.0e-3, true },
        { "gelu", 8, 7, 2, 32, 1.0e-3, true },
        { "silu", 16, 8, 2, 32, 1.0e-3, true },
        { "silu", 16, 7, 2, 32, 1.0e-3, true },
        { "sigmoid", 16, 7, 2, 32, 1.0e-3, true },
        { "tanh", 8, 7, 2, 32, 1.0e-3, true },
        { "gelu", 8, 7, 2, 29, 1.0e-3, true }, // the models' width, f + 17
        { "silu", 16, 8, 2, 29, 1.0e-3, true },
        { "gelu", 8, 7, 2, 29, 1.0e-3, false }, // as the models run them: no rescale (left tail exactly 0)
        { "silu", 16, 8, 2, 29, 1.0e-3, false },
    };

    [Theory]
    [MemberData(nameof(WideAccuracy))]
    public async Task Clipped_activation_errors_on_wide_inputs_stay_within_the_documented_bound(string name, double range, int m, int degree, int n, double bound, bool rescale)
    {
        Func<double, double> reference = Reference(name);
        const int f = 12;
        (var prg, string seed) = TestSeeds.Fresh();
        const int count = 40_000;
        var x = new float[count];
        for (int i = 0; i < count; i++)
        {
            // A fine grid over twice the table's range, then random values up to +-1000.
            x[i] = i < count / 2 ? (float)((-2 * range) + (4 * range * i / (count / 2))) : (float)((prg.NextDouble() * 2000) - 1000);
        }

        prg.Dispose();
        var shape = new TensorShape(count);
        var q = new FixedPointFormat(f);
        var xs = ProtocolHarness.Shared(x, shape, q);
        Plan plan = new PlanBuilder(f).TableActivation(shape, reference, n, m, rescale: rescale, label: name, range: range, degree: degree).Build();
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.TableActivationAsync(xs(s.Party), ct));
        int outBits = rescale ? f : TableActivationGate.OutputFractionalBits(plan.Steps[0], f);
        Assert.Equal(outBits, run.A.FractionalBits);
        Assert.Equal(rescale ? 4 : 2, run.Cost.Rounds);
        if (!rescale && name is "gelu" or "silu")
        {
            Assert.True(ClippedTableActivationGate.ZeroLeft(plan.Steps[0]), $"{name}: its left tail is below half an output ulp, so A_L = B_L = 0");
        }

        RingTensor y = SecretSharing.Reconstruct(run.A, run.B);
        double maxAbs = 0;
        for (int i = 0; i < count; i++)
        {
            double xe = q.Decode(q.Encode(x[i]));
            maxAbs = Math.Max(maxAbs, Math.Abs(Math.ScaleB(Signed(y.Span[i], 64), -outBits) - reference(xe)));
        }

        string rescaleKeys = rescale ? $", rescale {costs[1].KeyBytes / (double)count:F1}" : string.Empty;
        output.WriteLine($"{name} n={n} range {range} m={m} degree {degree} rescale {rescale}: max abs error {maxAbs:E3}, party A key bytes per element: table {costs[0].KeyBytes / (double)count:F1}{rescaleKeys}");
        Assert.True(maxAbs <= bound, $"{name} n={n} range {range} m={m} degree {degree}: max abs error {maxAbs:E3} > {bound:E1} (seed {seed})");
    }

    public static TheoryData<string, int, int, int, double> Accuracy => new()
    {
        // function, n, table bits, degree, documented max abs error (f = 12, inputs on the whole valid range)
        { "gelu", 16, 9, 1, 1.0e-3 },
        { "silu", 16, 9, 1, 1.0e-3 },
        { "gelu", 17, 9, 1, 2.0e-3 },
        { "silu", 17, 9, 1, 2.0e-3 },
        { "sigmoid", 17, 9, 1, 1.0e-3 },
        { "tanh", 16, 9, 1, 1.0e-3 },
        { "gelu", 16, 7, 2, 1.0e-3 },
        { "silu", 17, 8, 2, 1.0e-3 },
    };

    [Theory]
    [MemberData(nameof(Accuracy))]
    public async Task Activation_errors_against_float64_stay_within_the_documented_bound(string name, int n, int m, int degree, double bound)
    {
        Func<double, double> reference = Reference(name);
        const int f = 12;
        double h = Math.ScaleB(1.0, n - f - m);
        double limit = Math.ScaleB(1.0, n - 1 - f) - h;
        (var prg, string seed) = TestSeeds.Fresh();
        const int count = 40_000;
        var x = new float[count];
        for (int i = 0; i < count; i++)
        {
            // Half on a fine grid over the whole range, half random.
            x[i] = i < count / 2 ? (float)(-limit + (2 * limit * i / (count / 2))) : (float)((prg.NextDouble() * 2 * limit) - limit);
            x[i] = Math.Clamp(x[i], (float)-limit + 1e-3f, (float)limit - 1e-3f);
        }

        prg.Dispose();
        var shape = new TensorShape(count);
        var q = new FixedPointFormat(f);
        var xs = ProtocolHarness.Shared(x, shape, q);
        Plan plan = new PlanBuilder(f).TableActivation(shape, reference, n, m, label: name, degree: degree).Build();
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.TableActivationAsync(xs(s.Party), ct));
        Assert.Equal(f, run.A.FractionalBits);
        Assert.Equal(4, run.Cost.Rounds); // two for the table, two for the truncation
        Assert.Equal(2, costs.Count);
        RingTensor y = SecretSharing.Reconstruct(run.A, run.B);
        double maxAbs = 0;
        for (int i = 0; i < count; i++)
        {
            double xe = q.Decode(q.Encode(x[i]));
            double got = Signed(y.Span[i], 64) / 4096.0;
            maxAbs = Math.Max(maxAbs, Math.Abs(got - reference(xe)));
        }

        output.WriteLine($"{name} n={n} m={m} degree {degree}: max abs error {maxAbs:E3}, party A key bytes per element: table {costs[0].KeyBytes / (double)count:F1}, rescale {costs[1].KeyBytes / (double)count:F1}");
        Assert.True(maxAbs <= bound, $"{name} n={n} m={m} degree {degree}: max abs error {maxAbs:E3} > {bound:E1} (seed {seed})");
    }

    [Fact]
    public void A_range_of_a_seed_expansion_equals_that_slice_of_the_whole_expansion()
    {
        byte[] seed = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
        var whole = new ulong[(1 << 16) + 64];
        GateMath.ExpandSeed(seed, whole);
        var part = new ulong[80];
        foreach (int first in new[] { 0, 1, 2, 3, 6, 7, 63, 64, 65, 1 << 16, (1 << 16) + 1 })
        {
            for (int count = 0; count <= 40 && first + count <= whole.Length; count++)
            {
                Array.Fill(part, 0xDEADUL);
                GateMath.ExpandSeedRange(seed, first, part.AsSpan(0, count));
                Assert.True(whole.AsSpan(first, count).SequenceEqual(part.AsSpan(0, count)), $"values [{first}, {first + count}) (seed {Convert.ToHexString(seed)})");
                Assert.Equal(0xDEADUL, part[count]); // nothing past the range
            }
        }
    }

    [Fact]
    public void Byte_sum_inner_products_equal_their_definition_for_every_rotation()
    {
        (var prg, string seed) = TestSeeds.Fresh();
        foreach (int degree in new[] { 1, 2 })
        {
            foreach (int m in new[] { 4, 5, 6, 7, 9, 12 })
            {
                int size = 1 << m;
                var table = new ulong[(degree + 1) * size];
                prg.Fill(table);
                Plan plan = new PlanBuilder(4).Add(OperationKind.TableActivation, [new TensorShape(1)], new TensorShape(1), m + 1, [m, 0, 1, 0, degree, TableActivationGate.OutputShiftFor(degree, 1)], System.Runtime.InteropServices.MemoryMarshal.AsBytes(table.AsSpan()).ToArray(), "t").Build();
                var bits = new ulong[TableActivationGate.PadWords(m)];
                for (int trial = 0; trial < 4; trial++)
                {
                    prg.Fill(bits);
                    if (m < 6)
                    {
                        bits[0] &= (1UL << size) - 1;
                    }

                    for (int shift = 0; shift < size; shift += m >= 9 ? 37 : 1)
                    {
                        ulong[] expected = TableActivationGate.InnerProductsReference(bits, table, m, shift);
                        var got = TableActivationGate.InnerProducts(bits, plan.Steps[0], shift);
                        for (int v = 0; v < 4; v++)
                        {
                            Assert.True((v < expected.Length ? expected[v] : 0) == got.GetElement(v), $"degree {degree}, m = {m}, shift {shift}, value {v}, seed {seed}");
                        }
                    }
                }
            }
        }

        prg.Dispose();
    }

    [Fact]
    public void Vector_nibble_inner_products_equal_their_definition_for_eight_pads_at_once()
    {
        if (!TableActivationGate.VectorLookUp(6))
        {
            output.WriteLine("No AVX-512 here: the vector look-up is not used, so there is nothing to compare.");
            return;
        }

        (var prg, string seed) = TestSeeds.Fresh();
        foreach (int degree in new[] { 1, 2 })
        {
            foreach (int m in new[] { 6, 7, 8, 9, 12 })
            {
                int size = 1 << m, words = TableActivationGate.PadWords(m);
                var table = new ulong[(degree + 1) * size];
                prg.Fill(table);
                Plan plan = new PlanBuilder(4).Add(OperationKind.TableActivation, [new TensorShape(1)], new TensorShape(1), m + 1, [m, 0, 1, 0, degree, TableActivationGate.OutputShiftFor(degree, 1)], System.Runtime.InteropServices.MemoryMarshal.AsBytes(table.AsSpan()).ToArray(), "t").Build();
                var bits = new ulong[8 * words];
                var shifts = new int[8];
                var random = new ulong[8];
                for (int trial = 0; trial < 64; trial++)
                {
                    prg.Fill(bits);
                    prg.Fill(random);
                    for (int l = 0; l < 8; l++)
                    {
                        // The edges (0, 63, 64, the last cell) in the first trials, then random rotations.
                        int[] edges = [0, 1, 63, 64 % size, 65 % size, size - 64, size - 1, size / 2];
                        shifts[l] = trial == 0 ? edges[l] : trial == 1 ? edges[7 - l] : (int)(random[l] % (ulong)size);
                    }

                    var (t, s, q) = TableActivationGate.InnerProductsEight(bits, plan.Steps[0], shifts);
                    for (int l = 0; l < 8; l++)
                    {
                        ulong[] expected = TableActivationGate.InnerProductsReference(bits.AsSpan(l * words, words), table, m, shifts[l]);
                        ulong[] got = [t.GetElement(l), s.GetElement(l), q.GetElement(l)];
                        for (int v = 0; v < 3; v++)
                        {
                            Assert.True((v < expected.Length ? expected[v] : 0) == got[v], $"degree {degree}, m = {m}, lane {l}, shift {shifts[l]}, value {v}, seed {seed}");
                        }
                    }
                }
            }
        }

        prg.Dispose();
    }

    [Fact]
    public void Clipped_comparison_points_and_bits_equal_their_element_by_element_definition()
    {
        (var prg, string seed) = TestSeeds.Fresh();
        var lengths = new[] { 0, 1, 7, 8, 9, 63, 64, 65, 127, 130, 1000 };
        foreach (int len in lengths)
        {
            foreach (int n in new[] { 17, 29, 32, 64 })
            {
                int words = (len + 63) / 64, fuzz = n / 3;
                var y = new ulong[len];
                var word = new ulong[2];
                prg.Fill(y);
                prg.Fill(word);
                ulong theta = word[0], nMask = n == 64 ? ulong.MaxValue : (1UL << n) - 1, half = 1UL << (n - 1);
                var points = new ulong[len];
                var top = new ulong[words];
                var also = new ulong[words];
                prg.Fill(top);
                ulong[] topBefore = (ulong[])top.Clone();
                ClippedTableActivationGate.ComparisonPoints(y, theta, n, fuzz, points, top, also);
                for (int i = 0; i < len; i++)
                {
                    ulong yp = (y[i] - theta + half) & nMask;
                    Assert.True(points[i] == (yp & (half - 1)) >> fuzz, $"point {i} of {len}, n = {n}, seed {seed}");
                    ulong bit = yp >> (n - 1);
                    Assert.True(((top[i >> 6] ^ topBefore[i >> 6]) >> (i & 63) & 1) == bit, $"top bit {i} of {len}, n = {n}, seed {seed}");
                    Assert.True(((also[i >> 6] >> (i & 63)) & 1) == bit, $"second top bit {i} of {len}, n = {n}, seed {seed}");
                }

                var lower = new byte[len];
                var upper = new byte[len];
                for (int i = 0; i < len; i++)
                {
                    lower[i] = (byte)(y[i] & 1);
                    upper[i] = (byte)((y[i] >> 1) & 1);
                }

                var c = new ulong[words];
                var b = new ulong[words];
                prg.Fill(c);
                ulong[] cBefore = (ulong[])c.Clone();
                ClippedTableActivationGate.AddComparisonBits(lower, upper, c, b);
                for (int i = 0; i < len; i++)
                {
                    Assert.True((((c[i >> 6] ^ cBefore[i >> 6]) >> (i & 63)) & 1) == (ulong)(lower[i] ^ upper[i]), $"c bit {i} of {len}, seed {seed}");
                    Assert.True(((b[i >> 6] >> (i & 63)) & 1) == upper[i], $"b bit {i} of {len}, seed {seed}");
                }
            }
        }

        prg.Dispose();
    }

    [Fact]
    public void Bad_table_sizes_and_unrepresentable_functions_are_refused_by_name()
    {
        var shape = new TensorShape(4);
        Assert.Contains("Table bits", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TableActivation(shape, Math.Tanh, 16, 13)).Message, StringComparison.Ordinal);
        Assert.Contains("Table bits", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TableActivation(shape, Math.Tanh, 8, 9)).Message, StringComparison.Ordinal);
        Assert.Contains("not finite", Assert.Throws<ArgumentException>(() => new PlanBuilder(12).TableActivation(shape, x => 1 / x, 16, 9)).Message, StringComparison.Ordinal);
        Assert.Contains("power of two", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TableActivation(shape, Math.Tanh, 32, 9, range: 3)).Message, StringComparison.Ordinal);
        Assert.Contains("power of two", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TableActivation(shape, Math.Tanh, 16, 9, range: 16)).Message, StringComparison.Ordinal);
        Assert.Contains("finer than", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TableActivation(shape, Math.Tanh, 32, 12, range: 0.25)).Message, StringComparison.Ordinal);
        Assert.Contains("bits at scale", Assert.Throws<ArgumentException>(() => new PlanBuilder(12).TableActivation(shape, NonLinearFunctions.GeluReference, 64, 9, rescale: false, range: 8)).Message, StringComparison.Ordinal);
        Assert.Contains("does not fit", Assert.Throws<ArgumentException>(() => new PlanBuilder(12).TableActivation(shape, x => Math.Exp(x * 100), 16, 9)).Message, StringComparison.Ordinal);
        Assert.Contains("degree", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TableActivation(shape, Math.Tanh, 16, 7, degree: 3)).Message, StringComparison.Ordinal);
    }
}
