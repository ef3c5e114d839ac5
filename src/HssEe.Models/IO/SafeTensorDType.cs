namespace HssEe.Models.IO;

/// <summary>
/// Element types of a safetensors tensor. The member names are the dtype strings of the format
/// (<c>"F32"</c>, <c>"BF16"</c>, ...). All multi-byte values are stored little-endian.
/// </summary>
public enum SafeTensorDType
{
    /// <summary>IEEE 754 binary32, 4 bytes.</summary>
    F32,

    /// <summary>IEEE 754 binary16 (<see cref="Half"/>), 2 bytes.</summary>
    F16,

    /// <summary>bfloat16: the upper 16 bits of a binary32, 2 bytes.</summary>
    BF16,

    /// <summary>IEEE 754 binary64, 8 bytes.</summary>
    F64,

    /// <summary>Signed 64-bit integer, 8 bytes.</summary>
    I64,

    /// <summary>Signed 32-bit integer, 4 bytes.</summary>
    I32,

    /// <summary>Signed 8-bit integer, 1 byte.</summary>
    I8,

    /// <summary>Unsigned 8-bit integer, 1 byte.</summary>
    U8,
}

/// <summary>Sizes and names of <see cref="SafeTensorDType"/> values.</summary>
internal static class SafeTensorDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 or SafeTensorDType.I64 => 8,
        SafeTensorDType.F32 or SafeTensorDType.I32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 => 2,
        SafeTensorDType.I8 or SafeTensorDType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>Whether the dtype is a floating-point type that <see cref="IWeightSource.ReadSingle"/> converts.</summary>
    public static bool IsFloat(this SafeTensorDType dtype) =>
        dtype is SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F64;

    /// <summary>The dtype string used in the header.</summary>
    public static string Name(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F32 => "F32",
        SafeTensorDType.F16 => "F16",
        SafeTensorDType.BF16 => "BF16",
        SafeTensorDType.F64 => "F64",
        SafeTensorDType.I64 => "I64",
        SafeTensorDType.I32 => "I32",
        SafeTensorDType.I8 => "I8",
        SafeTensorDType.U8 => "U8",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>Parses a header dtype string (exact, case-sensitive, as the format defines them).</summary>
    public static bool TryParse(string? text, out SafeTensorDType dtype)
    {
        switch (text)
        {
            case "F32": dtype = SafeTensorDType.F32; return true;
            case "F16": dtype = SafeTensorDType.F16; return true;
            case "BF16": dtype = SafeTensorDType.BF16; return true;
            case "F64": dtype = SafeTensorDType.F64; return true;
            case "I64": dtype = SafeTensorDType.I64; return true;
            case "I32": dtype = SafeTensorDType.I32; return true;
            case "I8": dtype = SafeTensorDType.I8; return true;
            case "U8": dtype = SafeTensorDType.U8; return true;
            default: dtype = default; return false;
        }
    }
}
