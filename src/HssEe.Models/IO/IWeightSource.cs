namespace HssEe.Models.IO;

/// <summary>Source of named float tensors for model loading: a safetensors file or weights built in memory.</summary>
public interface IWeightSource
{
    /// <summary>The names of all tensors the source holds.</summary>
    IEnumerable<string> Names { get; }

    /// <summary>Whether the source holds a tensor of that name.</summary>
    /// <param name="name">The tensor name.</param>
    bool Contains(string name);

    /// <summary>The dimensions of a tensor, outermost first.</summary>
    /// <param name="name">The tensor name.</param>
    /// <exception cref="KeyNotFoundException">No tensor of that name; the message names it and the source.</exception>
    IReadOnlyList<int> GetShape(string name);

    /// <summary>
    /// Reads a floating-point tensor as a new float32 array in row-major order, converting as torch's
    /// <c>.float()</c> does: F16 and BF16 widen exactly, F64 rounds to nearest even.
    /// </summary>
    /// <param name="name">The tensor name.</param>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    /// <exception cref="InvalidDataException">The tensor's dtype is not a floating-point type.</exception>
    float[] ReadSingle(string name);
}
