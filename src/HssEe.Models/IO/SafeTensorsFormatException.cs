namespace HssEe.Models.IO;

/// <summary>
/// A safetensors file or buffer is malformed. The message names the file (when there is one), the
/// tensor (when the problem concerns one) and the problem. It derives from <see cref="IOException"/>
/// (<see cref="InvalidDataException"/> is sealed), so a <c>catch (IOException)</c> around model
/// loading sees it.
/// </summary>
public sealed class SafeTensorsFormatException : IOException
{
    /// <summary>Creates the exception with a generic message.</summary>
    public SafeTensorsFormatException()
        : base("malformed safetensors data")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong.</param>
    public SafeTensorsFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that revealed the problem.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The underlying error, e.g. a JSON parse error.</param>
    public SafeTensorsFormatException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a problem in a given source, optionally concerning one tensor.</summary>
    /// <param name="fileName">The file path, or the name given to an in-memory buffer; null when unnamed.</param>
    /// <param name="tensorName">The tensor concerned, or null when the problem is not about one tensor.</param>
    /// <param name="problem">What is wrong, phrased to follow "tensor 'x' " (or the source name when there is no tensor).</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public SafeTensorsFormatException(string? fileName, string? tensorName, string problem, Exception? innerException = null)
        : base(Compose(fileName, tensorName, problem), innerException)
    {
        FileName = fileName;
        TensorName = tensorName;
    }

    /// <summary>The file path or buffer name, when known.</summary>
    public string? FileName { get; }

    /// <summary>The tensor concerned, when the problem concerns one.</summary>
    public string? TensorName { get; }

    private static string Compose(string? fileName, string? tensorName, string problem)
    {
        string where = fileName ?? "safetensors data";
        return tensorName is null ? $"{where}: {problem}" : $"{where}: tensor '{tensorName}' {problem}";
    }
}
