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
}
