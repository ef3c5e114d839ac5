using System.Numerics.Tensors;

namespace HssEe.Ring;

/// <summary>
/// A tensor over the ring Z_2^64: a <see cref="TensorShape"/> and contiguous row-major
/// <see cref="ulong"/> storage. Arithmetic on the elements wraps modulo 2^64; signed values
/// are two's complement.
/// </summary>
/// <remarks>
/// A ring tensor may hold secret data (a plaintext input or one share), so <see cref="ToString"/>
/// prints only the shape, and <see cref="Clear"/> wipes the storage.
/// </remarks>
public sealed class RingTensor
{
    private readonly ulong[] _data;

    /// <summary>Creates a zero tensor of the given shape.</summary>
    /// <param name="shape">The shape.</param>
    public RingTensor(TensorShape shape)
    {
        Shape = shape;
        _data = shape.ElementCount == 0 ? [] : new ulong[shape.ElementCount];
    }

    /// <summary>Wraps <paramref name="data"/> (no copy) as a tensor of the given shape.</summary>
    /// <param name="data">Row-major storage; its length must equal the shape's element count.</param>
    /// <param name="shape">The shape.</param>
    public RingTensor(ulong[] data, TensorShape shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length != shape.ElementCount)
        {
            throw new ArgumentException($"Storage has {data.Length} elements but shape {shape} needs {shape.ElementCount}.", nameof(data));
        }

        _data = data;
        Shape = shape;
    }

    /// <summary>The shape.</summary>
    public TensorShape Shape { get; }

    /// <summary>Number of elements.</summary>
    public int Length => _data.Length;

    /// <summary>The row-major elements.</summary>
    public Span<ulong> Span => _data;

    /// <summary>The row-major elements as memory (for asynchronous channel operations).</summary>
    public Memory<ulong> Memory => _data;

    /// <summary>Creates a tensor with a copy of <paramref name="values"/>.</summary>
    /// <param name="values">Row-major elements.</param>
    /// <param name="shape">The shape; its element count must equal the number of values.</param>
    /// <returns>A new tensor.</returns>
    public static RingTensor FromSpan(ReadOnlySpan<ulong> values, TensorShape shape)
    {
        if (values.Length != shape.ElementCount)
        {
            throw new ArgumentException($"Got {values.Length} values but shape {shape} needs {shape.ElementCount}.", nameof(values));
        }

        return new RingTensor(values.ToArray(), shape);
    }

    /// <summary>Creates a ring tensor from a <see cref="System.Numerics.Tensors"/> tensor span (copying, row-major).</summary>
    /// <param name="tensor">Source tensor of ring elements.</param>
    /// <returns>A new ring tensor with the same shape.</returns>
    public static RingTensor FromTensor(in ReadOnlyTensorSpan<ulong> tensor)
    {
        ReadOnlySpan<nint> lengths = tensor.Lengths;
        var dims = new int[lengths.Length];
        for (int i = 0; i < dims.Length; i++)
        {
            if (lengths[i] > int.MaxValue)
            {
                throw new ArgumentException($"Tensor dimension {i} has length {lengths[i]}, more than a ring tensor supports.", nameof(tensor));
            }

            dims[i] = (int)lengths[i];
        }

        var result = new RingTensor(new TensorShape(dims));
        tensor.FlattenTo(result._data);
        return result;
    }

    /// <summary>Copies this tensor into a new <see cref="Tensor{T}"/> of the same shape.</summary>
    /// <returns>A new tensor.</returns>
    public Tensor<ulong> ToTensor()
    {
        ReadOnlySpan<int> dims = Shape.Dimensions;
        var lengths = new nint[dims.Length];
        for (int i = 0; i < dims.Length; i++)
        {
            lengths[i] = dims[i];
        }

        return Tensor.Create((ulong[])_data.Clone(), lengths);
    }

    /// <summary>A view of the same storage with another shape of equal element count.</summary>
    /// <param name="shape">The new shape.</param>
    /// <returns>A tensor sharing this tensor's storage.</returns>
    public RingTensor Reshape(TensorShape shape)
    {
        if (shape.ElementCount != Length)
        {
            throw new ArgumentException($"Cannot reshape {Shape} ({Length} elements) to {shape} ({shape.ElementCount} elements).", nameof(shape));
        }

        return new RingTensor(_data, shape);
    }

    /// <summary>A deep copy.</summary>
    /// <returns>A new tensor with copied storage.</returns>
    public RingTensor Clone() => new((ulong[])_data.Clone(), Shape);

    /// <summary>Overwrites every element with zero (wipes secret data).</summary>
    public void Clear() => System.Security.Cryptography.CryptographicOperations.ZeroMemory(
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(_data.AsSpan()));

    /// <summary>Shows the shape only, never the elements.</summary>
    /// <returns>For example <c>RingTensor[2, 3]</c>.</returns>
    public override string ToString() => "RingTensor" + Shape;
}
