using System.Buffers.Binary;
using System.Security.Cryptography;
using HssEe.Fss;
using HssEe.Randomness;
using static HssEe.Core.Tests.Fss.DcfTestSupport;

namespace HssEe.Core.Tests.Fss;

/// <summary>Serialisation, misuse and key-size tests for DCF and DPF key collections.</summary>
public class DcfKeyFormatTests
{
    private const int HeaderSize = 40;
    private const int ChecksumSize = 32;

    private static (DcfKeyCollection A, DcfKeyCollection B) SmallDcf(AesPrg prg, int n = 5, int ell = 13, int m = 2, int count = 3) =>
        Dcf.GenerateBatch(new FssKeyParameters(n, ell, m), RandomPoints(prg, count, n), RandomWords(prg, count * m), prg);

    private static (DpfKeyCollection A, DpfKeyCollection B) SmallDpf(AesPrg prg, int n = 5, int ell = 13, int m = 2, int count = 3) =>
        Dpf.GenerateBatch(new FssKeyParameters(n, ell, m), RandomPoints(prg, count, n), RandomWords(prg, count * m), prg);

    private static FssKeyFormatException Rejected(byte[] data, Party? party = null, FssKeyParameters? parameters = null, bool dpf = false) =>
        dpf
            ? Assert.Throws<FssKeyFormatException>(() => DpfKeyCollection.Read(data, party, parameters))
            : Assert.Throws<FssKeyFormatException>(() => DcfKeyCollection.Read(data, party, parameters));

    private static void Rehash(byte[] data)
    {
        int body = data.Length - ChecksumSize;
        SHA256.HashData(data.AsSpan(0, body), data.AsSpan(body));
    }

    [Fact]
    public void Dcf_round_trip_through_stream_and_span_gives_identical_keys()
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using var _ = prg;
        var p = new FssKeyParameters(40, 64, 1);
        ulong[] alphas = RandomPoints(prg, 100, 40);
        (DcfKeyCollection a, DcfKeyCollection b) = Dcf.GenerateBatch(p, alphas, [1UL], prg);
        using (a)
        using (b)
        {
            using var stream = new MemoryStream();
            a.Write(stream);
            Assert.Equal(a.SerializedSize, stream.Length);
            Assert.Equal(HeaderSize + (100L * a.KeySize) + ChecksumSize, a.SerializedSize);
            stream.WriteByte(0x5A); // the stream reader stops after the checksum
            stream.Position = 0;
            using DcfKeyCollection fromStream = DcfKeyCollection.Read(stream, Party.A, p);
            Assert.Equal(a.SerializedSize, stream.Position);
            using DcfKeyCollection fromSpan = DcfKeyCollection.Read(b.ToArray(), Party.B, p);
            using FssKeyCollection generic = FssKeyCollection.Read(b.ToArray());
            Assert.IsType<DcfKeyCollection>(generic);
            Assert.Equal(Party.A, fromStream.Party);
            Assert.Equal(Party.B, fromSpan.Party);
            Assert.Equal(p, fromSpan.Parameters);
            Assert.Equal(100, fromSpan.Count);
            Assert.Equal(a.ToArray(), fromStream.ToArray());

            ulong[] points = RandomPoints(prg, 100, 40);
            var oa = new ulong[100];
            var ob = new ulong[100];
            Dcf.EvaluateBatch(fromStream, points, oa);
            Dcf.EvaluateBatch(fromSpan, points, ob);
            for (int k = 0; k < 100; k++)
            {
                Assert.True(oa[k] + ob[k] == (points[k] < alphas[k] ? 1UL : 0UL), $"key {k} (seed {seed})");
            }
        }
    }

    [Fact]
    public void Dpf_round_trip_gives_identical_keys()
    {
        using AesPrg prg = AesPrg.Create();
        (DpfKeyCollection a, DpfKeyCollection b) = SmallDpf(prg, 12, 64, 3, 20);
        using (a)
        using (b)
        {
            using DpfKeyCollection back = DpfKeyCollection.Read(a.ToArray(), Party.A, a.Parameters);
            Assert.Equal(a.ToArray(), back.ToArray());
            using FssKeyCollection generic = FssKeyCollection.Read(new MemoryStream(b.ToArray()), Party.B);
            Assert.IsType<DpfKeyCollection>(generic);
            Assert.Equal(FssKeyKind.Dpf, generic.Kind);
        }
    }

    [Fact]
    public void Wrong_party_is_rejected_when_the_reader_states_its_party()
    {
        using AesPrg prg = AesPrg.Create();
        (DcfKeyCollection a, DcfKeyCollection b) = SmallDcf(prg);
        using (a)
        using (b)
        {
            FssKeyFormatException e = Rejected(b.ToArray(), Party.A);
            Assert.Equal(FssKeyFormatError.WrongParty, e.Error);
            Assert.Contains("party B", e.Message, StringComparison.Ordinal);
            Assert.Contains("party A", e.Message, StringComparison.Ordinal);
            e = Assert.Throws<FssKeyFormatException>(() => DcfKeyCollection.Read(new MemoryStream(a.ToArray()), Party.B));
            Assert.Equal(FssKeyFormatError.WrongParty, e.Error);
        }
    }

    [Fact]
    public void Wrong_kind_version_and_parameters_are_rejected()
    {
        using AesPrg prg = AesPrg.Create();
        (DcfKeyCollection a, DcfKeyCollection b) = SmallDcf(prg);
        (DpfKeyCollection pa, DpfKeyCollection pb) = SmallDpf(prg);
        using (a)
        using (b)
        using (pa)
        using (pb)
        {
            FssKeyFormatException e = Rejected(pa.ToArray());
            Assert.Equal(FssKeyFormatError.WrongKind, e.Error);
            Assert.Contains("Dpf", e.Message, StringComparison.Ordinal);
            Assert.Equal(FssKeyFormatError.WrongKind, Rejected(a.ToArray(), dpf: true).Error);

            byte[] data = a.ToArray();
            BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(8), 2);
            Rehash(data);
            e = Rejected(data);
            Assert.Equal(FssKeyFormatError.UnsupportedVersion, e.Error);
            Assert.Contains("version 2", e.Message, StringComparison.Ordinal);

            e = Rejected(a.ToArray(), Party.A, new FssKeyParameters(6, 13, 2));
            Assert.Equal(FssKeyFormatError.WrongInputBits, e.Error);
            Assert.Contains("n=5", e.Message, StringComparison.Ordinal);
            Assert.Contains("n=6", e.Message, StringComparison.Ordinal);
            Assert.Equal(FssKeyFormatError.WrongOutputBits, Rejected(a.ToArray(), Party.A, new FssKeyParameters(5, 64, 2)).Error);
            Assert.Equal(FssKeyFormatError.WrongPayloadLength, Rejected(a.ToArray(), Party.A, new FssKeyParameters(5, 13, 1)).Error);

            data = a.ToArray();
            data[0] ^= 1;
            Assert.Equal(FssKeyFormatError.BadMagic, Rejected(data).Error);
        }
    }

    [Fact]
    public void Truncated_and_padded_data_are_rejected()
    {
        using AesPrg prg = AesPrg.Create();
        (DcfKeyCollection a, DcfKeyCollection b) = SmallDcf(prg);
        using (a)
        using (b)
        {
            byte[] full = a.ToArray();
            foreach (int length in new[] { 0, 1, 20, HeaderSize - 1, HeaderSize, HeaderSize + 1, HeaderSize + a.KeySize, full.Length - ChecksumSize, full.Length - 1 })
            {
                byte[] cut = full.AsSpan(0, length).ToArray();
                FssKeyFormatException e = Rejected(cut);
                Assert.True(e.Error == FssKeyFormatError.Truncated, $"length {length}: {e.Error} {e.Message}");
                Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
                e = Assert.Throws<FssKeyFormatException>(() => DcfKeyCollection.Read(new MemoryStream(cut)));
                Assert.True(e.Error == FssKeyFormatError.Truncated, $"stream length {length}: {e.Error} {e.Message}");
                e = Assert.Throws<FssKeyFormatException>(() => DcfKeyCollection.Read(new NonSeekableStream(cut)));
                Assert.True(e.Error == FssKeyFormatError.Truncated, $"non-seekable length {length}: {e.Error} {e.Message}");
            }

            byte[] padded = [.. full, 0];
            Assert.Equal(FssKeyFormatError.LengthMismatch, Rejected(padded).Error);
        }
    }

    [Fact]
    public void Every_corrupted_byte_is_detected()
    {
        using AesPrg prg = AesPrg.Create();
        (DcfKeyCollection a, DcfKeyCollection b) = SmallDcf(prg, n: 3, ell: 7, m: 1, count: 2);
        (DpfKeyCollection pa, DpfKeyCollection pb) = SmallDpf(prg, n: 9, ell: 64, m: 1, count: 2);
        using (a)
        using (b)
        using (pa)
        using (pb)
        {
            foreach ((byte[] original, bool dpf) in new[] { (a.ToArray(), false), (pb.ToArray(), true) })
            {
                for (int i = 0; i < original.Length; i++)
                {
                    foreach (byte flip in new byte[] { 0x01, 0x80 })
                    {
                        byte[] data = (byte[])original.Clone();
                        data[i] ^= flip;
                        FssKeyFormatException e = Rejected(data, dpf: dpf);
                        if (i >= HeaderSize)
                        {
                            Assert.True(e.Error == FssKeyFormatError.ChecksumMismatch, $"byte {i} flip {flip:X2}: {e.Error} {e.Message}");
                            Assert.Contains("corrupted", e.Message, StringComparison.Ordinal);
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void Header_fields_are_where_the_format_says()
    {
        using AesPrg prg = AesPrg.Create();
        (DcfKeyCollection a, DcfKeyCollection b) = SmallDcf(prg, n: 33, ell: 17, m: 4, count: 5);
        using (a)
        using (b)
        {
            byte[] data = b.ToArray();
            Assert.Equal("HssEeFSS"u8.ToArray(), data[..8]);
            Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(8)));
            Assert.Equal((byte)FssKeyKind.Dcf, data[10]);
            Assert.Equal(1, data[11]);
            Assert.Equal(33, data[12]);
            Assert.Equal(17, data[13]);
            Assert.Equal(4u, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(16)));
            Assert.Equal(5u, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(20)));
            Assert.Equal((uint)b.KeySize, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(24)));
            Assert.Equal(5UL * (ulong)b.KeySize, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(32)));
            Assert.Equal(SHA256.HashData(data.AsSpan(0, data.Length - ChecksumSize)), data[^ChecksumSize..]);
        }
    }

    public static TheoryData<int, int, int> SizeGrid()
    {
        var data = new TheoryData<int, int, int>();
        foreach (int n in new[] { 1, 7, 16, 40, 64 })
        {
            foreach ((int ell, int m) in new[] { (64, 1), (1, 1), (7, 3), (32, 2), (64, 5), (13, 10) })
            {
                data.Add(n, ell, m);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SizeGrid))]
    public void Key_sizes_equal_the_documented_formulas_and_stay_within_the_papers_bounds(int n, int ell, int m)
    {
        using AesPrg prg = AesPrg.Create();
        var p = new FssKeyParameters(n, ell, m);
        const long Lambda = 128;

        // DCF: 16(n + 1) + ceil(((n + 1) m ell + n) / 8); paper: n(lambda + 2 + m ell) + lambda + m ell bits.
        long dcfFormula = (16L * (n + 1)) + ((((n + 1L) * m * ell) + n + 7) / 8);
        long dcfPaperBytes = ((n * (Lambda + 2 + ((long)m * ell))) + Lambda + ((long)m * ell) + 7) / 8;
        (DcfKeyCollection a, DcfKeyCollection b) = Dcf.GenerateBatch(p, [p.InputMask / 3], new ulong[m], prg);
        using (a)
        using (b)
        {
            Assert.Equal(dcfFormula, a.KeySize);
            Assert.Equal(dcfFormula, b.KeySize);
            Assert.Equal(dcfFormula, Dcf.KeySize(p));
            Assert.True(a.KeySize <= dcfPaperBytes, $"DCF {p}: {a.KeySize} > paper {dcfPaperBytes}");
            Assert.Equal(HeaderSize + dcfFormula + ChecksumSize, a.ToArray().Length);
        }

        // DPF: d = max{d <= n : 2^d m ell <= 128}; 16(n - d + 1) + ceil((2^d m ell + n - d) / 8);
        // paper: lambda + (n - d)(lambda + 2) + 2^d m ell bits.
        int d = 0;
        while (d < n && ((long)m * ell << (d + 1)) <= 128)
        {
            d++;
        }

        long leaf = (long)m * ell << d;
        long dpfFormula = (16L * (n - d + 1)) + ((leaf + n - d + 7) / 8);
        long dpfPaperBytes = (Lambda + ((n - d) * (Lambda + 2)) + leaf + 7) / 8;
        (DpfKeyCollection pa, DpfKeyCollection pb) = Dpf.GenerateBatch(p, [p.InputMask / 3], new ulong[m], prg);
        using (pa)
        using (pb)
        {
            Assert.Equal(d, Dpf.EarlyTerminationLevels(p));
            Assert.Equal(dpfFormula, pa.KeySize);
            Assert.Equal(dpfFormula, Dpf.KeySize(p));
            Assert.True(pa.KeySize <= dpfPaperBytes, $"DPF {p}: {pa.KeySize} > paper {dpfPaperBytes}");
            Assert.Equal(HeaderSize + dpfFormula + ChecksumSize, pa.SerializedSize);
        }
    }

    [Fact]
    public void Documented_examples_and_block_counts_hold()
    {
        Assert.Equal(1568, Dcf.KeySize(new FssKeyParameters(64)));
        Assert.Equal(989, Dcf.KeySize(new FssKeyParameters(40)));
        Assert.Equal(410, Dcf.KeySize(new FssKeyParameters(16)));
        Assert.Equal(274, Dpf.KeySize(new FssKeyParameters(16)));
        Assert.Equal(1048, Dpf.KeySize(new FssKeyParameters(64)));
        Assert.Equal(128, Dcf.AesBlocksPerEvaluation(new FssKeyParameters(64)));
        Assert.Equal(80, Dcf.AesBlocksPerEvaluation(new FssKeyParameters(40)));
        Assert.Equal(32, Dcf.AesBlocksPerEvaluation(new FssKeyParameters(16)));
        Assert.Equal(384, Dcf.AesBlocksPerKeyGeneration(new FssKeyParameters(64)));
        Assert.Equal((10 * 3) + 2, Dcf.AesBlocksPerEvaluation(new FssKeyParameters(10, 64, 3)));
    }

    [Theory]
    [InlineData(40, 64, 1)]
    [InlineData(17, 9, 3)]
    [InlineData(20, 64, 2)]
    public void Raw_key_material_generated_into_buffers_equals_the_collections_and_wraps_back(int n, int ell, int m)
    {
        byte[] seed = RandomNumberGenerator.GetBytes(16);
        string hex = Convert.ToHexString(seed);
        var p = new FssKeyParameters(n, ell, m);
        const int Count = 37;
        using AesPrg inputs = AesPrg.CreateDeterministicForTesting(seed);
        ulong[] alphas = RandomPoints(inputs, Count, n);
        ulong[] betas = RandomWords(inputs, Count * m);
        foreach (bool dpf in new[] { false, true })
        {
            using AesPrg prg1 = AesPrg.CreateDeterministicForTesting(seed);
            using AesPrg prg2 = AesPrg.CreateDeterministicForTesting(seed);
            FssKeyCollection a, b;
            int keySize = dpf ? Dpf.KeySize(p) : Dcf.KeySize(p);
            byte[] rawA = new byte[Count * keySize];
            byte[] rawB = new byte[Count * keySize];
            rawA.AsSpan().Fill(0xAB); // stale contents must not leak into the keys
            if (dpf)
            {
                (a, b) = Dpf.GenerateBatch(p, alphas, betas, prg1);
                Dpf.GenerateBatch(p, alphas, betas, prg2, rawA, rawB);
            }
            else
            {
                (a, b) = Dcf.GenerateBatch(p, alphas, betas, prg1);
                Dcf.GenerateBatch(p, alphas, betas, prg2, rawA, rawB);
            }

            using (a)
            using (b)
            {
                byte[] copyA = new byte[a.KeyMaterialSize];
                a.CopyKeyMaterialTo(copyA);
                Assert.True(copyA.SequenceEqual(rawA), $"dpf={dpf} (seed {hex})");
                using FssKeyCollection wrapped = dpf ? DpfKeyCollection.FromKeyMaterial(Party.B, p, rawB) : DcfKeyCollection.FromKeyMaterial(Party.B, p, rawB);
                Assert.Equal(b.ToArray(), wrapped.ToArray());
                Assert.Equal(Count, wrapped.Count);
            }
        }
    }

    [Fact]
    public void Raw_key_material_misuse_is_rejected()
    {
        using AesPrg prg = AesPrg.Create();
        var p = new FssKeyParameters(12, 64, 1);
        int size = Dcf.KeySize(p);
        byte[] buffer = new byte[4 * size];
        Assert.Throws<ArgumentException>(() => Dcf.GenerateBatch(p, [1, 2], [1UL], prg, buffer.AsSpan(0, size), buffer.AsSpan(size, size * 2)));
        Assert.Throws<ArgumentException>(() => Dcf.GenerateBatch(p, [1, 2], [1UL], prg, buffer.AsSpan(0, 2 * size), buffer.AsSpan(size, 2 * size)));
        Assert.Throws<ArgumentException>(() => Dpf.GenerateBatch(p, [1, 2], [1UL], prg, buffer.AsSpan(0, 2 * size), buffer.AsSpan(size, 2 * size)));
        Assert.Throws<ArgumentException>(() => DcfKeyCollection.FromKeyMaterial(Party.A, p, buffer.AsSpan(0, size + 1)));
        Assert.Throws<ArgumentException>(() => DpfKeyCollection.FromKeyMaterial(Party.A, default, buffer));
        Assert.Throws<ArgumentOutOfRangeException>(() => DcfKeyCollection.FromKeyMaterial((Party)7, p, buffer));
    }

    /// <summary>A read-only stream that cannot seek (so the reader cannot check the length up front).</summary>
    private sealed class NonSeekableStream(byte[] data) : Stream
    {
        private readonly MemoryStream _inner = new(data);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 7));

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
