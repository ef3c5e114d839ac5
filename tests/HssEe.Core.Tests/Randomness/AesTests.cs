using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using System.Text;
using HssEe.Randomness;

namespace HssEe.Core.Tests.Randomness;

public class AesTests
{
    // FIPS-197 appendix C.1 (AES-128).
    private static readonly byte[] KatKey = Convert.FromHexString("000102030405060708090a0b0c0d0e0f");
    private static readonly byte[] KatPlain = Convert.FromHexString("00112233445566778899aabbccddeeff");
    private static readonly byte[] KatCipher = Convert.FromHexString("69c4e0d86a7b0430d8cdb78070b4c55a");

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Fips197_known_answer(bool hardware)
    {
        using var aes = new AesCore(KatKey, allowHardware: hardware);
        var blocks = new[] { Vector128.Create(KatPlain) };
        aes.EncryptInPlace(blocks);
        Assert.Equal(KatCipher, MemoryMarshal.AsBytes(blocks.AsSpan()).ToArray());
    }

    [Fact]
    public void AesNi_and_platform_paths_agree_for_every_tail_length()
    {
        using var hw = new AesCore(FixedKeyAes.Key(), allowHardware: true);
        using var sw = new AesCore(FixedKeyAes.Key(), allowHardware: false);
        for (int n = 0; n <= 40; n++)
        {
            byte[] data = RandomNumberGenerator.GetBytes(16 * n);
            var a = MemoryMarshal.Cast<byte, Vector128<byte>>(data.AsSpan()).ToArray();
            var b = (Vector128<byte>[])a.Clone();
            var c = (Vector128<byte>[])a.Clone();
            var d = (Vector128<byte>[])a.Clone();
            hw.EncryptInPlace(a);
            sw.EncryptInPlace(b);
            Assert.Equal(b, a);
            hw.HashInPlace(c);
            sw.HashInPlace(d);
            Assert.Equal(d, c);
        }
    }

    [Fact]
    public void Fused_hash_xor_sum_equals_the_unfused_definition_on_both_paths()
    {
        using var hw = new AesCore(FixedKeyAes.Key(), allowHardware: true);
        using var sw = new AesCore(FixedKeyAes.Key(), allowHardware: false);
        foreach (int n in new[] { 0, 1, 7, 8, 9, 63, 64, 65, 1000 })
        {
            byte[] data = RandomNumberGenerator.GetBytes(16 * n);
            var blocks = MemoryMarshal.Cast<byte, Vector128<byte>>(data.AsSpan()).ToArray();
            ulong first = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)), high = 0x1234;
            var reference = Vector128<byte>.Zero;
            var tweaked = new Vector128<byte>[n];
            for (int i = 0; i < n; i++)
            {
                tweaked[i] = blocks[i] ^ Vector128.Create(first + (ulong)i, high).AsByte();
            }

            sw.HashInPlace(tweaked);
            foreach (Vector128<byte> v in tweaked)
            {
                reference ^= v;
            }

            Assert.Equal(reference, hw.HashXorSum(blocks, first, high));
            Assert.Equal(reference, sw.HashXorSum(blocks, first, high));
        }
    }

    [Fact]
    public void Fixed_key_is_the_documented_constant()
    {
        byte[] expected = SHA256.HashData(Encoding.ASCII.GetBytes("HssEe/FixedKeyAes/v1"))[..16];
        Assert.Equal(expected, FixedKeyAes.Key());
    }

    [Fact]
    public void Hash_matches_an_independent_mmo_sigma_computation()
    {
        // H(x) = AES_k(sigma(x)) XOR sigma(x), sigma(xL || xR) = (xL XOR xR) || xL, xL = high 64 bits.
        using var reference = System.Security.Cryptography.Aes.Create();
        reference.Key = FixedKeyAes.Key();
        byte[] x = RandomNumberGenerator.GetBytes(16);
        ulong lo = BitConverter.ToUInt64(x, 0), hi = BitConverter.ToUInt64(x, 8);
        byte[] sigma = [.. BitConverter.GetBytes(hi), .. BitConverter.GetBytes(hi ^ lo)];
        byte[] enc = reference.EncryptEcb(sigma, PaddingMode.None);
        byte[] expected = enc.Zip(sigma, (e, s) => (byte)(e ^ s)).ToArray();

        var blocks = new[] { Vector128.Create(x) };
        FixedKeyAes.HashInPlace(blocks);
        Assert.Equal(expected, MemoryMarshal.AsBytes(blocks.AsSpan()).ToArray());
    }
}
