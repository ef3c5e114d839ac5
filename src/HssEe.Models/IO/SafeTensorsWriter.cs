using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace HssEe.Models.IO;

/// <summary>
/// Writes float32 tensors as a safetensors file that Python's <c>safetensors</c> reads: an 8-byte
/// little-endian header length, a JSON header padded with spaces to a multiple of 8 bytes (so the data
/// buffer is 8-byte aligned), then the tensors' bytes back to back in the order given.
/// </summary>
public static class SafeTensorsWriter
{
    private const int ChunkElements = 1 << 16;

    /// <summary>Writes the tensors to a file, replacing it if it exists.</summary>
    /// <param name="path">The file path.</param>
    /// <param name="tensors">Name, shape and row-major data of each tensor, in file order.</param>
    /// <param name="dtype">
    /// The stored element type: <see cref="SafeTensorDType.F32"/> (exact), <see cref="SafeTensorDType.F16"/>
    /// or <see cref="SafeTensorDType.BF16"/> (both rounded to nearest even, as torch's <c>.half()</c> and
    /// <c>.bfloat16()</c> do; NaN becomes a quiet NaN).
    /// </param>
    /// <param name="metadata">Optional <c>__metadata__</c> string entries, e.g. <c>{"format": "pt"}</c>.</param>
    /// <exception cref="ArgumentException">
    /// Unsupported dtype, duplicate or reserved name, or data whose length does not match its shape;
    /// checked before the file is touched.
    /// </exception>
    public static void Write(
        string path,
        IEnumerable<KeyValuePair<string, (IReadOnlyList<int> Shape, float[] Data)>> tensors,
        SafeTensorDType dtype = SafeTensorDType.F32,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Entry[] entries = Prepare(tensors, dtype, metadata);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
        WriteCore(stream, entries, dtype, metadata);
    }

    /// <summary>Writes the tensors to a stream at its current position; the stream is flushed, not closed.</summary>
    /// <param name="stream">A writable stream.</param>
    /// <param name="tensors">Name, shape and row-major data of each tensor, in file order.</param>
    /// <param name="dtype">The stored element type: F32, F16 or BF16 (see the path overload).</param>
    /// <param name="metadata">Optional <c>__metadata__</c> string entries.</param>
    /// <exception cref="ArgumentException">Unsupported dtype, duplicate or reserved name, or data whose length does not match its shape.</exception>
    public static void Write(
        Stream stream,
        IEnumerable<KeyValuePair<string, (IReadOnlyList<int> Shape, float[] Data)>> tensors,
        SafeTensorDType dtype = SafeTensorDType.F32,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("the stream is not writable", nameof(stream));
        }

        Entry[] entries = Prepare(tensors, dtype, metadata);
        WriteCore(stream, entries, dtype, metadata);
    }

    private readonly record struct Entry(string Name, int[] Shape, float[] Data);

    private static Entry[] Prepare(
        IEnumerable<KeyValuePair<string, (IReadOnlyList<int> Shape, float[] Data)>> tensors,
        SafeTensorDType dtype,
        IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (dtype is not (SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16))
        {
            throw new ArgumentException($"the writer stores F32, F16 or BF16, not {dtype}", nameof(dtype));
        }

        if (metadata is not null)
        {
            foreach (KeyValuePair<string, string> kv in metadata)
            {
                if (kv.Key is null || kv.Value is null)
                {
                    throw new ArgumentException("metadata keys and values must not be null", nameof(metadata));
                }
            }
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        foreach ((string name, (IReadOnlyList<int> shape, float[] data)) in tensors)
        {
            if (name is null)
            {
                throw new ArgumentException("a tensor name is null", nameof(tensors));
            }

            if (name == SafeTensorsHeader.MetadataKey)
            {
                throw new ArgumentException($"'{SafeTensorsHeader.MetadataKey}' is reserved and cannot name a tensor", nameof(tensors));
            }

            if (!names.Add(name))
            {
                throw new ArgumentException($"tensor '{name}' is given twice", nameof(tensors));
            }

            if (shape is null || data is null)
            {
                throw new ArgumentException($"tensor '{name}' has a null shape or data", nameof(tensors));
            }

            int[] dims = [.. shape];
            long count;
            try
            {
                count = SafeTensorInfo.Product(dims);
            }
            catch (Exception e) when (e is ArgumentException or OverflowException)
            {
                throw new ArgumentException($"tensor '{name}': invalid shape [{string.Join(", ", dims)}]: {e.Message}", nameof(tensors), e);
            }

            if (count != data.Length)
            {
                throw new ArgumentException(
                    $"tensor '{name}': shape [{string.Join(", ", dims)}] has {count} elements but the data has {data.Length}", nameof(tensors));
            }

            entries.Add(new Entry(name, dims, data));
        }

        return [.. entries];
    }

    private static void WriteCore(Stream stream, Entry[] entries, SafeTensorDType dtype, IReadOnlyDictionary<string, string>? metadata)
    {
        int size = dtype.Size();
        var json = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(SafeTensorsHeader.MetadataKey);
                foreach (KeyValuePair<string, string> kv in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    writer.WriteString(kv.Key, kv.Value);
                }

                writer.WriteEndObject();
            }

            long offset = 0;
            foreach (Entry e in entries)
            {
                long end = checked(offset + ((long)e.Data.Length * size));
                writer.WriteStartObject(e.Name);
                writer.WriteString("dtype", dtype.Name());
                writer.WriteStartArray("shape");
                foreach (int d in e.Shape)
                {
                    writer.WriteNumberValue(d);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(end);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset = end;
            }

            writer.WriteEndObject();
        }

        // Pad with spaces so that the data buffer starts 8-byte aligned, as Python's safetensors does.
        int padded = (json.WrittenCount + 7) & ~7;
        if (padded > SafeTensorsHeader.MaxHeaderLength)
        {
            throw new ArgumentException($"the header would be {padded} bytes, over the {SafeTensorsHeader.MaxHeaderLength}-byte limit readers accept");
        }

        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
        stream.Write(prefix);
        stream.Write(json.WrittenSpan);
        for (int i = json.WrittenCount; i < padded; i++)
        {
            stream.WriteByte((byte)' ');
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkElements * size);
        try
        {
            foreach (Entry e in entries)
            {
                for (int i = 0; i < e.Data.Length; i += ChunkElements)
                {
                    int m = Math.Min(ChunkElements, e.Data.Length - i);
                    Span<byte> bytes = buffer.AsSpan(0, m * size);
                    SafeTensorsConversions.FromSingle(dtype, e.Data.AsSpan(i, m), bytes);
                    stream.Write(bytes);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        stream.Flush();
    }
}
