using System.Security.Cryptography;
using HssEe.Protocols;

namespace HssEe.Core.Tests.Protocols;

public class PayloadDigestTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(1000)]
    [InlineData(3 << 20)] // large enough for the parallel path
    public void Any_bit_flip_swap_or_truncation_changes_the_digest(int length)
    {
        byte[] data = RandomNumberGenerator.GetBytes(length);
        byte[] digest = PayloadDigest.Compute(data);
        Assert.Equal(digest, PayloadDigest.Compute((byte[])data.Clone()));
        for (int trial = 0; trial < 16 && length > 0; trial++)
        {
            byte[] bad = (byte[])data.Clone();
            int pos = RandomNumberGenerator.GetInt32(length);
            bad[pos] ^= (byte)(1 << RandomNumberGenerator.GetInt32(8));
            Assert.NotEqual(digest, PayloadDigest.Compute(bad));
        }

        if (length >= 64)
        {
            byte[] swapped = (byte[])data.Clone();
            data.AsSpan(0, 16).CopyTo(swapped.AsSpan(32));
            data.AsSpan(32, 16).CopyTo(swapped);
            Assert.NotEqual(digest, PayloadDigest.Compute(swapped));
        }

        if (length > 0)
        {
            Assert.NotEqual(digest, PayloadDigest.Compute(data.AsSpan(0, length - 1)));
            byte[] zeroExtended = [.. data, 0];
            Assert.NotEqual(digest, PayloadDigest.Compute(zeroExtended));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(4096)]
    [InlineData(4097)]
    [InlineData(70_000)]
    [InlineData((5 << 20) + 123)] // parallel path for the one-shot digest
    public void Kernels_pieces_and_the_parallel_path_agree(int length)
    {
        byte[] data = RandomNumberGenerator.GetBytes(length);
        byte[] expected = PayloadDigest.Compute(data, PayloadDigest.Kernel.Scalar);
        foreach (PayloadDigest.Kernel kernel in Enum.GetValues<PayloadDigest.Kernel>())
        {
            if (!PayloadDigest.Supports(kernel))
            {
                continue;
            }

            Assert.Equal(expected, PayloadDigest.Compute(data, kernel));

            // Appended in uneven pieces (chunk-straddling and chunk-aligned).
            var incremental = new PayloadDigest(kernel);
            int offset = 0, piece = 1;
            while (offset < length)
            {
                int take = Math.Min(piece, length - offset);
                incremental.Append(data.AsSpan(offset, take));
                offset += take;
                piece = (piece * 7) + 4096;
            }

            Assert.Equal(expected, incremental.Finish());
        }
    }

    [Fact]
    public void Changing_the_top_bit_of_any_word_of_a_zero_chunk_changes_the_digest()
    {
        byte[] data = new byte[PayloadDigest.ChunkBytes];
        byte[] zero = PayloadDigest.Compute(data, PayloadDigest.Kernel.Scalar);
        for (int word = 0; word < 512; word++)
        {
            byte[] changed = (byte[])data.Clone();
            changed[(8 * word) + 7] = 0x80;
            Assert.NotEqual(zero, PayloadDigest.Compute(changed, PayloadDigest.Kernel.Scalar));
        }
    }
}
