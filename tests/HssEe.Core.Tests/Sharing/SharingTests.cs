using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Core.Tests.Sharing;

public class SharingTests
{
    [Fact]
    public void Split_then_reconstruct_is_the_identity()
    {
        (var prg, string seed) = TestSeeds.Fresh();
        using (prg)
        {
            var secret = new RingTensor(new TensorShape(3, 17));
            prg.Fill(secret.Span);
            (Share a, Share b) = SecretSharing.Split(secret, 12);
            Assert.Equal(Party.A, a.Party);
            Assert.Equal(Party.B, b.Party);
            Assert.Equal(secret.Span.ToArray(), SecretSharing.Reconstruct(a, b).Span.ToArray());
            Assert.Equal(secret.Span.ToArray(), SecretSharing.Reconstruct(b, a).Span.ToArray());
            Assert.False(a.Value.Span.SequenceEqual(secret.Span), "share A equals the secret, seed " + seed);
        }
    }

    [Fact]
    public void Each_single_share_is_uniform_bytes_chi_square()
    {
        // A highly structured secret: all zeros except a pattern. Each share alone must look uniform.
        const int Elements = 1 << 17; // 1 MiB of share bytes
        var secret = new RingTensor(new TensorShape(Elements));
        for (int i = 0; i < Elements; i++)
        {
            secret.Span[i] = (ulong)(i % 3);
        }

        (Share a, Share b) = SecretSharing.Split(secret, 0);
        foreach (Share s in new[] { a, b })
        {
            var counts = new long[256];
            foreach (byte x in System.Runtime.InteropServices.MemoryMarshal.AsBytes(s.Value.Span))
            {
                counts[x]++;
            }

            double expected = Elements * 8 / 256.0;
            double chi2 = counts.Sum(c => (c - expected) * (c - expected) / expected);
            // 255 degrees of freedom: mean 255, sd 22.6. 500 is more than 10 sd away (p < 1e-20), so this never flakes.
            Assert.True(chi2 < 500, $"party {s.Party}: chi2 = {chi2}");
        }
    }

    [Fact]
    public void Local_linear_operations_reconstruct_to_the_plain_result()
    {
        var format = new FixedPointFormat(12);
        float[] x = [1.5f, -2.25f, 3f, 0.5f];
        float[] y = [0.25f, 4f, -1f, 2f];
        var shape = new TensorShape(4);
        (Share xa, Share xb) = SecretSharing.Split(x, shape, format);
        (Share ya, Share yb) = SecretSharing.Split(y, shape, format);

        float[] sum = SecretSharing.ReconstructToSingle(xa.Add(ya), xb.Add(yb));
        float[] diff = SecretSharing.ReconstructToSingle(xa.Subtract(ya), xb.Subtract(yb));
        float[] neg = SecretSharing.ReconstructToSingle(xa.Negate(), xb.Negate());
        float[] times3 = SecretSharing.ReconstructToSingle(xa.MultiplyPublic(-3), xb.MultiplyPublic(-3));
        RingTensor c = format.Encode([10f, 20f, 30f, 40f], shape);
        float[] plusC = SecretSharing.ReconstructToSingle(xa.AddPublic(c), xb.AddPublic(c));
        Share sa = xa.MultiplyPublic(0.5, format), sb = xb.MultiplyPublic(0.5, format);
        Assert.Equal(24, sa.FractionalBits);
        float[] half = SecretSharing.ReconstructToSingle(sa, sb);

        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(x[i] + y[i], sum[i]);
            Assert.Equal(x[i] - y[i], diff[i]);
            Assert.Equal(-x[i], neg[i]);
            Assert.Equal(-3 * x[i], times3[i]);
            Assert.Equal(x[i] + ((i + 1) * 10), plusC[i]);
            Assert.Equal(x[i] / 2, half[i]);
        }
    }

    [Fact]
    public void Public_weight_matmul_on_shares_matches_the_float_product()
    {
        var format = new FixedPointFormat(12);
        (var prg, string seed) = TestSeeds.Fresh();
        using (prg)
        {
            const int M = 3, K = 17, N = 5;
            var x = new float[M * K];
            var w = new float[N * K];
            for (int i = 0; i < x.Length; i++)
            {
                x[i] = (float)((prg.NextDouble() * 4) - 2);
            }

            for (int i = 0; i < w.Length; i++)
            {
                w[i] = (float)(prg.NextDouble() - 0.5);
            }

            (Share xa, Share xb) = SecretSharing.Split(x, new TensorShape(M, K), format);
            RingTensor wq = format.Encode(w, new TensorShape(N, K));
            Share ya = xa.MatMulPublic(wq, format.FractionalBits);
            Share yb = xb.MatMulPublic(wq, format.FractionalBits);
            Assert.Equal(new TensorShape(M, N), ya.Shape);
            Assert.Equal(24, ya.FractionalBits);
            float[] y = SecretSharing.ReconstructToSingle(ya, yb);
            for (int m = 0; m < M; m++)
            {
                for (int n = 0; n < N; n++)
                {
                    double expected = 0;
                    for (int k = 0; k < K; k++)
                    {
                        expected += x[(m * K) + k] * (double)w[(n * K) + k];
                    }

                    // Encoding error: |x| <= 2, |w| <= 0.5, each rounded to 2^-13 => K * (2 * 2^-13 + 0.5 * 2^-13).
                    Assert.True(Math.Abs(expected - y[(m * N) + n]) <= K * 2.5 * Math.ScaleB(1, -13) + 1e-5, $"({m},{n}) seed {seed}");
                }
            }
        }
    }

    [Fact]
    public void Misuse_is_refused_with_clear_messages()
    {
        var shape = new TensorShape(2, 2);
        (Share a, Share b) = SecretSharing.Split(new RingTensor(shape), 12);
        (Share a2, _) = SecretSharing.Split(new RingTensor(new TensorShape(4)), 12);
        (Share a3, Share b3) = SecretSharing.Split(new RingTensor(shape), 24);

        var parties = Assert.Throws<ArgumentException>(() => a.Add(b));
        Assert.Contains("party A", parties.Message, StringComparison.Ordinal);
        var shapes = Assert.Throws<ArgumentException>(() => a.Add(a2));
        Assert.Contains("[2, 2]", shapes.Message, StringComparison.Ordinal);
        Assert.Contains("[4]", shapes.Message, StringComparison.Ordinal);
        Assert.Contains("f=24", Assert.Throws<ArgumentException>(() => a.Add(a3)).Message, StringComparison.Ordinal);
        Assert.Contains("both are party A", Assert.Throws<ArgumentException>(() => SecretSharing.Reconstruct(a, a)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => SecretSharing.Reconstruct(a, b3));
        var mm = Assert.Throws<ArgumentException>(() => a.MatMulPublic(new RingTensor(new TensorShape(3, 5)), 12));
        Assert.Contains("[3, 5]", mm.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => a3.MultiplyPublic(1.0, new FixedPointFormat(40)));
    }

    [Fact]
    public void Dispose_wipes_and_ToString_hides_values()
    {
        var secret = RingTensor.FromSpan([123456789], new TensorShape(1));
        (Share a, _) = SecretSharing.Split(secret, 0);
        RingTensor storage = a.Value;
        Assert.Equal("Share(A, [1], f=0)", a.ToString());
        a.Dispose();
        Assert.Equal(0UL, storage.Span[0]);
        Assert.Throws<ObjectDisposedException>(() => a.Value);
    }
}
