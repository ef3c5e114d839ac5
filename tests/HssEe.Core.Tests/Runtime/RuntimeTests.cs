using System.Diagnostics;
using HssEe.Runtime;

namespace HssEe.Core.Tests.Runtime;

public class RuntimeTests
{
    private static readonly TwoPartyOptions Fast = new() { ReceiveTimeout = TimeSpan.FromMilliseconds(500) };

    [Fact]
    public async Task Exchange_delivers_both_ways_and_counts_one_round()
    {
        var result = await TwoPartySimulation.RunAsync(async (ch, ct) =>
        {
            ulong[] mine = [(ulong)ch.Party + 1, 100, 200];
            var theirs = new ulong[3];
            await ch.ExchangeAsync(mine, theirs, ct);
            return theirs;
        });

        Assert.Equal([2UL, 100, 200], result.A);
        Assert.Equal([1UL, 100, 200], result.B);
        Assert.Equal(1, result.Cost.Rounds);
        Assert.Equal(48, result.Cost.OnlineBytes);
        Assert.Equal(24, result.Cost.A.BytesSent);
        Assert.Equal(24, result.Cost.A.BytesReceived);
        Assert.Equal(24 + PartyChannel.HeaderSize, result.Cost.A.FrameBytesSent);
        Assert.Equal(2, result.Cost.Messages);
    }

    [Fact]
    public async Task Large_exchanges_of_one_size_deliver_every_message_intact_while_frames_are_reused()
    {
        // Frames of at least 64 KiB go back to a pool once received and carry the next message of that size:
        // every round's payload (different each round and party) must arrive exactly.
        const int Count = 20_000, Rounds = 12;
        var result = await TwoPartySimulation.RunAsync(async (ch, ct) =>
        {
            ulong errors = 0;
            var mine = new ulong[Count];
            var theirs = new ulong[Count];
            ulong peer = (ulong)ch.Party.Peer() + 1;
            for (int round = 0; round < Rounds; round++)
            {
                for (int i = 0; i < Count; i++)
                {
                    mine[i] = ((ulong)ch.Party + 1) * 1_000_003UL * (ulong)(round + 1) + (ulong)i;
                }

                await ch.ExchangeAsync(mine, theirs, ct);
                for (int i = 0; i < Count; i++)
                {
                    errors += theirs[i] == (peer * 1_000_003UL * (ulong)(round + 1)) + (ulong)i ? 0UL : 1UL;
                }
            }

            return errors;
        });

        Assert.Equal(0UL, result.A);
        Assert.Equal(0UL, result.B);
        Assert.Equal(Rounds, result.Cost.Rounds);
    }

    [Fact]
    public void The_frame_pool_reuses_exact_lengths_and_skips_small_frames()
    {
        byte[] large = FramePool.Rent(FramePool.MinimumLength + 17);
        Assert.Equal(FramePool.MinimumLength + 17, large.Length);
        FramePool.Return(large);
        Assert.Same(large, FramePool.Rent(FramePool.MinimumLength + 17));
        byte[] small = FramePool.Rent(100);
        FramePool.Return(small);
        Assert.NotSame(small, FramePool.Rent(100));
    }

    [Fact]
    public async Task Request_and_reply_count_two_rounds_and_three_legs_three()
    {
        var result = await TwoPartySimulation.RunAsync(
            async (ch, ct) =>
            {
                await ch.SendAsync(new ulong[] { 1 }, ct);
                var reply = new ulong[1];
                await ch.ReceiveAsync(reply, ct);
                await ch.SendAsync(new ulong[] { reply[0] + 1 }, ct);
                return reply[0];
            },
            async (ch, ct) =>
            {
                var req = new ulong[1];
                await ch.ReceiveAsync(req, ct);
                await ch.SendAsync(new ulong[] { req[0] * 10 }, ct);
                await ch.ReceiveAsync(req, ct);
                return req[0];
            });

        Assert.Equal(10UL, result.A);
        Assert.Equal(11UL, result.B);
        Assert.Equal(2, result.Cost.A.Rounds);
        Assert.Equal(3, result.Cost.B.Rounds);
        Assert.Equal(3, result.Cost.Rounds);
    }

    [Fact]
    public async Task A_party_that_throws_makes_the_peer_fail_fast_with_a_peer_failed_exception()
    {
        var options = new TwoPartyOptions { ReceiveTimeout = TimeSpan.FromSeconds(20) };
        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<TwoPartyException>(() => TwoPartySimulation.RunAsync<int, int>(
            (ch, ct) => throw new InvalidOperationException("plan step 3: shape [2, 5] does not match [2, 4]"),
            async (ch, ct) =>
            {
                await ch.ReceiveAsync(new ulong[4], ct);
                return 0;
            },
            options));
        watch.Stop();

        Assert.Equal(Party.A, ex.FailedParty);
        Assert.IsType<InvalidOperationException>(ex.InnerException);
        var peer = Assert.IsType<PeerFailedException>(ex.PeerException);
        Assert.Contains("plan step 3", peer.Message, StringComparison.Ordinal);
        Assert.Contains("Party A failed", ex.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), "the peer should fail at once, not after the timeout");
    }

    [Fact]
    public async Task A_silent_peer_gives_a_timeout_exception_not_a_hang()
    {
        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<TwoPartyException>(() => TwoPartySimulation.RunAsync<int, int>(
            async (ch, ct) =>
            {
                await ch.ReceiveAsync(new ulong[2], ct);
                return 1;
            },
            async (ch, ct) =>
            {
                // Stays alive but never sends.
                await Task.Delay(TimeSpan.FromSeconds(1.5), ct);
                return 2;
            },
            Fast));

        Assert.Equal(Party.A, ex.FailedParty);
        var timeout = Assert.IsType<ChannelTimeoutException>(ex.InnerException);
        Assert.Contains("message #0 (16 bytes) from party B", timeout.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_peer_that_closes_gives_a_peer_closed_exception()
    {
        (InProcessChannel a, InProcessChannel b) = InProcessChannel.CreatePair();
        await using var ca = new PartyChannel(Party.A, a, TimeSpan.FromSeconds(20));
        var cb = new PartyChannel(Party.B, b, TimeSpan.FromSeconds(20));
        await cb.DisposeAsync();
        var ex = await Assert.ThrowsAsync<PeerClosedException>(async () => await ca.ReceiveAsync(new byte[8]));
        Assert.Contains("Party B closed", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_message_of_the_wrong_length_is_rejected()
    {
        var ex = await Assert.ThrowsAsync<TwoPartyException>(() => TwoPartySimulation.RunAsync(
            async (ch, ct) =>
            {
                await ch.SendAsync(new ulong[3], ct);
                return 0;
            },
            async (ch, ct) =>
            {
                await ch.ReceiveAsync(new ulong[4], ct);
                return 0;
            },
            Fast));

        Assert.Equal(Party.B, ex.FailedParty);
        var protocol = Assert.IsType<ProtocolException>(ex.InnerException);
        Assert.Contains("received 24 bytes", protocol.Message, StringComparison.Ordinal);
        Assert.Contains("32 bytes", protocol.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Corrupt_frames_are_rejected()
    {
        (InProcessChannel a, InProcessChannel b) = InProcessChannel.CreatePair();
        await using var cb = new PartyChannel(Party.B, b, TimeSpan.FromSeconds(5));
        await a.SendAsync(new byte[] { 1, 2, 3 }, default);
        await Assert.ThrowsAsync<ProtocolException>(async () => await cb.ReceiveAsync(new byte[0]));
        await a.SendAsync(new byte[PartyChannel.HeaderSize], default);
        var ex = await Assert.ThrowsAsync<ProtocolException>(async () => await cb.ReceiveAsync(new byte[0]));
        Assert.Contains("magic", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancellation_is_honoured()
    {
        (InProcessChannel a, _) = InProcessChannel.CreatePair();
        await using var ca = new PartyChannel(Party.A, a, TimeSpan.FromSeconds(20));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await ca.ReceiveAsync(new byte[8], cts.Token));
    }

    [Fact]
    public void Infinite_or_negative_timeouts_are_rejected()
    {
        (InProcessChannel a, _) = InProcessChannel.CreatePair();
        Assert.Throws<ArgumentOutOfRangeException>(() => new PartyChannel(Party.A, a, Timeout.InfiniteTimeSpan));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PartyChannel(Party.A, a, TimeSpan.FromSeconds(-1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PartyChannel((Party)7, a));
    }

    [Fact]
    public async Task Parties_start_on_the_thread_pool_whatever_the_callers_synchronization_context()
    {
        // A context that never runs what is posted to it (a busy UI thread, a test framework's throttled context):
        // a party queued there would never start and the run would hang.
        var dead = new DroppingContext();
        SynchronizationContext? previous = SynchronizationContext.Current;
        Task<TwoPartyResult<bool, bool>> run;
        SynchronizationContext.SetSynchronizationContext(dead);
        try
        {
            run = TwoPartySimulation.RunAsync(async (channel, ct) =>
            {
                bool onPool = Thread.CurrentThread.IsThreadPoolThread && SynchronizationContext.Current is null;
                await channel.ExchangeAsync(new ulong[] { 1 }, new ulong[1], ct).ConfigureAwait(false);
                return onPool;
            });
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        TwoPartyResult<bool, bool> result = await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.A && result.B);
        Assert.Equal(0, dead.Posted);
    }

    private sealed class DroppingContext : SynchronizationContext
    {
        private int _posted;

        public int Posted => _posted;

        public override void Post(SendOrPostCallback d, object? state) => Interlocked.Increment(ref _posted);

        public override void Send(SendOrPostCallback d, object? state) => throw new InvalidOperationException("Send is not expected.");
    }
}
