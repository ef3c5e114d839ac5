using HssEe.Protocols;
using HssEe.Randomness;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Core.Tests.Protocols;

public class FssGateTests
{
    /// <summary>Every signed n-bit value, as ring elements (two's complement in Z_2^64).</summary>
    private static RingTensor AllSignedValues(int n)
    {
        int count = 1 << n;
        var t = new RingTensor(new TensorShape(count));
        long lo = -(1L << (n - 1));
        for (int i = 0; i < count; i++)
        {
            t.Span[i] = unchecked((ulong)(lo + i));
        }

        return t;
    }

    private static RingTensor RandomValues(int n, int count, AesPrg prg)
    {
        var t = new RingTensor(new TensorShape(count));
        prg.Fill(t.Span);
        for (int i = 0; i < count; i++)
        {
            // Sign-extend a uniform n-bit value; also plant the extremes.
            long v = n == 64 ? (long)t.Span[i] : ((long)(t.Span[i] << (64 - n))) >> (64 - n);
            if (i == 0) v = n == 64 ? long.MinValue : -(1L << (n - 1));
            if (i == 1) v = n == 64 ? long.MaxValue : (1L << (n - 1)) - 1;
            if (i == 2) v = 0;
            if (i == 3) v = -1;
            t.Span[i] = unchecked((ulong)v);
        }

        return t;
    }

    private static async Task<RingTensor> RunGate(Func<PlanBuilder, PlanBuilder> add, RingTensor secret, int fractionalBits, Func<PartySession, Share, Task<Share>> call)
    {
        Plan plan = add(new PlanBuilder(12)).Build();
        (Share a, Share b) = SecretSharing.Split(secret, fractionalBits);
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => call(s, s.Party == Party.A ? a : b));
        PlanStep step = plan.Steps[0];
        long len = secret.Length;
        switch (step.Kind)
        {
            case OperationKind.Relu: // round 1: y in 64 bits; round 2: one bit per element
                Assert.Equal(2, run.Cost.Rounds);
                Assert.Equal((len * 8) + ((len + 7) / 8), costs[0].OnlineBytesSent);
                break;
            case OperationKind.Sign: // round 1: y mod 2^n; round 2: one bit per element
                Assert.Equal(2, run.Cost.Rounds);
                Assert.Equal((len * ((step.InputBits + 7) / 8)) + ((len + 7) / 8), costs[0].OnlineBytesSent);
                break;
            case OperationKind.Truncate when TruncateGate.Shift(step) == 0 && step.InputBits <= 63: // a local copy
                Assert.Equal(0, run.Cost.Rounds);
                Assert.Equal(0, costs[0].OnlineBytesSent);
                break;
            case OperationKind.Truncate when step.InputBits <= 63: // round 1: Y mod 2^(n+1); round 2: the borrow bit
                Assert.Equal(2, run.Cost.Rounds);
                Assert.Equal((len * ((step.InputBits + 8) / 8)) + ((len + 7) / 8), costs[0].OnlineBytesSent);
                break;
            default:
                Assert.Equal(1, run.Cost.Rounds);
                Assert.Equal(len * ((step.InputBits + 7) / 8), costs[0].OnlineBytesSent);
                break;
        }

        return SecretSharing.Reconstruct(run.A, run.B);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(8)]
    [InlineData(10)]
    public async Task Relu_and_sign_are_exact_on_every_n_bit_input(int n)
    {
        RingTensor x = AllSignedValues(n);
        RingTensor relu = await RunGate(p => p.Relu(x.Shape, n), x, 12, (s, v) => s.ReluAsync(v));
        RingTensor sign = await RunGate(p => p.Sign(x.Shape, n), x, 12, (s, v) => s.SignAsync(v));
        for (int i = 0; i < x.Length; i++)
        {
            long v = (long)x.Span[i];
            Assert.True((ulong)Math.Max(v, 0) == relu.Span[i], $"ReLU({v}) at n={n} gave {(long)relu.Span[i]}");
            Assert.True((v >= 0 ? 1UL : 0UL) == sign.Span[i], $"sign({v}) at n={n} gave {(long)sign.Span[i]}");
        }
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(5, 0)]
    [InlineData(5, 2)]
    [InlineData(8, 3)]
    [InlineData(8, 7)]
    [InlineData(10, 4)]
    public async Task Truncation_is_an_exact_arithmetic_shift_on_every_n_bit_input(int n, int f)
    {
        RingTensor x = AllSignedValues(n);
        RingTensor t = await RunGate(p => p.Truncate(x.Shape, f, n), x, 24, (s, v) => s.TruncateAsync(v));
        for (int i = 0; i < x.Length; i++)
        {
            long v = (long)x.Span[i];
            Assert.True((ulong)(v >> f) == t.Span[i], $"{v} >> {f} at n={n} gave {(long)t.Span[i]}");
        }
    }

    [Theory]
    [InlineData(8, 5, 2)]
    [InlineData(10, 7, 3)]
    [InlineData(10, 9, 7)]
    public async Task Top_bits_truncation_gives_the_floor_or_the_integer_within_2_to_the_minus_t_above(int n, int s, int t)
    {
        // Every n-bit input, 16 copies each (every copy has its own mask, which decides the near-integer cases).
        const int Copies = 16;
        RingTensor all = AllSignedValues(n);
        var x = new RingTensor(new TensorShape(all.Length * Copies));
        for (int i = 0; i < x.Length; i++)
        {
            x.Span[i] = all.Span[i / Copies];
        }

        RingTensor got = await RunGate(p => p.TopBitsTruncate(x.Shape, s, n, t, "t"), x, 24, (session, v) => session.TruncateAsync(v));
        int roundedUp = 0;
        for (int i = 0; i < x.Length; i++)
        {
            long v = (long)x.Span[i], floor = v >> s, result = (long)got.Span[i];
            long fraction = v - (floor << s); // in [0, 2^s)
            bool nearNext = fraction > (1L << s) - (1L << (s - t));
            Assert.True(result == floor || (result == floor + 1 && nearNext), $"{v} >> {s} (top {t} bits compared) at n={n} gave {result}; floor {floor}, fraction {fraction}/2^{s}");
            roundedUp += result == floor + 1 ? 1 : 0;
        }

        // The near-integer inputs must sometimes take the next integer (else the top-bits path is not exercised).
        Assert.True(roundedUp > 0, $"no input rounded up (n={n}, s={s}, t={t})");
    }

    [Fact]
    public void Top_bits_truncations_out_of_range_are_refused_by_name()
    {
        var shape = new TensorShape(4);
        Assert.Equal("bits", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TopBitsTruncate(shape, 12, 64, 7, "t")).ParamName);
        Assert.Equal("shift", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TopBitsTruncate(shape, 0, 32, 7, "t")).ParamName);
        Assert.Equal("shift", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TopBitsTruncate(shape, 32, 32, 7, "t")).ParamName);
        Assert.Equal("comparedBits", Assert.Throws<ArgumentOutOfRangeException>(() => new PlanBuilder(12).TopBitsTruncate(shape, 12, 32, 0, "t")).ParamName);
    }

    [Theory]
    [InlineData(64, 12)]
    [InlineData(64, 24)]
    [InlineData(40, 12)]
    [InlineData(32, 12)]
    [InlineData(17, 16)]
    public async Task Gates_are_exact_on_random_wide_inputs(int n, int f)
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        RingTensor x;
        using (prg)
        {
            x = RandomValues(n, 4096, prg);
        }

        RingTensor relu = await RunGate(p => p.Relu(x.Shape, n), x, 24, (s, v) => s.ReluAsync(v));
        RingTensor sign = await RunGate(p => p.Sign(x.Shape, n), x, 24, (s, v) => s.SignAsync(v));
        RingTensor trunc = await RunGate(p => p.Truncate(x.Shape, f, n), x, 24, (s, v) => s.TruncateAsync(v));
        for (int i = 0; i < x.Length; i++)
        {
            long v = (long)x.Span[i];
            Assert.True((ulong)Math.Max(v, 0) == relu.Span[i], $"ReLU({v}) n={n}, seed {seed}");
            Assert.True((v >= 0 ? 1UL : 0UL) == sign.Span[i], $"sign({v}) n={n}, seed {seed}");
            Assert.True((ulong)(v >> f) == trunc.Span[i], $"{v} >> {f} n={n}, seed {seed}");
        }
    }

    [Fact]
    public async Task Product_then_faithful_truncation_matches_fixed_point_multiplication()
    {
        var q = new FixedPointFormat(12);
        var shape = new TensorShape(1000);
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        var x = new float[1000];
        var y = new float[1000];
        using (prg)
        {
            for (int i = 0; i < x.Length; i++)
            {
                x[i] = (float)((prg.NextDouble() * 2000) - 1000);
                y[i] = (float)((prg.NextDouble() * 20) - 10);
            }
        }

        var xs = ProtocolHarness.Shared(x, shape, q);
        var ys = ProtocolHarness.Shared(y, shape, q);
        Plan plan = new PlanBuilder(12).Multiply(shape).Truncate(shape, 12, 48).Build();
        var (run, _) = await ProtocolHarness.RunAsync(plan, async (s, ct) =>
        {
            Share p = await s.MultiplyAsync(xs(s.Party), ys(s.Party), ct);
            return await s.TruncateAsync(p, ct);
        });

        Assert.Equal(12, run.A.FractionalBits);
        Assert.Equal(3, run.Cost.Rounds); // product, then the two-round truncation
        RingTensor z = SecretSharing.Reconstruct(run.A, run.B);
        ulong[] xq = q.Encode(x, shape).Span.ToArray(), yq = q.Encode(y, shape).Span.ToArray();
        for (int i = 0; i < x.Length; i++)
        {
            long exact = ((long)xq[i] * (long)yq[i]) >> 12;
            Assert.True((ulong)exact == z.Span[i], $"element {i}: {x[i]} * {y[i]}, seed {seed}");
        }
    }
}

public class MaxTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(128)]
    public async Task Max_along_the_last_axis_is_exact(int k)
    {
        var q = new FixedPointFormat(12);
        var shape = new TensorShape(3, 5, k);
        (var prg, string seed) = TestSeeds.Fresh();
        var x = new float[shape.ElementCount];
        using (prg)
        {
            for (int i = 0; i < x.Length; i++)
            {
                x[i] = (float)((prg.NextDouble() * 60) - 30);
            }
        }

        var xs = ProtocolHarness.Shared(x, shape, q);
        Plan plan = new PlanBuilder(12).MaxAlongLastAxis(shape, 32, "scores").Build();
        var (run, _) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.MaxAlongLastAxisAsync(xs(s.Party), ct));
        Assert.Equal(new TensorShape(3, 5, 1), run.A.Shape);
        Assert.Equal(2 * (int)Math.Ceiling(Math.Log2(k)), run.Cost.Rounds); // two rounds per ReLU level
        float[] max = SecretSharing.ReconstructToSingle(run.A, run.B);
        RingTensor xq = q.Encode(x, shape);
        for (int r = 0; r < 15; r++)
        {
            long expected = long.MinValue;
            for (int j = 0; j < k; j++)
            {
                expected = Math.Max(expected, (long)xq.Span[(r * k) + j]);
            }

            Assert.True(q.Decode((ulong)expected) == max[r], $"row {r}, seed {seed}");
        }
    }
}

public class LookupTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(8)]
    public async Task Lookup_is_exact_for_every_index(int k)
    {
        int size = 1 << k;
        var table = new ulong[size];
        using (var prg = HssEe.Randomness.AesPrg.Create())
        {
            prg.Fill(table);
        }

        // Every index, each twice, with arbitrary high bits above the k index bits.
        var shape = new TensorShape(2 * size);
        var x = new RingTensor(shape);
        for (int i = 0; i < 2 * size; i++)
        {
            x.Span[i] = ((ulong)(uint)(i * 7919) << k) | (uint)(i % size);
        }

        Plan plan = new PlanBuilder(12).Lookup(shape, table, 12, "lut").Build();
        (Share a, Share b) = SecretSharing.Split(x, 0);
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.LookupAsync(s.Party == Party.A ? a : b, ct));
        RingTensor y = SecretSharing.Reconstruct(run.A, run.B);
        for (int i = 0; i < 2 * size; i++)
        {
            Assert.True(table[i % size] == y.Span[i], $"T[{i % size}] with k={k}");
        }

        Assert.Equal(1, run.Cost.Rounds);
        Assert.Equal(12, run.A.FractionalBits);
        Assert.Equal((long)shape.ElementCount * ((k + 7) / 8), costs[0].OnlineBytesSent);
    }

    [Fact]
    public void Tables_must_have_a_power_of_two_length()
    {
        Assert.Throws<ArgumentException>(() => new PlanBuilder(12).Lookup(new TensorShape(4), new ulong[3], 12));
        Assert.Throws<ArgumentException>(() => new PlanBuilder(12).Lookup(new TensorShape(4), new ulong[1], 12));
    }
}
