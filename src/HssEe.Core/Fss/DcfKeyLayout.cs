namespace HssEe.Fss;

/// <summary>
/// Byte layout of one DCF key and the PRG stream shapes (see <see cref="Dcf"/> for the documented format).
/// </summary>
internal readonly struct DcfKeyLayout
{
    public DcfKeyLayout(FssKeyParameters parameters)
    {
        N = parameters.InputBits;
        Ell = parameters.OutputBits;
        M = parameters.PayloadLength;
        OutputMask = parameters.OutputMask;
        InputMask = parameters.InputMask;
        long payloadBits = (long)M * Ell;
        Packed = payloadBits <= 64;
        SideBlocks = Packed ? 1 : (int)((payloadBits + 127) / 128);
        BitRegion = 16 * (N + 1);
        TrBitBase = (N + 1) * payloadBits;
        FinalBitBase = N * payloadBits;
        long size = BitRegion + FssKeyBits.BytesFor(((N + 1) * payloadBits) + N);
        if (size > int.MaxValue / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(parameters), parameters, "DCF key would exceed 1 GiB; lower m or ell.");
        }

        KeySize = (int)size;
    }

    /// <summary>Input bits n.</summary>
    public int N { get; }

    /// <summary>Output bits ell.</summary>
    public int Ell { get; }

    /// <summary>Payload length m.</summary>
    public int M { get; }

    public ulong OutputMask { get; }

    public ulong InputMask { get; }

    /// <summary>True when m*ell &lt;= 64: one PRG block per level carries both sides' payload words (left: low 64 bits, right: high 64 bits).</summary>
    public bool Packed { get; }

    /// <summary>Payload blocks per level for one side (1 when packed: the block shared by both sides).</summary>
    public int SideBlocks { get; }

    /// <summary>Byte offset of the packed bit region (after the root seed and the n seed correction words).</summary>
    public int BitRegion { get; }

    /// <summary>Bit offset (in the bit region) of the final correction word CW_{n+1}.</summary>
    public long FinalBitBase { get; }

    /// <summary>Bit offset (in the bit region) of the n right-t correction bits.</summary>
    public long TrBitBase { get; }

    /// <summary>Bytes of one key.</summary>
    public int KeySize { get; }

    /// <summary>AES blocks one evaluation hashes.</summary>
    public int BlocksPerEvaluation => Packed ? 2 * N : (N * (1 + SideBlocks)) + SideBlocks;

    /// <summary>AES blocks generating one key pair hashes.</summary>
    public int BlocksPerKeyPair => Packed ? 2 * 3 * N : (2 * N * (2 + (2 * SideBlocks))) + (2 * SideBlocks);
}
