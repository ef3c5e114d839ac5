using System.Collections.Immutable;

namespace HssEe.Ring;

/// <summary>An immutable row-major tensor shape (dimension sizes, outermost first).</summary>
public readonly struct TensorShape : IEquatable<TensorShape>
{
    private readonly ImmutableArray<int> _dims;

    /// <summary>Creates a shape; every dimension must be non-negative and the element count must fit in an <see cref="int"/>.</summary>
    /// <param name="dimensions">Dimension sizes, outermost first. An empty list is a scalar (one element).</param>
    public TensorShape(params ReadOnlySpan<int> dimensions)
    {
        long count = 1;
        for (int i = 0; i < dimensions.Length; i++)
        {
            if (dimensions[i] < 0)
            {
                throw new ArgumentException($"Dimension {i} of shape {Format(dimensions)} is negative.", nameof(dimensions));
            }

            count *= dimensions[i];
            if (count > Array.MaxLength)
            {
                throw new ArgumentException($"Shape {Format(dimensions)} has more elements than an array can hold.", nameof(dimensions));
            }
        }

        _dims = [.. dimensions];
        ElementCount = (int)count;
    }

    /// <summary>Number of dimensions.</summary>
    public int Rank => _dims.IsDefault ? 0 : _dims.Length;

    /// <summary>Total number of elements (product of the dimensions).</summary>
    public int ElementCount { get; }

    /// <summary>The dimension sizes.</summary>
    public ReadOnlySpan<int> Dimensions => _dims.IsDefault ? default : _dims.AsSpan();

    /// <summary>Size of dimension <paramref name="axis"/>; negative values count from the end.</summary>
    /// <param name="axis">Axis index.</param>
    public int this[int axis]
    {
        get
        {
            int a = axis < 0 ? Rank + axis : axis;
            if ((uint)a >= (uint)Rank)
            {
                throw new ArgumentOutOfRangeException(nameof(axis), axis, $"Axis out of range for shape {this}.");
            }

            return _dims[a];
        }
    }

    /// <inheritdoc />
    public bool Equals(TensorShape other) => Dimensions.SequenceEqual(other.Dimensions);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is TensorShape other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        foreach (int d in Dimensions)
        {
            hash.Add(d);
        }

        return hash.ToHashCode();
    }

    /// <summary>Formats the shape as <c>[2, 3, 4]</c>.</summary>
    /// <returns>The shape in brackets.</returns>
    public override string ToString() => Format(Dimensions);

    /// <summary>Shape equality.</summary>
    /// <param name="left">First shape.</param>
    /// <param name="right">Second shape.</param>
    /// <returns>True when the dimensions are equal.</returns>
    public static bool operator ==(TensorShape left, TensorShape right) => left.Equals(right);

    /// <summary>Shape inequality.</summary>
    /// <param name="left">First shape.</param>
    /// <param name="right">Second shape.</param>
    /// <returns>True when the dimensions differ.</returns>
    public static bool operator !=(TensorShape left, TensorShape right) => !left.Equals(right);

    /// <summary>Throws an <see cref="ArgumentException"/> naming both shapes when they differ.</summary>
    internal static void ThrowIfDifferent(TensorShape expected, TensorShape actual, string paramName, string what)
    {
        if (expected != actual)
        {
            throw new ArgumentException($"Shape mismatch in {what}: expected {expected}, got {actual}.", paramName);
        }
    }

    private static string Format(ReadOnlySpan<int> dims) => "[" + string.Join(", ", dims.ToArray()) + "]";
}
