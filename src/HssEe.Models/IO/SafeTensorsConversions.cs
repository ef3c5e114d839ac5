using System.Buffers.Binary;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace HssEe.Models.IO;

/// <summary>
/// Conversions between little-endian safetensors bytes and .NET values, matching torch: F16 and BF16
/// widen exactly, F64 and float-to-F16/BF16 narrowing round to nearest even. Little-endian machines
/// take vectorised paths; big-endian ones a scalar path through <see cref="BinaryPrimitives"/>.
/// </summary>
internal static class SafeTensorsConversions
{
    /// <summary>Converts <paramref name="dst"/>.Length elements of <paramref name="dtype"/> from <paramref name="src"/>.</summary>
    public static void ToSingle(SafeTensorDType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (dtype)
        {
            case SafeTensorDType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    src[..(dst.Length * 4)].CopyTo(MemoryMarshal.AsBytes(dst));
                }
                else
                {
                    for (int i = 0; i < dst.Length; i++)
                    {
                        dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                    }
                }

                break;
            case SafeTensorDType.F16:
                if (BitConverter.IsLittleEndian)
                {
                    TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src[..(dst.Length * 2)]), dst);
                }
                else
                {
                    for (int i = 0; i < dst.Length; i++)
                    {
                        dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                    }
                }

                break;
            case SafeTensorDType.BF16:
                BFloat16ToSingle(src[..(dst.Length * 2)], dst);
                break;
            case SafeTensorDType.F64:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a floating-point dtype");
        }
    }

    /// <summary>Converts <paramref name="dst"/>.Length integer elements of <paramref name="dtype"/>, sign- or zero-extending.</summary>
    public static void ToInt64(SafeTensorDType dtype, ReadOnlySpan<byte> src, Span<long> dst)
    {
        switch (dtype)
        {
            case SafeTensorDType.I64:
                if (BitConverter.IsLittleEndian)
                {
                    src[..(dst.Length * 8)].CopyTo(MemoryMarshal.AsBytes(dst));
                }
                else
                {
                    for (int i = 0; i < dst.Length; i++)
                    {
                        dst[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(8 * i)..]);
                    }
                }

                break;
            case SafeTensorDType.I32:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]);
                }

                break;
            case SafeTensorDType.I8:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = (sbyte)src[i];
                }

                break;
            case SafeTensorDType.U8:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = src[i];
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not an integer dtype");
        }
    }

    /// <summary>Encodes floats as <paramref name="dtype"/> (F32, F16 or BF16) into <paramref name="dst"/>, which holds exactly their bytes.</summary>
    public static void FromSingle(SafeTensorDType dtype, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (dtype)
        {
            case SafeTensorDType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    MemoryMarshal.AsBytes(src).CopyTo(dst);
                }
                else
                {
                    for (int i = 0; i < src.Length; i++)
                    {
                        BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], src[i]);
                    }
                }

                break;
            case SafeTensorDType.F16:
                if (BitConverter.IsLittleEndian)
                {
                    TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<byte, Half>(dst));
                }
                else
                {
                    for (int i = 0; i < src.Length; i++)
                    {
                        BinaryPrimitives.WriteHalfLittleEndian(dst[(2 * i)..], (Half)src[i]);
                    }
                }

                break;
            case SafeTensorDType.BF16:
                for (int i = 0; i < src.Length; i++)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], SingleToBFloat16Bits(src[i]));
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "the writer encodes F32, F16 and BF16 only");
        }
    }

    /// <summary>
    /// float32 to bfloat16 bits, round to nearest even, NaN to the canonical quiet NaN 0x7FC0:
    /// the same as torch's <c>c10::detail::round_to_nearest_even</c>.
    /// </summary>
    public static ushort SingleToBFloat16Bits(float value)
    {
        if (float.IsNaN(value))
        {
            return 0x7FC0;
        }

        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint roundingBias = ((bits >> 16) & 1) + 0x7FFF;
        return (ushort)((bits + roundingBias) >> 16);
    }

    /// <summary>bfloat16 to float32: the 16 bits become the upper half of the float (exact).</summary>
    private static void BFloat16ToSingle(ReadOnlySpan<byte> src, Span<float> dst)
    {
        Span<uint> d = MemoryMarshal.Cast<float, uint>(dst);
        int i = 0;
        if (BitConverter.IsLittleEndian)
        {
            ReadOnlySpan<ushort> s = MemoryMarshal.Cast<byte, ushort>(src);
            if (Vector.IsHardwareAccelerated)
            {
                int width = Vector<ushort>.Count;
                for (; i <= s.Length - width; i += width)
                {
                    Vector.Widen(new Vector<ushort>(s[i..]), out Vector<uint> low, out Vector<uint> high);
                    Vector.ShiftLeft(low, 16).CopyTo(d[i..]);
                    Vector.ShiftLeft(high, 16).CopyTo(d[(i + (width / 2))..]);
                }
            }

            for (; i < s.Length; i++)
            {
                d[i] = (uint)s[i] << 16;
            }
        }
        else
        {
            for (; i < d.Length; i++)
            {
                d[i] = (uint)BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16;
            }
        }
    }
}
