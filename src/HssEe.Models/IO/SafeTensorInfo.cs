namespace HssEe.Models.IO;

/// <summary>One tensor entry of a safetensors header.</summary>
/// <param name="Name">The tensor's name, e.g. <c>"layers.0.attention.wq.weight"</c>.</param>
/// <param name="DType">The element type.</param>
/// <param name="Shape">The dimensions, outermost first; empty for a scalar.</param>
/// <param name="DataOffset">
/// Start of the tensor's bytes, relative to the start of the data buffer that follows the header
/// (the first entry of the header's <c>data_offsets</c>).
/// </param>
/// <param name="ByteLength">Number of bytes of the tensor: <see cref="ElementCount"/> times the dtype size.</param>
public sealed record SafeTensorInfo(string Name, SafeTensorDType DType, IReadOnlyList<int> Shape, long DataOffset, long ByteLength)
{
    /// <summary>Product of <see cref="Shape"/> (1 for a scalar, 0 when a dimension is 0).</summary>
    public long ElementCount { get; } = Product(Shape);

    /// <summary>Product of the dimensions; throws on a negative dimension or on overflow.</summary>
    internal static long Product(IReadOnlyList<int> shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException($"shape [{string.Join(", ", shape)}] has a negative dimension", nameof(shape));
            }

            count = checked(count * d);
        }

        return count;
    }
}
