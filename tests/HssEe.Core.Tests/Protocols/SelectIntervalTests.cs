using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Core.Tests.Protocols;

public class SelectIntervalTests
{
    private static long Signed(ulong v) => (long)v;

    [Theory]
    [InlineData(8, 2, -3.5, 7.25)]
    [InlineData(10, 4, -20.0, -1.0)]
    [InlineData(6, 0, 0.0, 1.0)]
    public async Task Interval_containment_is_exact_on_every_n_bit_input(int n, int f, double lo, double hi)
    {
        var format = new FixedPointFormat(f);
        long loR = (long)format.Encode(lo), hiR = (long)format.Encode(hi);

        // Every input with |x - lo| and |x - hi| below 2^(n-1).
        long min = Math.Max(-(1L << (n - 1)) + hiR + 1, -(1L << (n - 1)) + loR + 1);
        long max = Math.Min((1L << (n - 1)) + loR - 1, (1L << (n - 1)) + hiR - 1);
        int count = (int)(max - min + 1);
        var shape = new TensorShape(count);
        var values = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = (ulong)(min + i);
        }

        Plan plan = new PlanBuilder(f).Interval(shape, lo, hi, n, "in").Build();
        (Share a, Share b) = SecretSharing.Split(new RingTensor(values, shape), f);
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.IntervalAsync(s.Party == Party.A ? a : b, ct));
        RingTensor bits = SecretSharing.Reconstruct(run.A, run.B);
        Assert.Equal(0, run.A.FractionalBits);
        for (int i = 0; i < count; i++)
        {
            long x = min + i;
            ulong expected = x >= loR && x < hiR ? 1UL : 0UL;
            Assert.True(bits.Span[i] == expected, $"x = {x} (raw), [{loR}, {hiR}): got {Signed(bits.Span[i])}");
        }

        Assert.Equal(2, run.Cost.Rounds);
        Assert.Equal((count * (long)((n + 7) / 8)) + ((count + 7) / 8), costs[0].OnlineBytesSent);
    }

    [Fact]
    public async Task Select_after_sign_computes_the_maximum_exactly()
    {
        (var prg, string seed) = TestSeeds.Fresh();
        const int Count = 3001;
        var shape = new TensorShape(Count);
        var q = new FixedPointFormat(12);
        var x = new float[Count];
        var y = new float[Count];
        for (int i = 0; i < Count; i++)
        {
            x[i] = (float)((prg.NextDouble() * 200) - 100);
            y[i] = i % 7 == 0 ? x[i] : (float)((prg.NextDouble() * 200) - 100);
        }

        prg.Dispose();
        var xs = ProtocolHarness.Shared(x, shape, q);
        var ys = ProtocolHarness.Shared(y, shape, q);
        Plan plan = new PlanBuilder(12).Sign(shape, 32, "x>=y").Select(shape, "max").Build();
        var (run, costs) = await ProtocolHarness.RunAsync(plan, async (s, ct) =>
        {
            using Share diff = xs(s.Party).Subtract(ys(s.Party));
            using Share bit = await s.SignAsync(diff, ct);
            return await s.SelectAsync(bit, xs(s.Party), ys(s.Party), ct);
        });

        RingTensor max = SecretSharing.Reconstruct(run.A, run.B);
        Assert.Equal(12, run.A.FractionalBits);
        ulong[] xq = q.Encode(x, shape).Span.ToArray(), yq = q.Encode(y, shape).Span.ToArray();
        for (int i = 0; i < Count; i++)
        {
            ulong expected = (long)xq[i] >= (long)yq[i] ? xq[i] : yq[i];
            Assert.True(expected == max.Span[i], $"element {i}: {x[i]} vs {y[i]}, seed {seed}");
        }

        // Select: one round, 8 bytes and one bit per element each way.
        Assert.Equal(1, costs[1].Rounds);
        Assert.Equal((8L * Count) + ((Count + 7) / 8), costs[1].OnlineBytesSent);
    }

    [Fact]
    public async Task Select_refuses_a_scaled_selector_and_mismatched_choices()
    {
        var shape = new TensorShape(4);
        var q = new FixedPointFormat(12);
        var ones = ProtocolHarness.Shared([1, 0, 1, 0], shape, new FixedPointFormat(0));
        var scaled = ProtocolHarness.Shared([1, 0, 1, 0], shape, q);
        var a = ProtocolHarness.Shared([1, 2, 3, 4], shape, q);
        var c = ProtocolHarness.Shared([1, 2, 3, 4], shape, new FixedPointFormat(8));
        Plan plan = new PlanBuilder(12).Select(shape).Build();
        var e1 = await Assert.ThrowsAnyAsync<Exception>(() => ProtocolHarness.RunAsync(plan, (s, ct) => s.SelectAsync(scaled(s.Party), a(s.Party), a(s.Party), ct)));
        Assert.Contains("scale 0", e1.ToString(), StringComparison.Ordinal);
        var e2 = await Assert.ThrowsAnyAsync<Exception>(() => ProtocolHarness.RunAsync(plan, (s, ct) => s.SelectAsync(ones(s.Party), a(s.Party), c(s.Party), ct)));
        Assert.Contains("must agree", e2.ToString(), StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new PlanBuilder(12).Interval(shape, 2, 1, 16));
        Assert.Throws<ArgumentException>(() => new PlanBuilder(12).Interval(shape, 1, 1 + 1e-9, 16));
    }
}
