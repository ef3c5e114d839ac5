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

    /// <summary>Runs one ReLU on a constant input and returns the opened values y as party A saw them.</summary>
    private static async Task<long[]> OpenedHistogram(long constant)
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

        // Party A's view: its own masked share (sent) and B's (received); y = sum mod 2^8.
        byte[] sent = recA.Sent.Single(), received = recA.Received.Single();
        var counts = new long[1 << Bits];
        for (int i = 0; i < Elements; i++)
        {
            counts[(byte)(sent[PartyChannel.HeaderSize + i] + received[PartyChannel.HeaderSize + i])]++;
        }

        return counts;
    }

    [Fact]
    public async Task Opened_values_are_uniform_and_independent_of_the_input()
    {
        long[] zeros = await OpenedHistogram(0);
        long[] negative = await OpenedHistogram(-100);
        long[] positive = await OpenedHistogram(127);
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
}
