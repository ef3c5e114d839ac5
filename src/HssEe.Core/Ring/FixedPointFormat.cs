using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace HssEe.Ring;

/// <summary>
/// Fixed-point encoding of real numbers in Z_2^64: a value v is stored as
/// <c>round(v * 2^f) mod 2^64</c> (round half to even), read back as a signed two's-complement
/// integer divided by 2^f.
/// </summary>
/// <remarks>
/// <para><b>Valid f:</b> 0 to 62. <b>Representable values:</b> <c>[-2^(63-f), 2^(63-f))</c> with
/// resolution <c>2^-f</c>; for f = 12 that is about +-2.25e15 in steps of 2.44e-4.</para>
/// <para><b>Products:</b> a product of two values with f fractional bits each carries 2f
/// fractional bits, so it is only correct while <c>|x * y| &lt; 2^(63-2f)</c> (about 5.5e11 at
/// f = 12) and must then be truncated by f. Choose f so that activations times weights stay
/// inside that bound.</para>
/// <para><b>Errors:</b> encoding NaN, an infinity, or a value outside the representable range
/// throws <see cref="ArgumentException"/> naming the index and value; nothing wraps silently.
/// Float32 decoding rounds to the nearest float.</para>
/// </remarks>
public readonly struct FixedPointFormat : IEquatable<FixedPointFormat>
{
    /// <summary>Largest supported number of fractional bits.</summary>
    public const int MaxFractionalBits = 62;

    private const double TwoPow63 = 9223372036854775808.0;

    /// <summary>Creates a format with <paramref name="fractionalBits"/> fractional bits.</summary>
    /// <param name="fractionalBits">f, from 0 to <see cref="MaxFractionalBits"/>.</param>
    public FixedPointFormat(int fractionalBits)
    {
        if (fractionalBits is < 0 or > MaxFractionalBits)
        {
            throw new ArgumentOutOfRangeException(nameof(fractionalBits), fractionalBits, $"Fractional bits must be between 0 and {MaxFractionalBits}.");
        }

        FractionalBits = fractionalBits;
    }

    /// <summary>The default for transformers: f = 12.</summary>
    public static FixedPointFormat Default => new(12);

    /// <summary>Number of fractional bits f.</summary>
    public int FractionalBits { get; }

    /// <summary>The scale 2^f.</summary>
    public double Scale => Math.ScaleB(1.0, FractionalBits);

    /// <summary>Smallest representable value, <c>-2^(63-f)</c>.</summary>
    public double MinValue => -Math.ScaleB(1.0, 63 - FractionalBits);

    /// <summary>Exclusive upper bound of representable values, <c>2^(63-f)</c>.</summary>
    public double MaxValueExclusive => Math.ScaleB(1.0, 63 - FractionalBits);

    /// <summary>Resolution (one unit in the last place), <c>2^-f</c>.</summary>
    public double Resolution => Math.ScaleB(1.0, -FractionalBits);

    /// <summary>Encodes one value.</summary>
    /// <param name="value">A finite value in the representable range.</param>
    /// <returns>The ring element.</returns>
    public ulong Encode(double value)
    {
        double scaled = Math.Round(value * Scale, MidpointRounding.ToEven);
        if (!(scaled >= -TwoPow63 && scaled < TwoPow63))
        {
            throw OutOfRange(0, value, nameof(value));
        }

        return unchecked((ulong)(long)scaled);
    }

    /// <summary>Decodes one ring element (signed) to a double.</summary>
    /// <param name="element">The ring element.</param>
    /// <returns>The value.</returns>
    public double Decode(ulong element) => unchecked((long)element) * Math.ScaleB(1.0, -FractionalBits);

    /// <summary>Encodes float32 values (vectorised).</summary>
    /// <param name="source">Values to encode.</param>
    /// <param name="destination">Ring elements; same length as <paramref name="source"/>.</param>
    public void Encode(ReadOnlySpan<float> source, Span<ulong> destination)
    {
        CheckLengths(source.Length, destination.Length);
        double scale = Scale;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<double> s = Vector512.Create(scale);
            for (; i + Vector512<float>.Count <= source.Length; i += Vector512<float>.Count)
            {
                var v = Vector512.Create(source.Slice(i, Vector512<float>.Count));
                (Vector512<double> lo, Vector512<double> hi) = Vector512.Widen(v);
                if (!TryEncode512(lo * s, destination.Slice(i)) || !TryEncode512(hi * s, destination.Slice(i + Vector512<double>.Count)))
                {
                    EncodeScalar(source.Slice(i, Vector512<float>.Count), destination.Slice(i), i);
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> s = Vector256.Create(scale);
            for (; i + Vector256<float>.Count <= source.Length; i += Vector256<float>.Count)
            {
                var v = Vector256.Create(source.Slice(i, Vector256<float>.Count));
                (Vector256<double> lo, Vector256<double> hi) = Vector256.Widen(v);
                if (!TryEncode256(lo * s, destination.Slice(i)) || !TryEncode256(hi * s, destination.Slice(i + Vector256<double>.Count)))
                {
                    EncodeScalar(source.Slice(i, Vector256<float>.Count), destination.Slice(i), i);
                }
            }
        }

        EncodeScalar(source[i..], destination[i..], i);
    }

    /// <summary>Encodes float64 values (vectorised).</summary>
    /// <param name="source">Values to encode.</param>
    /// <param name="destination">Ring elements; same length as <paramref name="source"/>.</param>
    public void Encode(ReadOnlySpan<double> source, Span<ulong> destination)
    {
        CheckLengths(source.Length, destination.Length);
        double scale = Scale;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<double> s = Vector512.Create(scale);
            for (; i + Vector512<double>.Count <= source.Length; i += Vector512<double>.Count)
            {
                if (!TryEncode512(Vector512.Create(source.Slice(i, Vector512<double>.Count)) * s, destination.Slice(i)))
                {
                    EncodeScalar(source.Slice(i, Vector512<double>.Count), destination.Slice(i), i);
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> s = Vector256.Create(scale);
            for (; i + Vector256<double>.Count <= source.Length; i += Vector256<double>.Count)
            {
                if (!TryEncode256(Vector256.Create(source.Slice(i, Vector256<double>.Count)) * s, destination.Slice(i)))
                {
                    EncodeScalar(source.Slice(i, Vector256<double>.Count), destination.Slice(i), i);
                }
            }
        }

        EncodeScalar(source[i..], destination[i..], i);
    }

    /// <summary>Decodes ring elements to float32 (vectorised; rounds to nearest float).</summary>
    /// <param name="source">Ring elements.</param>
    /// <param name="destination">Values; same length as <paramref name="source"/>.</param>
    public void Decode(ReadOnlySpan<ulong> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        double inv = Math.ScaleB(1.0, -FractionalBits);
        ReadOnlySpan<long> signed = MemoryMarshal.Cast<ulong, long>(source);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<double> s = Vector512.Create(inv);
            for (; i + Vector512<float>.Count <= source.Length; i += Vector512<float>.Count)
            {
                Vector512<double> lo = Vector512.ConvertToDouble(Vector512.Create(signed.Slice(i, 8))) * s;
                Vector512<double> hi = Vector512.ConvertToDouble(Vector512.Create(signed.Slice(i + 8, 8))) * s;
                Vector512.Narrow(lo, hi).CopyTo(destination.Slice(i));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> s = Vector256.Create(inv);
            for (; i + Vector256<float>.Count <= source.Length; i += Vector256<float>.Count)
            {
                Vector256<double> lo = Vector256.ConvertToDouble(Vector256.Create(signed.Slice(i, 4))) * s;
                Vector256<double> hi = Vector256.ConvertToDouble(Vector256.Create(signed.Slice(i + 4, 4))) * s;
                Vector256.Narrow(lo, hi).CopyTo(destination.Slice(i));
            }
        }

        for (; i < source.Length; i++)
        {
            destination[i] = (float)(signed[i] * inv);
        }
    }

    /// <summary>Decodes ring elements to float64 (vectorised).</summary>
    /// <param name="source">Ring elements.</param>
    /// <param name="destination">Values; same length as <paramref name="source"/>.</param>
    public void Decode(ReadOnlySpan<ulong> source, Span<double> destination)
    {
        CheckLengths(source.Length, destination.Length);
        double inv = Math.ScaleB(1.0, -FractionalBits);
        ReadOnlySpan<long> signed = MemoryMarshal.Cast<ulong, long>(source);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<double> s = Vector512.Create(inv);
            for (; i + 8 <= source.Length; i += 8)
            {
                (Vector512.ConvertToDouble(Vector512.Create(signed.Slice(i, 8))) * s).CopyTo(destination.Slice(i));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> s = Vector256.Create(inv);
            for (; i + 4 <= source.Length; i += 4)
            {
                (Vector256.ConvertToDouble(Vector256.Create(signed.Slice(i, 4))) * s).CopyTo(destination.Slice(i));
            }
        }

        for (; i < source.Length; i++)
        {
            destination[i] = signed[i] * inv;
        }
    }

    /// <summary>Encodes float32 values into a new ring tensor.</summary>
    /// <param name="values">Row-major values.</param>
    /// <param name="shape">Shape; its element count must equal the number of values.</param>
    /// <returns>The encoded tensor.</returns>
    public RingTensor Encode(ReadOnlySpan<float> values, TensorShape shape)
    {
        if (values.Length != shape.ElementCount)
        {
            throw new ArgumentException($"Got {values.Length} values but shape {shape} needs {shape.ElementCount}.", nameof(values));
        }

        var t = new RingTensor(shape);
        Encode(values, t.Span);
        return t;
    }

    /// <summary>Decodes a ring tensor into a new float32 array (row-major).</summary>
    /// <param name="tensor">The tensor.</param>
    /// <returns>The values.</returns>
    public float[] DecodeToSingle(RingTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var values = new float[tensor.Length];
        Decode(tensor.Span, values);
        return values;
    }

    /// <inheritdoc />
    public bool Equals(FixedPointFormat other) => FractionalBits == other.FractionalBits;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is FixedPointFormat other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => FractionalBits;

    /// <summary>Formats as <c>Q(f=12)</c>.</summary>
    /// <returns>The format's description.</returns>
    public override string ToString() => $"Q(f={FractionalBits})";

    /// <summary>Format equality.</summary>
    /// <param name="left">First format.</param>
    /// <param name="right">Second format.</param>
    /// <returns>True when f is equal.</returns>
    public static bool operator ==(FixedPointFormat left, FixedPointFormat right) => left.Equals(right);

    /// <summary>Format inequality.</summary>
    /// <param name="left">First format.</param>
    /// <param name="right">Second format.</param>
    /// <returns>True when f differs.</returns>
    public static bool operator !=(FixedPointFormat left, FixedPointFormat right) => !left.Equals(right);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryEncode512(Vector512<double> scaled, Span<ulong> destination)
    {
        Vector512<double> r = Vector512.Round(scaled);
        // NaN fails both comparisons, so it is rejected with the out-of-range values.
        Vector512<double> ok = Vector512.GreaterThanOrEqual(r, Vector512.Create(-TwoPow63)) & Vector512.LessThan(r, Vector512.Create(TwoPow63));
        if (!Vector512.EqualsAll(ok.AsUInt64(), Vector512<ulong>.AllBitsSet))
        {
            return false;
        }

        Vector512.ConvertToInt64(r).AsUInt64().CopyTo(destination);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryEncode256(Vector256<double> scaled, Span<ulong> destination)
    {
        Vector256<double> r = Vector256.Round(scaled);
        Vector256<double> ok = Vector256.GreaterThanOrEqual(r, Vector256.Create(-TwoPow63)) & Vector256.LessThan(r, Vector256.Create(TwoPow63));
        if (!Vector256.EqualsAll(ok.AsUInt64(), Vector256<ulong>.AllBitsSet))
        {
            return false;
        }

        Vector256.ConvertToInt64(r).AsUInt64().CopyTo(destination);
        return true;
    }

    private void EncodeScalar(ReadOnlySpan<float> source, Span<ulong> destination, int baseIndex)
    {
        double scale = Scale;
        for (int j = 0; j < source.Length; j++)
        {
            double scaled = Math.Round(source[j] * scale, MidpointRounding.ToEven);
            if (!(scaled >= -TwoPow63 && scaled < TwoPow63))
            {
                throw OutOfRange(baseIndex + j, source[j], "source");
            }

            destination[j] = unchecked((ulong)(long)scaled);
        }
    }

    private void EncodeScalar(ReadOnlySpan<double> source, Span<ulong> destination, int baseIndex)
    {
        double scale = Scale;
        for (int j = 0; j < source.Length; j++)
        {
            double scaled = Math.Round(source[j] * scale, MidpointRounding.ToEven);
            if (!(scaled >= -TwoPow63 && scaled < TwoPow63))
            {
                throw OutOfRange(baseIndex + j, source[j], "source");
            }

            destination[j] = unchecked((ulong)(long)scaled);
        }
    }

    private ArgumentException OutOfRange(int index, double value, string paramName) => new(
        double.IsNaN(value) || double.IsInfinity(value)
            ? $"Cannot encode element {index}: value {value} is not finite (fixed point {this})."
            : $"Cannot encode element {index}: value {value:R} is outside the representable range [{MinValue:R}, {MaxValueExclusive:R}) of fixed point {this}.",
        paramName);

    private static void CheckLengths(int source, int destination)
    {
        if (source != destination)
        {
            throw new ArgumentException($"Destination has {destination} elements but the source has {source}.", nameof(destination));
        }
    }
}
