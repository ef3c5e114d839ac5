using System.Buffers;
using HssEe.Randomness;

namespace HssEe.Ee;

/// <summary>Sampling primitives for EE transforms. All draws come from an <see cref="AesPrg"/>; no <c>System.Random</c>.</summary>
internal static class EeSampling
{
    private const int GaussianChunk = 512;

    /// <summary>
    /// A uniform permutation of <c>[0, n)</c> by Fisher-Yates (Durstenfeld): for <c>i = n-1 .. 1</c>, swap
    /// position <c>i</c> with a position drawn uniformly in <c>[0, i]</c> by the unbiased
    /// <see cref="AesPrg.NextUInt64(ulong)"/>. Returned in a pinned array.
    /// </summary>
    public static int[] FisherYates(int n, AesPrg prg)
    {
        int[] a = FeatureTransform.SecretArray<int>(n);
        for (int i = 0; i < n; i++)
        {
            a[i] = i;
        }

        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)prg.NextUInt64((ulong)i + 1);
            (a[i], a[j]) = (a[j], a[i]);
        }

        return a;
    }

    /// <summary>Inverse of a permutation array: <c>inv[p[i]] = i</c>. Returned in a pinned array.</summary>
    public static int[] Invert(ReadOnlySpan<int> p)
    {
        int[] inv = FeatureTransform.SecretArray<int>(p.Length);
        for (int i = 0; i < p.Length; i++)
        {
            inv[p[i]] = i;
        }

        return inv;
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with standard normal samples: Box-Muller (cosine branch) on
    /// two 53-bit uniforms per sample, <c>u1</c> in (0, 1] and <c>u2</c> in [0, 1), as <see cref="AesPrg.NextGaussian"/>.
    /// </summary>
    public static void FillGaussian(AesPrg prg, Span<double> destination)
    {
        ulong[] raw = ArrayPool<ulong>.Shared.Rent(2 * GaussianChunk);
        try
        {
            for (int offset = 0; offset < destination.Length; offset += GaussianChunk)
            {
                int len = Math.Min(GaussianChunk, destination.Length - offset);
                Span<ulong> bits = raw.AsSpan(0, 2 * len);
                prg.Fill(bits);
                for (int i = 0; i < len; i++)
                {
                    double u1 = ((bits[2 * i] >> 11) + 1) * (1.0 / (1UL << 53));
                    double u2 = (bits[(2 * i) + 1] >> 11) * (1.0 / (1UL << 53));
                    destination[offset + i] = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
                }
            }
        }
        finally
        {
            Array.Clear(raw);
            ArrayPool<ulong>.Shared.Return(raw);
        }
    }
}
