namespace HssEe.Fss;

/// <summary>
/// Byte layout of one DPF key with early termination (see <see cref="Dpf"/> for the documented format).
/// </summary>
internal readonly struct DpfKeyLayout
{
    public DpfKeyLayout(FssKeyParameters parameters)
    {
        N = parameters.InputBits;
        Ell = parameters.OutputBits;
        M = parameters.PayloadLength;
        OutputMask = parameters.OutputMask;
        InputMask = parameters.InputMask;
        long payloadBits = (long)M * Ell;
        int d = 0;
        while (d < N && (payloadBits << (d + 1)) <= 128)
        {
            d++;
        }

        LeafBits = d;
        Levels = N - d;
        LeafWords = (1L << d) * M;
        long leafStreamBits = payloadBits << d;
        LeafBlocks = (int)((leafStreamBits + 127) / 128);
        BitRegion = 16 * (Levels + 1);
        TrBitBase = leafStreamBits;
        long size = BitRegion + FssKeyBits.BytesFor(leafStreamBits + Levels);
        if (size > int.MaxValue / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(parameters), parameters, "DPF key would exceed 1 GiB; lower m or ell.");
        }

        KeySize = (int)size;
    }

    public int N { get; }

    public int Ell { get; }

    public int M { get; }

    public ulong OutputMask { get; }

    public ulong InputMask { get; }

    /// <summary>Early-termination depth d: the last d input bits select a slot of the leaf vector.</summary>
    public int LeafBits { get; }

    /// <summary>Tree levels n - d.</summary>
    public int Levels { get; }

    /// <summary>Words in a leaf vector: 2^d * m.</summary>
    public long LeafWords { get; }

    /// <summary>PRG blocks of a leaf vector: ceil(2^d m ell / 128).</summary>
    public int LeafBlocks { get; }

    /// <summary>Byte offset of the packed bit region (after the root seed and the seed correction words).</summary>
    public int BitRegion { get; }

    /// <summary>Bit offset (in the bit region) of the right-t correction bits (after the leaf correction word).</summary>
    public long TrBitBase { get; }

    public int KeySize { get; }

    public int BlocksPerEvaluation => Levels + LeafBlocks;

    public int BlocksPerKeyPair => 2 * ((2 * Levels) + LeafBlocks);
}
