using HssEe.Core.Tests.Infrastructure;
using HssEe.Ring;

namespace HssEe.Core.Tests.Ring;

public class FixedPointTests
{
    public static TheoryData<string> Features => FeatureTestRunner.AllFeatures;

    [Theory]
    [InlineData(0)]
    [InlineData(12)]
    [InlineData(16)]
    [InlineData(40)]
    public void Vectorised_encode_and_decode_match_the_scalar_definition_for_every_tail(int f)
        => CheckCodecAgainstScalar(f);

    [Theory]
    [MemberData(nameof(Features))]
    public void Codec_paths_agree_with_the_scalar_definition_when_features_are_disabled(string disabledFeature)
        => FeatureTestRunner.RunWithFeatures(CodecBody, disabledFeature);

    [Theory]
    [MemberData(nameof(Features))]
    public void Out_of_range_detection_works_when_features_are_disabled(string disabledFeature)
        => FeatureTestRunner.RunWithFeatures(RangeBody, disabledFeature);

    private static void CodecBody()
    {
        foreach (int f in new[] { 0, 12, 40 })
        {
            CheckCodecAgainstScalar(f);
        }
    }

    private static void RangeBody()
    {
        var format = new FixedPointFormat(12);
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, 3e15f })
        {
            for (int n = 1; n <= 40; n += 13)
            {
                var values = new float[n];
                values[n - 1] = bad;
                var ex = Assert.Throws<ArgumentException>(() => format.Encode(values, new ulong[n]));
                Assert.Contains($"element {n - 1}", ex.Message, StringComparison.Ordinal);
                var doubles = new double[n];
                doubles[n - 1] = bad;
                Assert.Throws<ArgumentException>(() => format.Encode(doubles, new ulong[n]));
            }
        }
    }

    private static void CheckCodecAgainstScalar(int f)
    {
        var format = new FixedPointFormat(f);
        (var prg, string seed) = TestSeeds.Fresh();
        using (prg)
        {
            double range = Math.Min(1e6, format.MaxValueExclusive / 2);
            for (int n = 0; n <= 70; n++)
            {
                var floats = new float[n];
                var doubles = new double[n];
                for (int i = 0; i < n; i++)
                {
                    doubles[i] = ((prg.NextDouble() * 2) - 1) * range;
                    floats[i] = (float)doubles[i];
                }

                var encF = new ulong[n];
                var encD = new ulong[n];
                format.Encode(floats, encF);
                format.Encode(doubles, encD);
                var decF = new float[n];
                var decD = new double[n];
                format.Decode(encD, decF);
                format.Decode(encD, decD);
                for (int i = 0; i < n; i++)
                {
                    Assert.True(format.Encode(floats[i]) == encF[i], $"float encode n={n} i={i} seed {seed}");
                    Assert.True(format.Encode(doubles[i]) == encD[i], $"double encode n={n} i={i} seed {seed}");
                    Assert.True(format.Decode(encD[i]) == decD[i], $"decode n={n} i={i} seed {seed}");
                    Assert.True((float)format.Decode(encD[i]) == decF[i], $"decode float n={n} i={i} seed {seed}");
                    Assert.True(Math.Abs(decD[i] - doubles[i]) <= format.Resolution / 2, $"round trip n={n} i={i} seed {seed}");
                }
            }
        }
    }

    [Fact]
    public void Negative_values_are_twos_complement_and_rounding_is_half_to_even()
    {
        var f = new FixedPointFormat(2); // resolution 0.25
        Assert.Equal(unchecked((ulong)-4L), f.Encode(-1.0));
        Assert.Equal(0UL, f.Encode(0.125)); // 0.5 ulp rounds to even (0)
        Assert.Equal(2UL, f.Encode(0.375)); // 1.5 ulp rounds to even (2)
        Assert.Equal(-1.0, f.Decode(unchecked((ulong)-4L)));
        Assert.Equal(ulong.MaxValue, f.Encode(-0.25));
    }

    [Theory]
    [InlineData(float.NaN, "not finite")]
    [InlineData(float.PositiveInfinity, "not finite")]
    [InlineData(float.NegativeInfinity, "not finite")]
    [InlineData(3e15f, "outside the representable range")]
    [InlineData(-3e15f, "outside the representable range")]
    public void Bad_values_throw_naming_the_index_and_value(float bad, string reason)
    {
        var format = new FixedPointFormat(12);
        for (int n = 1; n <= 40; n += 13)
        {
            int index = n - 1;
            var values = new float[n];
            values[index] = bad;
            var ex = Assert.Throws<ArgumentException>(() => format.Encode(values, new ulong[n]));
            Assert.Contains($"element {index}", ex.Message, StringComparison.Ordinal);
            Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
            Assert.Equal("source", ex.ParamName);
        }
    }

    [Fact]
    public void Range_edges_are_exact()
    {
        var format = new FixedPointFormat(12);
        double max = format.MaxValueExclusive;
        Assert.Equal(unchecked((ulong)long.MinValue), format.Encode(format.MinValue));
        Assert.Throws<ArgumentException>(() => format.Encode(max));
        Assert.Equal((ulong)long.MaxValue - 2047, format.Encode(max - 0.5)); // 2^51 - 0.5 is the largest double below max
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(63)]
    public void Invalid_fractional_bits_are_rejected(int f)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new FixedPointFormat(f));
        Assert.Equal("fractionalBits", ex.ParamName);
    }

    [Fact]
    public void Length_mismatch_is_rejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => FixedPointFormat.Default.Encode(new float[3], new ulong[2]));
        Assert.Equal("destination", ex.ParamName);
    }
}
