using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Runtime;
using HssEe.Sharing;

namespace HssEe.Core.Tests.Protocols;

/// <summary>
/// Evidence for the threat model: what a server sees opened is the input plus a fresh dealer
/// mask, uniformly distributed whatever the input.
/// </summary>
public class OpenedValuesTests
{
    private const int Bits = 8;
    private const int Elements = 1 << 16;

    /// <summary>Records every message an end sends and receives (frames, headers included).</summary>
    private sealed class RecordingChannel(IChannel inner) : IChannel
    {
        public List<byte[]> Sent { get; } = [];

        public List<byte[]> Received { get; } = [];

        public async ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
        {
            Sent.Add(message.ToArray());
            await inner.SendAsync(message, cancellationToken);
        }

        public async ValueTask<byte[]?> ReceiveAsync(CancellationToken cancellationToken)
        {
            byte[]? m = await inner.ReceiveAsync(cancellationToken);
            if (m is not null)
            {
                Received.Add(m);
            }

            return m;
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>
    /// Runs one ReLU on a constant input and returns the histogram of the opened values y mod 2^8 as party A
    /// saw them (round 1), and how many of the opened sign bits s^ = s XOR rho were 1 (round 2).
    /// </summary>
    private static async Task<(long[] Histogram, long Ones)> Opened(long constant)
    {
        var shape = new TensorShape(Elements);
        Plan plan = new PlanBuilder(12).Relu(shape, Bits).Build();
        var (ka, kb, _) = ProtocolHarness.Deal(plan);
        var secret = new RingTensor(shape);
        secret.Span.Fill(unchecked((ulong)constant));
        (Share sa, Share sb) = SecretSharing.Split(secret, 12);
        (InProcessChannel la, InProcessChannel lb) = InProcessChannel.CreatePair();
        var recA = new RecordingChannel(la);
        await using var ca = new PartyChannel(Party.A, recA, TimeSpan.FromSeconds(30));
        await using var cb = new PartyChannel(Party.B, lb, TimeSpan.FromSeconds(30));
        using var sessionA = new PartySession(plan, Party.A, ka, ca);
        using var sessionB = new PartySession(plan, Party.B, kb, cb);
        await Task.WhenAll(sessionA.ReluAsync(sa), sessionB.ReluAsync(sb));

        // Party A's view, round 1: its own masked share (sent) and B's (received), 8 bytes per element; y = sum.
        Assert.Equal(2, recA.Sent.Count);
        Assert.Equal(2, recA.Received.Count);
        byte[] sent = recA.Sent[0], received = recA.Received[0];
        var counts = new long[1 << Bits];
        for (int i = 0; i < Elements; i++)
        {
            counts[(byte)(sent[PartyChannel.HeaderSize + (8 * i)] + received[PartyChannel.HeaderSize + (8 * i)])]++;
        }

        // Round 2: the opened bits s^ (XOR of both parties' packed bits).
        long ones = 0;
        for (int j = 0; j < Elements / 8; j++)
        {
            ones += System.Numerics.BitOperations.PopCount((uint)(recA.Sent[1][PartyChannel.HeaderSize + j] ^ recA.Received[1][PartyChannel.HeaderSize + j]));
        }

        return (counts, ones);
    }

    [Fact]
    public async Task Opened_values_are_uniform_and_independent_of_the_input()
    {
        (long[] zeros, long onesZero) = await Opened(0);
        (long[] negative, long onesNegative) = await Opened(-100);
        (long[] positive, long onesPositive) = await Opened(127);

        // The opened sign bits are fair coins whatever the sign of the input (sd 128 at 2^16 elements; 1000 is ~8 sd).
        foreach (long ones in new[] { onesZero, onesNegative, onesPositive })
        {
            Assert.True(Math.Abs(ones - (Elements / 2)) < 1000, $"opened sign bits are biased: {ones} ones of {Elements}");
        }

        double expected = Elements / 256.0;
        foreach (long[] h in new[] { zeros, negative, positive })
        {
            double chi2 = h.Sum(c => (c - expected) * (c - expected) / expected);
            // 255 degrees of freedom: mean 255, sd 22.6; 500 is over 10 sd away (p < 1e-20).
            Assert.True(chi2 < 500, $"opened values are not uniform: chi2 = {chi2}");
        }

        // Two-sample chi-square between the views for different inputs (same df, same threshold).
        foreach (long[] other in new[] { negative, positive })
        {
            double chi2 = 0;
            for (int i = 0; i < 256; i++)
            {
                double sum = zeros[i] + other[i];
                if (sum > 0)
                {
                    chi2 += ((zeros[i] - other[i]) * (double)(zeros[i] - other[i])) / sum;
                }
            }

            Assert.True(chi2 < 500, $"opened values depend on the input: two-sample chi2 = {chi2}");
        }

        // Without a mask the opened value would be the constant itself: a sanity check that the test can fail.
        Assert.True(zeros[0] < Elements / 2);
    }

    /// <summary>
    /// The table activation followed by its truncation on a constant input: histograms (low byte) of every
    /// opened ring value as party A saw them, and the number of opened borrow bits that were 1.
    /// </summary>
    private static async Task<(long[][] Histograms, long Ones)> OpenedTable(double constant, bool clipped)
    {
        var shape = new TensorShape(Elements);
        Plan plan = clipped
            ? new PlanBuilder(12).TableActivation(shape, NonLinearFunctions.GeluReference, 32, 9, label: "gelu", range: 8).Build()
            : new PlanBuilder(12).TableActivation(shape, NonLinearFunctions.GeluReference, 16, 9, label: "gelu").Build();
        var (ka, kb, _) = ProtocolHarness.Deal(plan);
        var values = new float[Elements];
        Array.Fill(values, (float)constant);
        (Share sa, Share sb) = SecretSharing.Split(values, shape, new FixedPointFormat(12));
        (InProcessChannel la, InProcessChannel lb) = InProcessChannel.CreatePair();
        var recA = new RecordingChannel(la);
        await using var ca = new PartyChannel(Party.A, recA, TimeSpan.FromSeconds(30));
        await using var cb = new PartyChannel(Party.B, lb, TimeSpan.FromSeconds(30));
        using var sessionA = new PartySession(plan, Party.A, ka, ca);
        using var sessionB = new PartySession(plan, Party.B, kb, cb);
        await Task.WhenAll(sessionA.TableActivationAsync(sa), sessionB.TableActivationAsync(sb));

        // Messages: Y mod 2^16 (2 bytes), W_T and W_S (8 bytes each, T first), the truncation's Y, its bits.
        Assert.Equal(4, recA.Sent.Count);
        long[] Histogram(int message, int width, int first)
        {
            var counts = new long[256];
            for (int i = 0; i < Elements; i++)
            {
                int at = PartyChannel.HeaderSize + ((first + i) * width);
                counts[(byte)(recA.Sent[message][at] + recA.Received[message][at])]++;
            }

            return counts;
        }

        int truncationWidth = (plan.Steps[1].InputBits + 8) / 8; // the truncation opens n + 1 bits
        long Ones(int message, int offset)
        {
            long ones = 0;
            for (int j = 0; j < Elements / 8; j++)
            {
                int at = PartyChannel.HeaderSize + offset + j;
                ones += System.Numerics.BitOperations.PopCount((uint)(recA.Sent[message][at] ^ recA.Received[message][at]));
            }

            return ones;
        }

        if (clipped)
        {
            // Y in 8 bytes; then W_T, W_S and the bits c^ and b^ in one message. The truncation's borrow bits: a
            // third coin count, folded into the same check.
            long coins = Ones(1, 16 * Elements) + Ones(1, (16 * Elements) + (Elements / 8)) + Ones(3, 0);
            return ([Histogram(0, 8, 0), Histogram(1, 8, 0), Histogram(1, 8, Elements), Histogram(2, truncationWidth, 0)], coins / 3);
        }

        return ([Histogram(0, 2, 0), Histogram(1, 8, 0), Histogram(1, 8, Elements), Histogram(2, truncationWidth, 0)], Ones(3, 0));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Table_activation_and_truncation_openings_are_uniform_and_independent_of_the_input(bool clipped)
    {
        var runs = new List<(long[][] Histograms, long Ones)>();
        foreach (double constant in clipped ? new[] { 0.0, -300.5, 6.5, 1000.25 } : new[] { 0.0, -3.25, 6.5 })
        {
            runs.Add(await OpenedTable(constant, clipped));
        }

        double expected = Elements / 256.0;
        foreach ((long[][] histograms, long ones) in runs)
        {
            Assert.True(Math.Abs(ones - (Elements / 2)) < 1000, $"opened masked bits are biased: {ones} ones of {Elements}");
            foreach (long[] h in histograms)
            {
                double chi2 = h.Sum(c => (c - expected) * (c - expected) / expected);
                Assert.True(chi2 < 500, $"opened values are not uniform: chi2 = {chi2}");
            }
        }

        for (int k = 0; k < runs[0].Histograms.Length; k++)
        {
            foreach ((long[][] other, _) in runs.Skip(1))
            {
                double chi2 = 0;
                for (int i = 0; i < 256; i++)
                {
                    double sum = runs[0].Histograms[k][i] + other[k][i];
                    if (sum > 0)
                    {
                        chi2 += ((runs[0].Histograms[k][i] - other[k][i]) * (double)(runs[0].Histograms[k][i] - other[k][i])) / sum;
                    }
                }

                Assert.True(chi2 < 500, $"opening {k} depends on the input: two-sample chi2 = {chi2}");
            }
        }
    }

    [Fact]
    public async Task Select_openings_are_uniform_and_independent_of_the_bit_and_the_values()
    {
        var shape = new TensorShape(Elements);
        var histograms = new List<long[]>();
        foreach ((float bit, float value) in new[] { (0f, 0f), (1f, 3.5f), (1f, -100f) })
        {
            Plan plan = new PlanBuilder(12).Select(shape).Build();
            var (ka, kb, _) = ProtocolHarness.Deal(plan);
            var bits = new float[Elements];
            var values = new float[Elements];
            Array.Fill(bits, bit);
            Array.Fill(values, value);
            (Share ba, Share bb) = SecretSharing.Split(bits, shape, new FixedPointFormat(0));
            (Share va, Share vb) = SecretSharing.Split(values, shape, new FixedPointFormat(12));
            (Share za, Share zb) = SecretSharing.Split(new float[Elements], shape, new FixedPointFormat(12));
            (InProcessChannel la, InProcessChannel lb) = InProcessChannel.CreatePair();
            var recA = new RecordingChannel(la);
            await using var ca = new PartyChannel(Party.A, recA, TimeSpan.FromSeconds(30));
            await using var cb = new PartyChannel(Party.B, lb, TimeSpan.FromSeconds(30));
            using var sessionA = new PartySession(plan, Party.A, ka, ca);
            using var sessionB = new PartySession(plan, Party.B, kb, cb);
            await Task.WhenAll(sessionA.SelectAsync(ba, va, za), sessionB.SelectAsync(bb, vb, zb));

            // One message: D = d + r (8 bytes per element), then the masked bits.
            byte[] sent = recA.Sent[0], received = recA.Received[0];
            var counts = new long[256];
            long ones = 0;
            for (int i = 0; i < Elements; i++)
            {
                int at = PartyChannel.HeaderSize + (8 * i);
                counts[(byte)(sent[at] + received[at])]++;
            }

            for (int j = 0; j < Elements / 8; j++)
            {
                int at = PartyChannel.HeaderSize + (8 * Elements) + j;
                ones += System.Numerics.BitOperations.PopCount((uint)(sent[at] ^ received[at]));
            }

            Assert.True(Math.Abs(ones - (Elements / 2)) < 1000, $"opened select bits are biased: {ones} ones of {Elements}");
            double expected = Elements / 256.0;
            double chi2 = counts.Sum(c => (c - expected) * (c - expected) / expected);
            Assert.True(chi2 < 500, $"opened D values are not uniform: chi2 = {chi2}");
            histograms.Add(counts);
        }

        foreach (long[] other in histograms.Skip(1))
        {
            double chi2 = 0;
            for (int i = 0; i < 256; i++)
            {
                double sum = histograms[0][i] + other[i];
                if (sum > 0)
                {
                    chi2 += ((histograms[0][i] - other[i]) * (double)(histograms[0][i] - other[i])) / sum;
                }
            }

            Assert.True(chi2 < 500, $"select openings depend on the input: two-sample chi2 = {chi2}");
        }
    }
}
