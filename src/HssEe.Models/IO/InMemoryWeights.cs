using System.Collections.ObjectModel;

namespace HssEe.Models.IO;

/// <summary>
/// Named float32 tensors held in memory: for tests, for weights generated in code, and for weights
/// rewritten with an EE key before they are saved. <see cref="Add"/> keeps a reference to the data
/// array (do not modify it afterwards); <see cref="ReadSingle"/> returns a copy.
/// </summary>
public sealed class InMemoryWeights : IWeightSource
{
    private readonly Dictionary<string, (ReadOnlyCollection<int> Shape, float[] Data)> _tensors = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];

    /// <summary>The tensor names, in the order they were added.</summary>
    public IEnumerable<string> Names => _names.AsReadOnly();

    /// <summary>Number of tensors.</summary>
    public int Count => _names.Count;

    /// <summary>Adds a tensor.</summary>
    /// <param name="name">The tensor name; must not be present already.</param>
    /// <param name="shape">The dimensions, outermost first (empty for a scalar); none negative.</param>
    /// <param name="data">The elements in row-major order; its length must equal the product of <paramref name="shape"/>.</param>
    /// <exception cref="ArgumentException">Duplicate name, negative dimension, or a length that does not match the shape.</exception>
    public void Add(string name, IReadOnlyList<int> shape, float[] data)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        if (_tensors.ContainsKey(name))
        {
            throw new ArgumentException($"in-memory weights already hold a tensor named '{name}'", nameof(name));
        }

        int[] dims = [.. shape];
        long count;
        try
        {
            count = SafeTensorInfo.Product(dims);
        }
        catch (Exception e) when (e is ArgumentException or OverflowException)
        {
            throw new ArgumentException($"tensor '{name}': invalid shape [{string.Join(", ", dims)}]: {e.Message}", nameof(shape), e);
        }

        if (count != data.Length)
        {
            throw new ArgumentException(
                $"tensor '{name}': shape [{string.Join(", ", dims)}] has {count} elements but the data has {data.Length}", nameof(data));
        }

        _tensors.Add(name, (Array.AsReadOnly(dims), data));
        _names.Add(name);
    }

    /// <inheritdoc/>
    public bool Contains(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _tensors.ContainsKey(name);
    }

    /// <inheritdoc/>
    public IReadOnlyList<int> GetShape(string name) => Get(name).Shape;

    /// <inheritdoc/>
    public float[] ReadSingle(string name) => (float[])Get(name).Data.Clone();

    private (ReadOnlyCollection<int> Shape, float[] Data) Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _tensors.TryGetValue(name, out var entry)
            ? entry
            : throw new KeyNotFoundException($"in-memory weights: no tensor named '{name}' ({_tensors.Count} tensors held)");
    }
}
