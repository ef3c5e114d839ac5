using System.Numerics.Tensors;
using HssEe.Randomness;
using HssEe.Ring;

namespace HssEe.Sharing;

/// <summary>Two-out-of-two additive secret sharing over Z_2^64 (the client's split and reconstruct).</summary>
/// <remarks>
/// Party A's share is drawn uniformly from the PRG and party B's share is the difference, so
/// each share alone is uniformly distributed and independent of the secret.
/// </remarks>
public static class SecretSharing
{
    /// <summary>Splits <paramref name="secret"/> into shares for parties A and B.</summary>
    /// <param name="secret">The secret tensor (not modified).</param>
    /// <param name="fractionalBits">Fixed-point fractional bits of the secret (0 for plain integers).</param>
    /// <param name="prg">Randomness for party A's share; when null a fresh <see cref="AesPrg.Create"/> generator (seeded from <see cref="System.Security.Cryptography.RandomNumberGenerator"/>) is used.</param>
    /// <returns>Party A's and party B's shares.</returns>
    public static (Share A, Share B) Split(RingTensor secret, int fractionalBits, AesPrg? prg = null)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var a = new RingTensor(secret.Shape);
        if (prg is null)
        {
            using AesPrg fresh = AesPrg.Create();
            fresh.Fill(a.Span);
        }
        else
        {
            prg.Fill(a.Span);
        }

        var b = new RingTensor(secret.Shape);
        TensorPrimitives.Subtract<ulong>(secret.Span, a.Span, b.Span);
        return (new Share(Party.A, a, fractionalBits), new Share(Party.B, b, fractionalBits));
    }

    /// <summary>Encodes float32 values in <paramref name="format"/> and splits them.</summary>
    /// <param name="values">Row-major values.</param>
    /// <param name="shape">Shape of the values.</param>
    /// <param name="format">Fixed-point format.</param>
    /// <returns>Party A's and party B's shares.</returns>
    public static (Share A, Share B) Split(ReadOnlySpan<float> values, TensorShape shape, FixedPointFormat format)
    {
        RingTensor encoded = format.Encode(values, shape);
        try
        {
            return Split(encoded, format.FractionalBits);
        }
        finally
        {
            encoded.Clear();
        }
    }

    /// <summary>Adds the two shares back together.</summary>
    /// <param name="first">One party's share.</param>
    /// <param name="second">The other party's share.</param>
    /// <returns>The secret ring tensor.</returns>
    public static RingTensor Reconstruct(Share first, Share second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.Party == second.Party)
        {
            throw new ArgumentException($"Reconstruct needs one share of party A and one of party B; both are party {first.Party}'s.", nameof(second));
        }

        TensorShape.ThrowIfDifferent(first.Shape, second.Shape, nameof(second), "SecretSharing.Reconstruct");
        if (first.FractionalBits != second.FractionalBits)
        {
            throw new ArgumentException($"Reconstruct got shares of different scales: f={first.FractionalBits} and f={second.FractionalBits}.", nameof(second));
        }

        var result = new RingTensor(first.Shape);
        TensorPrimitives.Add<ulong>(first.Value.Span, second.Value.Span, result.Span);
        return result;
    }

    /// <summary>Reconstructs and decodes to float32 using the shares' own scale.</summary>
    /// <param name="first">One party's share.</param>
    /// <param name="second">The other party's share.</param>
    /// <returns>The secret values, row-major.</returns>
    public static float[] ReconstructToSingle(Share first, Share second)
    {
        RingTensor secret = Reconstruct(first, second);
        try
        {
            return new FixedPointFormat(first.FractionalBits).DecodeToSingle(secret);
        }
        finally
        {
            secret.Clear();
        }
    }
}
