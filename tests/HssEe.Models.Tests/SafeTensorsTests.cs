using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using HssEe.Models.IO;
using Xunit.Abstractions;

namespace HssEe.Models.Tests;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly ITestOutputHelper _output;
    private readonly string _dir;
    private readonly int _seed;

    public SafeTensorsTests(ITestOutputHelper output)
    {
        _output = output;
        _dir = Path.Combine(Path.GetTempPath(), "hssee-safetensors-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _seed = RandomNumberGenerator.GetInt32(int.MaxValue);
        _output.WriteLine($"seed {_seed}");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ---------- helpers ----------

    /// <summary>A safetensors file from a JSON header and a data buffer; pads the header with spaces to 8 bytes like Python.</summary>
    private static byte[] Build(string header, byte[] data, bool pad = true)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        int n = pad ? (json.Length + 7) & ~7 : json.Length;
        var file = new byte[8 + n + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)n);
        json.CopyTo(file, 8);
        file.AsSpan(8 + json.Length, n - json.Length).Fill((byte)' ');
        data.CopyTo(file, 8 + n);
        return file;
    }

    private static byte[] Bytes(params ushort[] values)
    {
        var b = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2 * i), values[i]);
        }

        return b;
    }

    private string WriteFile(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static SafeTensorsFormatException Malformed(string header, byte[] data, string name = "bad.safetensors") =>
        Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(Build(header, data), name));

    private static string F32(string offsets, string shape = "[2]") =>
        $"{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":{offsets}}}";

    /// <summary>Independent bfloat16 reference: the nearer of the two neighbouring bfloat16 values, ties to even.</summary>
    private static float BFloat16Reference(float x)
    {
        if (float.IsNaN(x) || float.IsInfinity(x))
        {
            return x;
        }

        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint low = bits & 0xFFFF0000u;
        uint high = low + 0x10000u;
        double lowValue = BitConverter.UInt32BitsToSingle(low);
        float highFloat = BitConverter.UInt32BitsToSingle(high);
        // Past the largest bfloat16 the next value (unbounded exponent) is 2^128.
        double highValue = float.IsInfinity(highFloat) ? Math.CopySign(Math.Pow(2, 128), x) : highFloat;
        double dLow = Math.Abs(x - lowValue), dHigh = Math.Abs(highValue - x);
        uint chosen = dLow < dHigh ? low : dHigh < dLow ? high : ((low >> 16) & 1) == 0 ? low : high;
        return BitConverter.UInt32BitsToSingle(chosen);
    }

    private static float Expected(SafeTensorDType dtype, float x) => dtype switch
    {
        SafeTensorDType.F32 => x,
        SafeTensorDType.F16 => (float)(Half)x,
        SafeTensorDType.BF16 => BFloat16Reference(x),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    private void AssertSameFloats(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            bool same = float.IsNaN(expected[i])
                ? float.IsNaN(actual[i])
                : BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(actual[i]);
            Assert.True(same, $"seed {_seed}: {what}[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }

    /// <summary>Random floats over all exponents, plus special and tie values.</summary>
    private static float[] RandomFloats(Random rng, int count)
    {
        float[] special =
        [
            0f, -0f, 1f, -1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, float.MinValue,
            float.Epsilon, 1e-45f, 65504f, 65519.99f, 65520f, 6e-8f, 3e-8f,
            1f + MathF.Pow(2, -11), 1f + (3 * MathF.Pow(2, -11)),   // F16 ties: to even -> 1 and 1 + 2^-9
            1f + MathF.Pow(2, -8), 1f + (3 * MathF.Pow(2, -8)),     // BF16 ties: to even -> 1 and 1 + 2^-6
            BitConverter.UInt32BitsToSingle(0x7F7F8000), // halfway between max bfloat16 and 2^128: rounds to infinity
        ];
        var data = new float[count];
        for (int i = 0; i < count; i++)
        {
            data[i] = i < special.Length ? special[i]
                : (i % 3) switch
                {
                    0 => BitConverter.Int32BitsToSingle(rng.Next() ^ (rng.Next(2) << 31)),
                    1 => (float)((rng.NextDouble() * 2) - 1),
                    _ => (float)(rng.NextDouble() * 70000),
                };
        }

        return data;
    }

    // ---------- round trips ----------

    [Theory]
    [InlineData(SafeTensorDType.F32)]
    [InlineData(SafeTensorDType.F16)]
    [InlineData(SafeTensorDType.BF16)]
    public void Round_trip_with_random_data_reads_back_the_rounded_values(SafeTensorDType dtype)
    {
        var rng = new Random(_seed);
        var shapes = new (string Name, int[] Shape)[]
        {
            ("scalar", []),
            ("empty", [0, 3]),
            ("matrix", [7, 13]),
            ("cube", [2, 3, 5]),
            ("long", [(1 << 20) + 37]), // crosses the reader's chunk size and the vector tail
        };
        var tensors = shapes.ToDictionary(
            s => s.Name,
            s => ((IReadOnlyList<int>)s.Shape, RandomFloats(rng, s.Shape.Aggregate(1, (a, b) => a * b))));
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        string path = Path.Combine(_dir, $"rt-{dtype}.safetensors");
        SafeTensorsWriter.Write(path, tensors, dtype, metadata);
        byte[] fileBytes = File.ReadAllBytes(path);
        Assert.Equal(0, (8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(fileBytes)) % 8);

        using var stream = new MemoryStream();
        SafeTensorsWriter.Write(stream, tensors, dtype, metadata);
        Assert.Equal(fileBytes, stream.ToArray());

        using SafeTensorsFile mapped = SafeTensorsFile.Open(path);
        using SafeTensorsFile inMemory = SafeTensorsFile.FromBytes(fileBytes);
        foreach (SafeTensorsFile file in new[] { mapped, inMemory })
        {
            Assert.Equal(shapes.Select(s => s.Name), file.Names);
            Assert.Equal("pt", file.Metadata["format"]);
            foreach ((string name, int[] shape) in shapes)
            {
                SafeTensorInfo info = file.Tensors[name];
                Assert.Equal(dtype, info.DType);
                Assert.Equal(shape, file.GetShape(name));
                Assert.Equal(tensors[name].Item2.Length, info.ElementCount);
                float[] expected = [.. tensors[name].Item2.Select(x => Expected(dtype, x))];
                AssertSameFloats(expected, file.ReadSingle(name), $"{dtype} '{name}'");
            }
        }
    }

    [Fact]
    public void Writer_rounds_the_tie_and_overflow_cases_as_torch_does()
    {
        float[] values =
        [
            1f + MathF.Pow(2, -11), 1f + (3 * MathF.Pow(2, -11)), 65520f,
            1f + MathF.Pow(2, -8), 1f + (3 * MathF.Pow(2, -8)), BitConverter.UInt32BitsToSingle(0x7F7F8000), float.NaN,
        ];
        var tensors = new Dictionary<string, (IReadOnlyList<int>, float[])> { ["x"] = ([values.Length], values) };
        using var f16 = new MemoryStream();
        SafeTensorsWriter.Write(f16, tensors, SafeTensorDType.F16);
        using var bf16 = new MemoryStream();
        SafeTensorsWriter.Write(bf16, tensors, SafeTensorDType.BF16);

        float[] h = SafeTensorsFile.FromBytes(f16.ToArray()).ReadSingle("x");
        Assert.Equal(1f, h[0]);
        Assert.Equal(1f + MathF.Pow(2, -9), h[1]);
        Assert.Equal(float.PositiveInfinity, h[2]);
        float[] b = SafeTensorsFile.FromBytes(bf16.ToArray()).ReadSingle("x");
        Assert.Equal(1f, b[3]);
        Assert.Equal(1f + MathF.Pow(2, -6), b[4]);
        Assert.Equal(float.PositiveInfinity, b[5]);
        Assert.True(float.IsNaN(b[6]));
    }

    // ---------- known bytes ----------

    [Fact]
    public void Hand_made_file_reads_known_values_of_every_dtype()
    {
        var data = new List<byte>();
        data.AddRange(Bytes(0x3C00, 0xC000, 0x7BFF, 0x0001));          // F16 [0, 8)
        data.AddRange(Bytes(0x3F80, 0xC040, 0x7F80, 0x0001));          // BF16 [8, 16)
        data.AddRange(BitConverter.GetBytes(0x40490FDB));               // F32 [16, 20): pi
        foreach (double d in new[] { 0.1, 1 + Math.Pow(2, -24), 1e300 }) // F64 [20, 44): unaligned
        {
            data.AddRange(BitConverter.GetBytes(d));
        }

        foreach (long v in new[] { -1L, long.MaxValue, 42L })          // I64 [44, 68)
        {
            data.AddRange(BitConverter.GetBytes(v));
        }

        data.AddRange(BitConverter.GetBytes(-7));                       // I32 [68, 76)
        data.AddRange(BitConverter.GetBytes(int.MaxValue));
        data.AddRange(new byte[] { 255, 0 });                           // U8 [76, 78)
        data.AddRange(new byte[] { 0xFF, 0x7F });                       // I8 [78, 80)
        // Entries deliberately not in data order.
        string header = """
            {"i":{"dtype":"I64","shape":[3],"data_offsets":[44,68]},
             "h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},
             "s":{"dtype":"I8","shape":[2],"data_offsets":[78,80]},
             "b":{"dtype":"BF16","shape":[2,2],"data_offsets":[8,16]},
             "f":{"dtype":"F32","shape":[],"data_offsets":[16,20]},
             "d":{"dtype":"F64","shape":[3],"data_offsets":[20,44]},
             "j":{"dtype":"I32","shape":[2],"data_offsets":[68,76]},
             "u":{"dtype":"U8","shape":[2],"data_offsets":[76,78]}}
            """;
        string path = WriteFile("known.safetensors", Build(header, [.. data]));

        using SafeTensorsFile file = SafeTensorsFile.Open(path);
        Assert.Equal(["h", "b", "f", "d", "i", "j", "u", "s"], file.Names);
        Assert.Equal([1f, -2f, 65504f, MathF.Pow(2, -24)], file.ReadSingle("h"));
        Assert.Equal([1f, -3f, float.PositiveInfinity, BitConverter.UInt32BitsToSingle(0x00010000)], file.ReadSingle("b"));
        Assert.Equal([2, 2], file.GetShape("b"));
        Assert.Equal([MathF.PI], file.ReadSingle("f"));
        Assert.Empty(file.GetShape("f"));
        Assert.Equal(1, file.Tensors["f"].ElementCount);
        Assert.Equal([0.1f, 1f, float.PositiveInfinity], file.ReadSingle("d"));
        Assert.Equal([-1L, long.MaxValue, 42L], file.ReadInt64("i"));
        Assert.Equal([-7L, int.MaxValue], file.ReadInt64("j"));
        Assert.Equal([255L, 0L], file.ReadInt64("u"));
        Assert.Equal([-1L, 127L], file.ReadInt64("s"));
        Assert.Equal(new SafeTensorInfo("d", SafeTensorDType.F64, file.Tensors["d"].Shape, 20, 24), file.Tensors["d"]);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void Every_F16_bit_pattern_widens_exactly_as_System_Half()
    {
        var patterns = new ushort[65536];
        for (int i = 0; i < patterns.Length; i++)
        {
            patterns[i] = (ushort)i;
        }

        byte[] bytes = Build("{\"all\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}", Bytes(patterns));
        float[] actual = SafeTensorsFile.FromBytes(bytes).ReadSingle("all");
        AssertSameFloats([.. patterns.Select(p => (float)BitConverter.UInt16BitsToHalf(p))], actual, "F16");
    }

    [Fact]
    public void File_in_Pythons_convention_with_metadata_and_space_padding_is_read()
    {
        // What safetensors.torch.save_file writes: __metadata__ first, header padded with spaces to 8 bytes.
        string header = "{\"__metadata__\":{\"format\":\"pt\",\"source\":\"unit test\"},"
            + "\"embed.weight\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[0,4]},"
            + "\"norm.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        Assert.NotEqual(0, Encoding.UTF8.GetByteCount(header) % 8); // so that padding really is present
        byte[] data = [.. Bytes(0x3F80, 0xBF80), .. BitConverter.GetBytes(0.5f)];
        byte[] file = Build(header, data);
        Assert.Equal((byte)' ', file[8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(file) - 1]);

        using SafeTensorsFile st = SafeTensorsFile.FromBytes(file);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt", ["source"] = "unit test" }, st.Metadata);
        Assert.False(st.Contains("__metadata__"));
        Assert.Equal(["embed.weight", "norm.weight"], st.Names);
        Assert.Equal([1f, -1f], st.ReadSingle("embed.weight"));
        Assert.Equal([0.5f], st.ReadSingle("norm.weight"));
    }

    [Fact]
    public void Metadata_round_trips_including_escapes_and_unicode()
    {
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"quoted\" \\ <tag> & 1+1" };
        var tensors = new Dictionary<string, (IReadOnlyList<int>, float[])> { ["w"] = ([2], [1f, 2f]) };
        using var stream = new MemoryStream();
        SafeTensorsWriter.Write(stream, tensors, metadata: metadata);
        using SafeTensorsFile file = SafeTensorsFile.FromBytes(stream.ToArray());
        Assert.Equal(metadata, file.Metadata);
    }

    [Fact]
    public void Empty_header_object_is_a_valid_file_with_no_tensors()
    {
        using SafeTensorsFile file = SafeTensorsFile.FromBytes(Build("{}", []));
        Assert.Empty(file.Names);
        Assert.Empty(file.Tensors);
    }

    // ---------- reading errors ----------

    [Fact]
    public void Integer_and_float_reads_of_the_wrong_kind_throw_naming_tensor_and_dtype()
    {
        byte[] bytes = Build("{\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},\"w\":" + F32("[8,16]") + "}", new byte[16]);
        using SafeTensorsFile file = SafeTensorsFile.FromBytes(bytes, "ids.safetensors");
        var e = Assert.Throws<InvalidDataException>(() => file.ReadSingle("ids"));
        Assert.Contains("ids.safetensors: tensor 'ids' has dtype I64", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidDataException>(() => file.ReadInt64("w"));
        Assert.Contains("tensor 'w' has dtype F32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_tensor_throws_KeyNotFoundException_naming_tensor_and_file()
    {
        string path = WriteFile("one.safetensors", Build("{\"w\":" + F32("[0,8]") + "}", new byte[8]));
        using SafeTensorsFile file = SafeTensorsFile.Open(path);
        Assert.False(file.Contains("nope"));
        var e = Assert.Throws<KeyNotFoundException>(() => file.GetShape("nope"));
        Assert.Contains("'nope'", e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Throws<KeyNotFoundException>(() => file.ReadSingle("nope"));
    }

    [Fact]
    public void Reading_after_Dispose_throws_ObjectDisposedException()
    {
        byte[] bytes = Build("{\"w\":" + F32("[0,8]") + "}", new byte[8]);
        string path = WriteFile("disposed.safetensors", bytes);
        foreach (SafeTensorsFile file in new[] { SafeTensorsFile.Open(path), SafeTensorsFile.FromBytes(bytes) })
        {
            Assert.Equal([0f, 0f], file.ReadSingle("w"));
            file.Dispose();
            file.Dispose(); // idempotent
            Assert.Throws<ObjectDisposedException>(() => file.ReadSingle("w"));
            Assert.Equal([2], file.GetShape("w")); // the header stays readable
        }

        // The mapping is released: the file can be deleted (and on Windows, overwritten).
        File.Delete(path);
    }

    [Fact]
    public void Open_of_a_missing_file_throws_FileNotFoundException() =>
        Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Open(Path.Combine(_dir, "absent.safetensors")));

    // ---------- malformed files: one test per case ----------

    [Fact]
    public void Zero_length_file_is_rejected()
    {
        string path = WriteFile("empty.safetensors", []);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("0 bytes long", e.Message, StringComparison.Ordinal);
        Assert.Equal(path, e.FileName);
        e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes([]));
        Assert.Contains("0 bytes long", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void File_shorter_than_the_length_field_is_rejected()
    {
        string path = WriteFile("short.safetensors", [1, 2, 3, 4, 5]);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("5 bytes long", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_length_larger_than_the_file_is_rejected()
    {
        byte[] bytes = Build("{}", []);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1000);
        string path = WriteFile("truncated.safetensors", bytes);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("header length 1000 exceeds the 8 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_length_over_the_sanity_limit_is_rejected()
    {
        byte[] bytes = Build("{}", []);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(bytes));
        Assert.Contains("exceeds the limit", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Non_JSON_header_is_rejected()
    {
        var e = Malformed("{\"w\": not json", []);
        Assert.Contains("bad.safetensors: header is not valid JSON", e.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<System.Text.Json.JsonException>(e.InnerException);
    }

    [Fact]
    public void Invalid_UTF8_in_the_header_is_rejected()
    {
        byte[] bytes = Build("{\"w\":1}", []);
        bytes[10] = 0xFF; // inside the key
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(bytes));
        Assert.Contains("header is not valid UTF-8", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_that_is_not_a_JSON_object_is_rejected()
    {
        var e = Malformed("[1, 2]", []);
        Assert.Contains("header must be a JSON object, found an array", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Trailing_garbage_after_the_header_object_is_rejected()
    {
        var e = Malformed("{} x", []);
        Assert.Contains("header is not valid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_tensor_names_are_rejected()
    {
        var e = Malformed("{\"w\":" + F32("[0,8]") + ",\"w\":" + F32("[8,16]") + "}", new byte[16]);
        Assert.Contains("tensor 'w' appears twice", e.Message, StringComparison.Ordinal);
        Assert.Equal("w", e.TensorName);
    }

    [Fact]
    public void Duplicate_metadata_entries_are_rejected()
    {
        var e = Malformed("{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{}}", []);
        Assert.Contains("duplicate \"__metadata__\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Non_string_metadata_value_is_rejected()
    {
        var e = Malformed("{\"__metadata__\":{\"n\":3}}", []);
        Assert.Contains("entry 'n' must be a string, found a number", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_dtype_is_rejected()
    {
        var e = Malformed("{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]);
        Assert.Contains("tensor 'w' has unsupported dtype 'Q4'", e.Message, StringComparison.Ordinal);
        e = Malformed("{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]);
        Assert.Contains("unsupported dtype 'f32'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Negative_shape_entry_is_rejected()
    {
        var e = Malformed("{\"w\":" + F32("[0,8]", "[2,-1]") + "}", new byte[8]);
        Assert.Contains("tensor 'w' has shape [2,-1] whose entry -1 is not an integer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fractional_shape_entry_is_rejected()
    {
        var e = Malformed("{\"w\":" + F32("[0,8]", "[2.5]") + "}", new byte[8]);
        Assert.Contains("entry 2.5 is not an integer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Element_count_overflow_is_rejected()
    {
        var e = Malformed("{\"w\":" + F32("[0,8]", "[2147483647,2147483647,2147483647]") + "}", new byte[8]);
        Assert.Contains("overflows a 64-bit integer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_field_is_rejected()
    {
        var e = Malformed("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", new byte[8]);
        Assert.Contains("tensor 'w' has no \"shape\" field", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Offsets_outside_the_data_buffer_are_rejected()
    {
        var e = Malformed("{\"w\":" + F32("[400,408]") + "}", new byte[8]);
        Assert.Contains("tensor 'w' has data_offsets [400, 408] outside the 8-byte data buffer", e.Message, StringComparison.Ordinal);
        e = Malformed("{\"w\":" + F32("[0,-8]") + "}", new byte[8]);
        Assert.Contains("must be two non-negative integers", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Offsets_with_begin_after_end_are_rejected()
    {
        var e = Malformed("{\"w\":" + F32("[8,0]") + "}", new byte[8]);
        Assert.Contains("data_offsets [8, 0] whose begin is after its end", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Size_mismatch_between_offsets_and_shape_is_rejected()
    {
        var e = Malformed("{\"layers.0.w\":" + F32("[10,20]", "[3,2]") + "}", new byte[24], "model.safetensors");
        Assert.Equal("model.safetensors: tensor 'layers.0.w' has data_offsets [10, 20] but F32 [3, 2] needs 24 bytes", e.Message);
        Assert.Equal("model.safetensors", e.FileName);
        Assert.Equal("layers.0.w", e.TensorName);
    }

    [Fact]
    public void Overlapping_data_regions_are_rejected()
    {
        var e = Malformed("{\"b\":" + F32("[4,12]") + ",\"a\":" + F32("[0,8]") + "}", new byte[12]);
        Assert.Contains("tensor 'b' has data_offsets [4, 12] that overlap tensor 'a' at [0, 8]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hole_between_data_regions_is_rejected()
    {
        var e = Malformed("{\"a\":" + F32("[0,8]") + ",\"b\":" + F32("[12,20]") + "}", new byte[20]);
        Assert.Contains("tensor 'b' has data_offsets [12, 20], leaving bytes [8, 12) of the data buffer unused", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Trailing_bytes_after_the_last_tensor_are_rejected()
    {
        var e = Malformed("{\"a\":" + F32("[0,8]") + "}", new byte[12]);
        Assert.Contains("data buffer is 12 bytes but the tensors cover only [0, 8)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_tensor_field_is_rejected()
    {
        var e = Malformed("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", new byte[8]);
        Assert.Contains("unknown field \"extra\"", e.Message, StringComparison.Ordinal);
    }

    // ---------- writer and in-memory weights ----------

    [Fact]
    public void Writer_rejects_bad_input_before_touching_the_file()
    {
        string path = Path.Combine(_dir, "never.safetensors");
        var bad = new Dictionary<string, (IReadOnlyList<int>, float[])> { ["w"] = ([3, 2], new float[5]) };
        var e = Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, bad));
        Assert.Contains("tensor 'w': shape [3, 2] has 6 elements but the data has 5", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));

        var ok = new Dictionary<string, (IReadOnlyList<int>, float[])> { ["w"] = ([1], new float[1]) };
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, ok, SafeTensorDType.I64));
        var reserved = new Dictionary<string, (IReadOnlyList<int>, float[])> { ["__metadata__"] = ([1], new float[1]) };
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, reserved));
        KeyValuePair<string, (IReadOnlyList<int>, float[])>[] twice = [new("a", ([1], new float[1])), new("a", ([1], new float[1]))];
        Assert.Contains("given twice", Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, twice)).Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void InMemoryWeights_validate_shapes_and_return_copies()
    {
        var weights = new InMemoryWeights();
        float[] data = [1f, 2f, 3f, 4f, 5f, 6f];
        weights.Add("w", [2, 3], data);
        weights.Add("s", [], [7f]);
        Assert.Equal(["w", "s"], weights.Names);
        Assert.Equal(2, weights.Count);
        Assert.True(weights.Contains("w"));
        Assert.Equal([2, 3], weights.GetShape("w"));
        float[] read = weights.ReadSingle("w");
        Assert.Equal(data, read);
        read[0] = 99f;
        Assert.Equal(1f, weights.ReadSingle("w")[0]);

        var e = Assert.Throws<ArgumentException>(() => weights.Add("x", [2, 2], new float[3]));
        Assert.Contains("tensor 'x': shape [2, 2] has 4 elements but the data has 3", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => weights.Add("w", [1], [0f]));
        Assert.Throws<ArgumentException>(() => weights.Add("n", [-1], []));
        Assert.Contains("'missing'", Assert.Throws<KeyNotFoundException>(() => weights.GetShape("missing")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InMemoryWeights_written_and_reopened_are_the_same_weight_source()
    {
        var rng = new Random(_seed);
        var weights = new InMemoryWeights();
        weights.Add("a", [4, 5], RandomFloats(rng, 20));
        weights.Add("b", [3], RandomFloats(rng, 3));
        string path = Path.Combine(_dir, "weights.safetensors");
        SafeTensorsWriter.Write(path, weights.Names.Select(n =>
            KeyValuePair.Create(n, (weights.GetShape(n), weights.ReadSingle(n)))));
        using SafeTensorsFile file = SafeTensorsFile.Open(path);
        foreach (IWeightSource source in new IWeightSource[] { weights, file })
        {
            Assert.Equal(["a", "b"], source.Names);
            Assert.Equal([4, 5], source.GetShape("a"));
        }

        AssertSameFloats(weights.ReadSingle("a"), file.ReadSingle("a"), "a");
        AssertSameFloats(weights.ReadSingle("b"), file.ReadSingle("b"), "b");
    }
}
