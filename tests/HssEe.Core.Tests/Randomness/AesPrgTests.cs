using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using HssEe.Core.Tests.Infrastructure;
using HssEe.Randomness;

namespace HssEe.Core.Tests.Randomness;

public class AesPrgTests
{
    public static TheoryData<string> AesFeatures => new() { FeatureTestRunner.None, FeatureTestRunner.Aes, FeatureTestRunner.HwIntrinsic };

    [Theory]
    [MemberData(nameof(AesFeatures))]
    public void Prg_output_is_identical_with_and_without_aes_ni(string disabledFeature)
        => FeatureTestRunner.RunWithFeatures(PrgAgainstIndependentAesBody, disabledFeature);

    private static void PrgAgainstIndependentAesBody()
    {
        Assert.Equal(FeatureTestRunner.CurrentFeature is null or FeatureTestRunner.None, FixedKeyAes.UsesAesNi && System.Runtime.Intrinsics.X86.Aes.IsSupported);
        byte[] seed = RandomNumberGenerator.GetBytes(16);
        const int Blocks = 300;
        var output = new byte[16 * Blocks];
        using (AesPrg prg = AesPrg.CreateDeterministicForTesting(seed))
        {
            prg.Fill(output.AsSpan(0, 5));
            prg.Fill(output.AsSpan(5));
        }

        // Independent reference: platform AES-ECB with the published fixed key, MMO^sigma by hand.
        using var aes = System.Security.Cryptography.Aes.Create();
        aes.Key = FixedKeyAes.Key();
        ulong seedLo = BitConverter.ToUInt64(seed, 0), seedHi = BitConverter.ToUInt64(seed, 8);
        for (int i = 0; i < Blocks; i++)
        {
            ulong lo = seedLo ^ (ulong)i, hi = seedHi;
            byte[] sigma = [.. BitConverter.GetBytes(hi), .. BitConverter.GetBytes(hi ^ lo)];
            byte[] enc = aes.EncryptEcb(sigma, PaddingMode.None);
            for (int j = 0; j < 16; j++)
            {
                Assert.True((byte)(enc[j] ^ sigma[j]) == output[(16 * i) + j], $"block {i} byte {j}, seed {Convert.ToHexString(seed)}");
            }
        }
    }

    [Fact]
    public void Stream_is_the_fixed_key_hash_of_seed_xor_counter()
    {
        byte[] seed = RandomNumberGenerator.GetBytes(16);
        using AesPrg prg = AesPrg.CreateDeterministicForTesting(seed);
        var output = new byte[16 * 5];
        prg.Fill(output);

        var expected = new Vector128<byte>[5];
        for (int i = 0; i < 5; i++)
        {
            expected[i] = (Vector128.Create(seed).AsUInt64() ^ Vector128.CreateScalar((ulong)i)).AsByte();
        }

        FixedKeyAes.HashInPlacePortable(expected);
        Assert.Equal(MemoryMarshal.AsBytes(expected.AsSpan()).ToArray(), output);
    }

    [Fact]
    public void Piecewise_fills_equal_one_fill_across_buffer_and_parallel_boundaries()
    {
        byte[] seed = RandomNumberGenerator.GetBytes(16);
        const int Total = (1 << 20) + 12345; // crosses the parallel threshold
        var whole = new byte[Total];
        using (AesPrg prg = AesPrg.CreateDeterministicForTesting(seed))
        {
            prg.Fill(whole);
        }

        var pieces = new byte[Total];
        using (AesPrg prg = AesPrg.CreateDeterministicForTesting(seed))
        {
            int[] sizes = [1, 7, 15, 16, 17, 1000, 1023, 1025, 3, (1 << 20) + 64];
            int offset = 0, i = 0;
            while (offset < Total)
            {
                int len = Math.Min(sizes[i++ % sizes.Length], Total - offset);
                prg.Fill(pieces.AsSpan(offset, len));
                offset += len;
            }
        }

        Assert.True(whole.AsSpan().SequenceEqual(pieces), "seed " + Convert.ToHexString(seed));
    }

    [Fact]
    public void Fresh_generators_differ_and_use_real_seeds()
    {
        using AesPrg a = AesPrg.Create();
        using AesPrg b = AesPrg.Create();
        Assert.NotEqual(a.NextUInt64(), b.NextUInt64());
    }

    [Fact]
    public void Bounded_sampling_is_in_range_and_unbiased()
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using (prg)
        {
            const int Bins = 10, Samples = 100_000;
            var counts = new int[Bins];
            for (int i = 0; i < Samples; i++)
            {
                ulong v = prg.NextUInt64(Bins);
                Assert.True(v < Bins);
                counts[v]++;
            }

            double expected = Samples / (double)Bins;
            double chi2 = counts.Sum(c => (c - expected) * (c - expected) / expected);
            // df = 9: P(chi2 > 60) < 1e-9.
            Assert.True(chi2 < 60, $"chi2 = {chi2}, seed {seed}");
            Assert.Throws<ArgumentOutOfRangeException>(() => prg.NextUInt64(0));
            Assert.Throws<ArgumentOutOfRangeException>(() => prg.NextInt32(0));
        }
    }

    [Fact]
    public void Doubles_and_gaussians_have_the_right_moments()
    {
        (AesPrg prg, string seed) = TestSeeds.Fresh();
        using (prg)
        {
            const int N = 200_000;
            double sum = 0, sumSq = 0;
            for (int i = 0; i < N; i++)
            {
                double u = prg.NextDouble();
                Assert.InRange(u, 0.0, 1.0 - 1e-18);
                double g = prg.NextGaussian();
                sum += g;
                sumSq += g * g;
            }

            Assert.True(Math.Abs(sum / N) < 0.02, $"mean {sum / N}, seed {seed}");
            Assert.True(Math.Abs((sumSq / N) - 1) < 0.03, $"variance {sumSq / N}, seed {seed}");
        }
    }

    [Fact]
    public void Dispose_wipes_and_refuses_use_and_ToString_hides_the_seed()
    {
        byte[] seed = Convert.FromHexString("00112233445566778899AABBCCDDEEFF");
        AesPrg prg = AesPrg.CreateDeterministicForTesting(seed);
        string text = prg.ToString();
        Assert.DoesNotContain("0011", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("AABB", text, StringComparison.OrdinalIgnoreCase);
        prg.Dispose();
        Assert.Throws<ObjectDisposedException>(() => prg.NextUInt64());
    }

    [Fact]
    public void Wrong_seed_length_is_rejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => AesPrg.CreateDeterministicForTesting(new byte[15]));
        Assert.Equal("seed", ex.ParamName);
    }
}
