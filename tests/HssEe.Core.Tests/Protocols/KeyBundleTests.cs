using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Runtime;
using HssEe.Sharing;

namespace HssEe.Core.Tests.Protocols;

public class KeyBundleTests
{
    private static readonly TensorShape Shape = new(8);
    private static readonly FixedPointFormat Q = new(12);

    private static Plan TwoSteps(string label = "") => new PlanBuilder(12).Multiply(Shape, label).Square(Shape).Build();

    private static (InProcessChannel, PartyChannel) Channel(Party p)
    {
        (InProcessChannel a, InProcessChannel b) = InProcessChannel.CreatePair();
        return p == Party.A ? (b, new PartyChannel(Party.A, a, TimeSpan.FromSeconds(2))) : (a, new PartyChannel(Party.B, b, TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public void The_other_partys_bundle_is_refused()
    {
        Plan plan = TwoSteps();
        var (_, kb, _) = ProtocolHarness.Deal(plan);
        var (_, channel) = Channel(Party.A);
        var ex = Assert.Throws<KeyBundleException>(() => new PartySession(plan, Party.A, kb, channel));
        Assert.Contains("belongs to party B", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bundle_for_another_plan_is_refused()
    {
        var (ka, _, _) = ProtocolHarness.Deal(TwoSteps("one"));
        var (_, channel) = Channel(Party.A);
        var ex = Assert.Throws<KeyBundleException>(() => new PartySession(TwoSteps("two"), Party.A, ka, channel));
        Assert.Contains("generated for plan", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plans_hash_stably_and_differ_by_any_detail()
    {
        Assert.Equal(TwoSteps().HashHex, TwoSteps().HashHex);
        Assert.NotEqual(TwoSteps().HashHex, TwoSteps("x").HashHex);
        Assert.NotEqual(new PlanBuilder(12).Multiply(new TensorShape(8)).Build().HashHex, new PlanBuilder(12).Multiply(new TensorShape(2, 4)).Build().HashHex);
        Assert.NotEqual(new PlanBuilder(12).Square(Shape).Build().HashHex, new PlanBuilder(13).Square(Shape).Build().HashHex);
    }

    [Fact]
    public async Task Truncated_and_corrupted_bundles_are_refused_before_their_keys_are_used()
    {
        Plan plan = TwoSteps();
        var (ka, _, _) = ProtocolHarness.Deal(plan);
        byte[] bytes = ka.ToArray();
        (Share x, _) = SecretSharing.Split(Q.Encode(new float[8], Shape), 12);

        // Truncated inside the first record.
        var (_, ch1) = Channel(Party.A);
        using (var s = new PartySession(plan, Party.A, new MemoryStream(bytes[..(KeyBundleFormat.HeaderSize + 10)]), ch1))
        {
            var ex = await Assert.ThrowsAsync<KeyBundleException>(() => s.MultiplyAsync(x, x));
            Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        }

        // Every single-byte corruption after the header is caught by the chained checksum
        // (a fresh dealing each time: reopening one bundle would be refused as a replay).
        for (int pos = KeyBundleFormat.HeaderSize; pos < bytes.Length; pos += 7)
        {
            byte[] bad = ProtocolHarness.Deal(plan).A.ToArray();
            bad[pos] ^= 0x20;
            var reader = new KeyBundleReader(new MemoryStream(bad), Party.A, plan);
            Assert.Throws<KeyBundleException>(() =>
            {
                foreach (PlanStep step in plan.Steps)
                {
                    using StepKeys keys = reader.ReadStep(step);
                }

                reader.ReadEnd();
            });
        }
    }

    [Fact]
    public void Header_corruption_and_wrong_version_are_named()
    {
        Plan plan = TwoSteps();
        var (ka, _, _) = ProtocolHarness.Deal(plan);
        byte[] bytes = ka.ToArray();
        byte[] magic = (byte[])bytes.Clone();
        magic[0] ^= 1;
        var (_, c1) = Channel(Party.A);
        Assert.Contains("magic", Assert.Throws<KeyBundleException>(() => new PartySession(plan, Party.A, new MemoryStream(magic), c1)).Message, StringComparison.Ordinal);
        byte[] version = (byte[])bytes.Clone();
        version[8] = 9;
        var (_, c2) = Channel(Party.A);
        Assert.Contains("version 9", Assert.Throws<KeyBundleException>(() => new PartySession(plan, Party.A, new MemoryStream(version), c2)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Replaying_a_bundle_is_refused()
    {
        Plan plan = TwoSteps();
        var (ka, _, _) = ProtocolHarness.Deal(plan);
        byte[] bytes = ka.ToArray();
        var (_, c1) = Channel(Party.A);
        using var first = new PartySession(plan, Party.A, new MemoryStream(bytes), c1);
        var (_, c2) = Channel(Party.A);
        var ex = Assert.Throws<KeyBundleException>(() => new PartySession(plan, Party.A, new MemoryStream(bytes), c2));
        Assert.Contains("single-use", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Steps_out_of_plan_order_wrong_shapes_foreign_shares_and_steps_past_the_end_are_refused()
    {
        Plan plan = new PlanBuilder(12).Square(Shape, "sq").Build();
        var (ka, _, _) = ProtocolHarness.Deal(plan);
        var (_, channel) = Channel(Party.A);
        using var s = new PartySession(plan, Party.A, ka, channel);
        (Share xa, Share xb) = SecretSharing.Split(Q.Encode(new float[8], Shape), 12);
        (Share wrong, _) = SecretSharing.Split(Q.Encode(new float[4], new TensorShape(4)), 12);

        Assert.Contains("Plan mismatch at step 0 'sq'", (await Assert.ThrowsAsync<InvalidOperationException>(() => s.MultiplyAsync(xa, xa))).Message, StringComparison.Ordinal);
        Assert.Contains("party B's share", (await Assert.ThrowsAsync<ArgumentException>(() => s.SquareAsync(xb))).Message, StringComparison.Ordinal);
        Assert.Contains("has shape [4]", (await Assert.ThrowsAsync<ArgumentException>(() => s.SquareAsync(wrong))).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => s.Complete());
    }

    [Fact]
    public async Task Evaluation_past_the_end_of_the_plan_is_refused()
    {
        Plan plan = new PlanBuilder(12).Square(Shape).Build();
        var (run, _) = await ProtocolHarness.RunAsync(plan, async (s, ct) =>
        {
            (Share a, Share b) = SecretSharing.Split(Q.Encode(new float[8], Shape), 12);
            Share mine = s.Party == Party.A ? a : b;
            Share sq = await s.SquareAsync(mine, ct);
            var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => s.SquareAsync(mine, ct));
            Assert.Contains("after the last", ex.Message, StringComparison.Ordinal);
            return sq;
        });
        Assert.NotNull(run.A);
    }
}
