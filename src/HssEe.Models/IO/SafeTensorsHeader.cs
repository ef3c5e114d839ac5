using System.Buffers.Binary;
using System.Collections.ObjectModel;
using System.Text.Json;

namespace HssEe.Models.IO;

/// <summary>The parsed and validated header of a safetensors file.</summary>
internal sealed class SafeTensorsHeader
{
    /// <summary>Largest accepted header, as in the reference implementation (guards against absurd allocations).</summary>
    public const long MaxHeaderLength = 100_000_000;

    /// <summary>The key of the optional string-to-string metadata object.</summary>
    public const string MetadataKey = "__metadata__";

    private SafeTensorsHeader(Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata, string[] fileOrder, long dataStart)
    {
        Tensors = new ReadOnlyDictionary<string, SafeTensorInfo>(tensors);
        Metadata = new ReadOnlyDictionary<string, string>(metadata);
        FileOrder = Array.AsReadOnly(fileOrder);
        DataStart = dataStart;
    }

    /// <summary>The tensors by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> entries (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in the order of their data in the buffer.</summary>
    public IReadOnlyList<string> FileOrder { get; }

    /// <summary>Absolute offset of the data buffer: 8 plus the header length.</summary>
    public long DataStart { get; }

    /// <summary>
    /// Reads the 8-byte header length from <paramref name="prefix"/> (the first 8 bytes of the file) and
    /// checks it against the file length. Returns the header length.
    /// </summary>
    public static long ReadHeaderLength(ReadOnlySpan<byte> prefix, long fileLength, string? source)
    {
        if (fileLength < 8)
        {
            throw new SafeTensorsFormatException(source, null,
                $"is {fileLength} bytes long, too short for the 8-byte header length that starts a safetensors file");
        }

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderLength)
        {
            throw new SafeTensorsFormatException(source, null,
                $"header length {n} exceeds the limit of {MaxHeaderLength} bytes (not a safetensors file?)");
        }

        if ((long)n > fileLength - 8)
        {
            throw new SafeTensorsFormatException(source, null,
                $"header length {n} exceeds the {fileLength - 8} bytes that follow the length field (truncated file?)");
        }

        return (long)n;
    }

    /// <summary>
    /// Parses and validates the JSON header against the size of the data buffer that follows it
    /// (which starts at absolute offset <paramref name="dataStart"/>).
    /// </summary>
    public static SafeTensorsHeader Parse(byte[] json, long dataStart, long dataLength, string? source)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            // JsonDocument checks UTF-8 only when a string is decoded; reject it up front.
            throw new SafeTensorsFormatException(source, null, "header is not valid UTF-8");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(source, null, $"header is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new SafeTensorsFormatException(source, null, $"header must be a JSON object, found {Kind(root)}");
            }

            var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (JsonProperty property in root.EnumerateObject())
            {
                string name = property.Name;
                if (name == MetadataKey)
                {
                    if (sawMetadata)
                    {
                        throw new SafeTensorsFormatException(source, null, $"header has a duplicate \"{MetadataKey}\" entry");
                    }

                    sawMetadata = true;
                    ParseMetadata(property.Value, metadata, source);
                    continue;
                }

                if (tensors.ContainsKey(name))
                {
                    throw new SafeTensorsFormatException(source, name, "appears twice in the header (duplicate tensor name)");
                }

                tensors.Add(name, ParseTensor(name, property.Value, dataLength, source));
            }

            string[] order = CheckLayout(tensors, dataLength, source);
            return new SafeTensorsHeader(tensors, metadata, order, dataStart);
        }
    }

    private static void ParseMetadata(JsonElement value, Dictionary<string, string> metadata, string? source)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new SafeTensorsFormatException(source, null, $"\"{MetadataKey}\" must be an object of strings, found {Kind(value)}");
        }

        foreach (JsonProperty entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                throw new SafeTensorsFormatException(source, null,
                    $"\"{MetadataKey}\" entry '{entry.Name}' must be a string, found {Kind(entry.Value)}");
            }

            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
            {
                throw new SafeTensorsFormatException(source, null, $"\"{MetadataKey}\" has a duplicate key '{entry.Name}'");
            }
        }
    }

    private static SafeTensorInfo ParseTensor(string name, JsonElement value, long dataLength, string? source)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new SafeTensorsFormatException(source, name, $"entry must be a JSON object, found {Kind(value)}");
        }

        JsonElement? dtypeElement = null, shapeElement = null, offsetsElement = null;
        foreach (JsonProperty field in value.EnumerateObject())
        {
            ref JsonElement? slot = ref dtypeElement;
            switch (field.Name)
            {
                case "dtype": slot = ref dtypeElement; break;
                case "shape": slot = ref shapeElement; break;
                case "data_offsets": slot = ref offsetsElement; break;
                default:
                    throw new SafeTensorsFormatException(source, name,
                        $"has an unknown field \"{field.Name}\" (expected dtype, shape, data_offsets)");
            }

            if (slot is not null)
            {
                throw new SafeTensorsFormatException(source, name, $"has a duplicate field \"{field.Name}\"");
            }

            slot = field.Value;
        }

        if (dtypeElement is not { } dt || shapeElement is not { } sh || offsetsElement is not { } of)
        {
            string missing = dtypeElement is null ? "dtype" : shapeElement is null ? "shape" : "data_offsets";
            throw new SafeTensorsFormatException(source, name, $"has no \"{missing}\" field");
        }

        // dtype
        string? dtypeText = dt.ValueKind == JsonValueKind.String ? dt.GetString() : null;
        if (!SafeTensorDTypes.TryParse(dtypeText, out SafeTensorDType dtype))
        {
            string shown = dtypeText is null ? Kind(dt) : $"'{dtypeText}'";
            throw new SafeTensorsFormatException(source, name,
                $"has unsupported dtype {shown} (supported: {string.Join(", ", Enum.GetValues<SafeTensorDType>().Select(d => d.Name()))})");
        }

        // shape
        if (sh.ValueKind != JsonValueKind.Array)
        {
            throw new SafeTensorsFormatException(source, name, $"shape must be an array, found {Kind(sh)}");
        }

        var shape = new int[sh.GetArrayLength()];
        int k = 0;
        foreach (JsonElement d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0 || dim > int.MaxValue)
            {
                throw new SafeTensorsFormatException(source, name,
                    $"has shape {sh.GetRawText()} whose entry {d.GetRawText()} is not an integer in [0, {int.MaxValue}]");
            }

            shape[k++] = (int)dim;
        }

        long count = 1;
        long bytes;
        try
        {
            foreach (int d in shape)
            {
                count = checked(count * d);
            }

            bytes = checked(count * dtype.Size());
        }
        catch (OverflowException)
        {
            throw new SafeTensorsFormatException(source, name,
                $"has shape {ShapeText(shape)} whose {dtype.Name()} byte size overflows a 64-bit integer");
        }

        // data_offsets
        if (of.ValueKind != JsonValueKind.Array || of.GetArrayLength() != 2)
        {
            throw new SafeTensorsFormatException(source, name, $"data_offsets must be an array [begin, end], found {of.GetRawText()}");
        }

        JsonElement b = of[0], e = of[1];
        if (b.ValueKind != JsonValueKind.Number || !b.TryGetUInt64(out ulong begin)
            || e.ValueKind != JsonValueKind.Number || !e.TryGetUInt64(out ulong end))
        {
            throw new SafeTensorsFormatException(source, name, $"data_offsets {of.GetRawText()} must be two non-negative integers");
        }

        string offsets = $"[{begin}, {end}]";
        if (begin > end)
        {
            throw new SafeTensorsFormatException(source, name, $"has data_offsets {offsets} whose begin is after its end");
        }

        if (end > (ulong)dataLength)
        {
            throw new SafeTensorsFormatException(source, name,
                $"has data_offsets {offsets} outside the {dataLength}-byte data buffer");
        }

        if (end - begin != (ulong)bytes)
        {
            throw new SafeTensorsFormatException(source, name,
                $"has data_offsets {offsets} but {dtype.Name()} {ShapeText(shape)} needs {bytes} bytes");
        }

        return new SafeTensorInfo(name, dtype, Array.AsReadOnly(shape), (long)begin, bytes);
    }

    /// <summary>
    /// The data regions must tile the buffer exactly: no overlap, no hole, nothing after the last
    /// tensor (the format forbids unindexed bytes). Returns the names in buffer order.
    /// </summary>
    private static string[] CheckLayout(Dictionary<string, SafeTensorInfo> tensors, long dataLength, string? source)
    {
        SafeTensorInfo[] sorted = [.. tensors.Values];
        Array.Sort(sorted, static (x, y) =>
        {
            int c = x.DataOffset.CompareTo(y.DataOffset);
            return c != 0 ? c : x.ByteLength.CompareTo(y.ByteLength);
        });

        long expected = 0;
        SafeTensorInfo? previous = null;
        foreach (SafeTensorInfo t in sorted)
        {
            if (t.DataOffset < expected)
            {
                throw new SafeTensorsFormatException(source, t.Name,
                    $"has data_offsets {Offsets(t)} that overlap tensor '{previous!.Name}' at {Offsets(previous)}");
            }

            if (t.DataOffset > expected)
            {
                throw new SafeTensorsFormatException(source, t.Name,
                    $"has data_offsets {Offsets(t)}, leaving bytes [{expected}, {t.DataOffset}) of the data buffer unused (holes are not allowed)");
            }

            expected = t.DataOffset + t.ByteLength;
            if (t.ByteLength > 0 || previous is null)
            {
                previous = t;
            }
        }

        if (expected != dataLength)
        {
            throw new SafeTensorsFormatException(source, null,
                $"data buffer is {dataLength} bytes but the tensors cover only [0, {expected}); the trailing bytes belong to no tensor");
        }

        return [.. sorted.Select(t => t.Name)];
    }

    private static string Offsets(SafeTensorInfo t) => $"[{t.DataOffset}, {t.DataOffset + t.ByteLength}]";

    private static string ShapeText(int[] shape) => $"[{string.Join(", ", shape)}]";

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };
}
