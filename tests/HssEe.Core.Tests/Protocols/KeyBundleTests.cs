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

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task In_memory_bundles_are_used_in_place_and_wiped_there_and_other_streams_are_copied(bool exposed)
    {
        // Exposed buffers (a MemoryStream the dealer wrote into) are read in place; a MemoryStream over a caller's
        // array (no exposed buffer) goes through the copying reader and must leave that array as it was.
        const int len = 300;
        var shape = new TensorShape(len);
        var table = new ulong[256];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = (ulong)(i * i) + 0x1234_5678_9000UL;
        }

        Plan plan = new PlanBuilder(12).Relu(shape, 16, "relu").Truncate(shape, 12, 64, "trunc").Lookup(shape, table, 12, "lut")
            .TableActivation(shape, NonLinearFunctions.GeluReference, 29, tableBits: 7, rescale: false, label: "gelu", range: 8, degree: 2).Build();
        var (ka, kb, _) = ProtocolHarness.Deal(plan);
        byte[] originalA = ka.ToArray(), originalB = kb.ToArray();
        MemoryStream sa = exposed ? ka : new MemoryStream(originalA, writable: true);
        MemoryStream sb = exposed ? kb : new MemoryStream(originalB, writable: true);

        var values = new float[len];
        var x = new RingTensor(shape);
        var index = new RingTensor(shape);
        for (int i = 0; i < len; i++)
        {
            values[i] = ((i * 37 % 1580) - 790) / 100f;
            x.Span[i] = Q.Encode(values[i]);
            index.Span[i] = ((ulong)i << 8) | (uint)(i * 7 % 256);
        }

        (Share xa, Share xb) = SecretSharing.Split(x, 12);
        (Share ia, Share ib) = SecretSharing.Split(index, 0);
        var run = await TwoPartySimulation.RunAsync(async (channel, ct) =>
        {
            bool isA = channel.Party == Party.A;
            using var session = new PartySession(plan, channel.Party, isA ? sa : sb, channel);
            Share mine = isA ? xa : xb;
            Share relu = await session.ReluAsync(mine, ct);
            Share truncated = await session.TruncateAsync(mine, ct);
            Share looked = await session.LookupAsync(isA ? ia : ib, ct);
            Share gelu = await session.TableActivationAsync(mine, ct);
            session.Complete();
            return new[] { relu, truncated, looked, gelu };
        });

        RingTensor relu = SecretSharing.Reconstruct(run.A[0], run.B[0]), truncated = SecretSharing.Reconstruct(run.A[1], run.B[1]);
        RingTensor looked = SecretSharing.Reconstruct(run.A[2], run.B[2]), gelu = SecretSharing.Reconstruct(run.A[3], run.B[3]);
        for (int i = 0; i < len; i++)
        {
            long xi = (long)x.Span[i];
            Assert.True(Math.Max(xi, 0) == (long)relu.Span[i], $"relu at {i} (x = {values[i]})");
            long floor = xi >> 12, t = (long)truncated.Span[i];
            Assert.True(t == floor || t == floor + 1, $"truncation at {i}: {t} vs floor {floor}");
            Assert.Equal(table[i * 7 % 256], looked.Span[i]);
            double expected = NonLinearFunctions.GeluReference(xi / 4096.0), got = (long)gelu.Span[i] / Math.Pow(2, run.A[3].FractionalBits);
            Assert.True(Math.Abs(got - expected) < 1e-3, $"gelu at {i}: {got} vs {expected}");
        }

        if (exposed)
        {
            // Every record's payload is zero where it lay; the framing (headers, checksums) is untouched.
            foreach (MemoryStream stream in new[] { ka, kb })
            {
                byte[] buffer = stream.GetBuffer();
                int at = KeyBundleFormat.HeaderSize, records = 0;
                while (true)
                {
                    uint recordIndex = BitConverter.ToUInt32(buffer, at);
                    int length = checked((int)BitConverter.ToUInt64(buffer, at + 8));
                    Assert.True(buffer.AsSpan(at + KeyBundleFormat.RecordHeaderSize, length).IndexOfAnyExcept((byte)0) < 0, $"record {records} was not wiped");
                    at += KeyBundleFormat.RecordHeaderSize + length + KeyBundleFormat.ChecksumSize;
                    records++;
                    if (recordIndex == uint.MaxValue)
                    {
                        break;
                    }
                }

                Assert.Equal(plan.Steps.Length + 1, records);
                Assert.Equal(stream.Length, at);
            }
        }
        else
        {
            Assert.Equal(ka.ToArray(), originalA);
            Assert.Equal(kb.ToArray(), originalB);
        }
    }

    [Fact]
    public async Task Truncated_and_corrupted_in_memory_bundles_are_refused_in_place_too()
    {
        Plan plan = new PlanBuilder(12).Relu(Shape, 16).Square(Shape).Build();
        (Share x, _) = SecretSharing.Split(Q.Encode(new float[8], Shape), 12);
        byte[] bytes = ProtocolHarness.Deal(plan).A.ToArray();

        // Cut inside the first record's payload: the in-place reader must not read past the stream's end.
        var cut = new MemoryStream();
        cut.Write(bytes, 0, KeyBundleFormat.HeaderSize + KeyBundleFormat.RecordHeaderSize + 40);
        cut.Position = 0;
        var (_, c1) = Channel(Party.A);
        using (var session = new PartySession(plan, Party.A, cut, c1))
        {
            Assert.Contains("truncated", (await Assert.ThrowsAsync<KeyBundleException>(() => session.ReluAsync(x))).Message, StringComparison.Ordinal);
        }

        // A flipped payload byte (fresh dealings: reopening one bundle is refused as a replay).
        for (int pos = KeyBundleFormat.HeaderSize + KeyBundleFormat.RecordHeaderSize; pos < KeyBundleFormat.HeaderSize + 400; pos += 61)
        {
            byte[] bad = ProtocolHarness.Deal(plan).A.ToArray();
            bad[pos] ^= 0x04;
            var stream = new MemoryStream();
            stream.Write(bad);
            stream.Position = 0;
            var reader = new KeyBundleReader(stream, Party.A, plan);
            Assert.True(reader.InPlace);
            Assert.Contains("checksum mismatch", Assert.Throws<KeyBundleException>(() => reader.ReadStep(plan.Steps[0])).Message, StringComparison.Ordinal);
        }
    }
}
