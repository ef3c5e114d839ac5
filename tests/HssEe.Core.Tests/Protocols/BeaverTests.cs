using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Core.Tests.Protocols;

public class BeaverTests
{
    private static readonly FixedPointFormat Q = new(12);

    [Fact]
    public async Task Elementwise_products_and_squares_are_exact_in_the_ring()
    {
        (var prg, string seed) = TestSeeds.Fresh();
        var shape = new TensorShape(3, 37);
        var x = new float[shape.ElementCount];
        var y = new float[shape.ElementCount];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)((prg.NextDouble() * 200) - 100);
            y[i] = (float)((prg.NextDouble() * 200) - 100);
        }

        prg.Dispose();
        var xs = ProtocolHarness.Shared(x, shape, Q);
        var ys = ProtocolHarness.Shared(y, shape, Q);
        Plan plan = new PlanBuilder(12).Multiply(shape, "xy").Square(shape, "xx").Build();
        var (run, costs) = await ProtocolHarness.RunAsync(plan, async (s, ct) =>
        {
            Share p = await s.MultiplyAsync(xs(s.Party), ys(s.Party), ct);
            Share q = await s.SquareAsync(xs(s.Party), ct);
            return (p, q);
        });

        RingTensor prod = SecretSharing.Reconstruct(run.A.p, run.B.p);
        RingTensor sq = SecretSharing.Reconstruct(run.A.q, run.B.q);
        Assert.Equal(24, run.A.p.FractionalBits);
        ulong[] xq = Q.Encode(x, shape).Span.ToArray(), yq = Q.Encode(y, shape).Span.ToArray();
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(xq[i] * yq[i] == prod.Span[i], $"product {i}, seed {seed}");
            Assert.True(xq[i] * xq[i] == sq.Span[i], $"square {i}, seed {seed}");
        }

        // One round per product step; 2 ring elements per product and 1 per square, each way.
        Assert.Equal(2, run.Cost.Rounds);
        Assert.Equal(16L * shape.ElementCount, costs[0].OnlineBytesSent);
        Assert.Equal(8L * shape.ElementCount, costs[1].OnlineBytesSent);
        Assert.Equal(1, costs[0].Rounds);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(4, 7, 5)]
    [InlineData(16, 64, 16)]
    public async Task Matrix_products_are_exact_in_the_ring(int m, int k, int n)
    {
        (var prg, string seed) = TestSeeds.Fresh();
        var x = new float[m * k];
        var y = new float[k * n];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((prg.NextDouble() * 8) - 4);
        for (int i = 0; i < y.Length; i++) y[i] = (float)((prg.NextDouble() * 8) - 4);
        prg.Dispose();
        var xs = ProtocolHarness.Shared(x, new TensorShape(m, k), Q);
        var ys = ProtocolHarness.Shared(y, new TensorShape(k, n), Q);
        Plan plan = new PlanBuilder(12).MatMul(m, k, n, "qk").Build();
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.MatMulAsync(xs(s.Party), ys(s.Party), ct));
        RingTensor z = SecretSharing.Reconstruct(run.A, run.B);
        ulong[] xq = Q.Encode(x, new TensorShape(m, k)).Span.ToArray(), yq = Q.Encode(y, new TensorShape(k, n)).Span.ToArray();
        for (int r = 0; r < m; r++)
        {
            for (int c = 0; c < n; c++)
            {
                ulong expected = 0;
                for (int t = 0; t < k; t++) expected += xq[(r * k) + t] * yq[(t * n) + c];
                Assert.True(expected == z.Span[(r * n) + c], $"({r},{c}) seed {seed}");
            }
        }

        Assert.Equal(8L * ((m * k) + (k * n)), costs[0].OnlineBytesSent);
        Assert.Equal(1, run.Cost.Rounds);
    }

    [Theory]
    [InlineData(3, 2, 5, 4)]
    [InlineData(8, 1, 16, 9)]
    public async Task Batched_matrix_products_are_exact_in_one_round(int batch, int m, int k, int n)
    {
        (var prg, string seed) = TestSeeds.Fresh();
        var x = new float[batch * m * k];
        var y = new float[batch * k * n];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((prg.NextDouble() * 8) - 4);
        for (int i = 0; i < y.Length; i++) y[i] = (float)((prg.NextDouble() * 8) - 4);
        prg.Dispose();
        var xs = ProtocolHarness.Shared(x, new TensorShape(batch, m, k), Q);
        var ys = ProtocolHarness.Shared(y, new TensorShape(batch, k, n), Q);
        Plan plan = new PlanBuilder(12).BatchMatMul(batch, m, k, n, "heads").Build();
        var (run, costs) = await ProtocolHarness.RunAsync(plan, (s, ct) => s.MatMulAsync(xs(s.Party), ys(s.Party), ct));
        RingTensor z = SecretSharing.Reconstruct(run.A, run.B);
        Assert.Equal(new TensorShape(batch, m, n), z.Shape);
        ulong[] xq = Q.Encode(x, new TensorShape(batch * m * k)).Span.ToArray(), yq = Q.Encode(y, new TensorShape(batch * k * n)).Span.ToArray();
        for (int b = 0; b < batch; b++)
        {
            for (int r = 0; r < m; r++)
            {
                for (int c = 0; c < n; c++)
                {
                    ulong expected = 0;
                    for (int t = 0; t < k; t++) expected += xq[(b * m * k) + (r * k) + t] * yq[(b * k * n) + (t * n) + c];
                    Assert.True(expected == z.Span[(b * m * n) + (r * n) + c], $"({b},{r},{c}) seed {seed}");
                }
            }
        }

        Assert.Equal(8L * batch * ((m * k) + (k * n)), costs[0].OnlineBytesSent);
        Assert.Equal(1, run.Cost.Rounds);
    }

    [Fact]
    public void Key_sizes_follow_the_documented_formulas()
    {
        var shape = new TensorShape(100);
        Plan plan = new PlanBuilder(12).Multiply(shape).Square(shape).MatMul(3, 4, 5).Build();
        (_, _, DealerReport report) = ProtocolHarness.Deal(plan);
        int overhead = KeyBundleFormat.HeaderSize + (4 * (KeyBundleFormat.RecordHeaderSize + KeyBundleFormat.ChecksumSize));
        Assert.Equal(overhead + (3 * 16), report.KeyBytesA); // party A: one 16-byte seed per step
        Assert.Equal(overhead + (8 * ((3 * 100) + (2 * 100) + (12 + 20 + 15))), report.KeyBytesB);
    }
}
