using System.Globalization;

namespace HssEe.Fss;

/// <summary>
/// The public parameters shared by every DPF/DCF key of one collection: input bit-width
/// <c>n</c> (the domain is <c>[0, 2^n)</c>), output bit-width <c>ell</c> (outputs live in
/// Z_2^ell and are returned reduced mod 2^ell in a <see cref="ulong"/>) and payload length
/// <c>m</c> (the payload <c>beta</c> is a vector of <c>m</c> elements of Z_2^ell).
/// </summary>
/// <remarks>
/// <c>default(FssKeyParameters)</c> is not valid; every API that takes parameters rejects it.
/// </remarks>
public readonly struct FssKeyParameters : IEquatable<FssKeyParameters>
{
    /// <summary>Largest supported payload length <c>m</c>.</summary>
    public const int MaxPayloadLength = 1 << 16;

    /// <summary>Creates and validates parameters.</summary>
    /// <param name="inputBits">Input bit-width <c>n</c>, in [1, 64].</param>
    /// <param name="outputBits">Output bit-width <c>ell</c>, in [1, 64] (64 means Z_2^64).</param>
    /// <param name="payloadLength">Payload length <c>m</c>, in [1, <see cref="MaxPayloadLength"/>].</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is outside its range.</exception>
    public FssKeyParameters(int inputBits, int outputBits = 64, int payloadLength = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputBits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(inputBits, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputBits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(outputBits, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(payloadLength, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(payloadLength, MaxPayloadLength);
        InputBits = inputBits;
        OutputBits = outputBits;
        PayloadLength = payloadLength;
    }

    /// <summary>Input bit-width <c>n</c>: inputs and the special point <c>alpha</c> lie in [0, 2^n).</summary>
    public int InputBits { get; }

    /// <summary>Output bit-width <c>ell</c>: outputs are elements of Z_2^ell.</summary>
    public int OutputBits { get; }

    /// <summary>Payload length <c>m</c>: number of Z_2^ell elements in <c>beta</c> and in each output.</summary>
    public int PayloadLength { get; }

    /// <summary><c>2^n - 1</c>: the mask that reduces an evaluation point to the domain.</summary>
    public ulong InputMask => InputBits >= 64 ? ulong.MaxValue : (1UL << InputBits) - 1;

    /// <summary><c>2^ell - 1</c>: the mask that reduces a value to Z_2^ell.</summary>
    public ulong OutputMask => OutputBits >= 64 ? ulong.MaxValue : (1UL << OutputBits) - 1;

    /// <summary>True when the parameters were built with the constructor (not <c>default</c>).</summary>
    public bool IsValid => InputBits is >= 1 and <= 64 && OutputBits is >= 1 and <= 64 && PayloadLength is >= 1 and <= MaxPayloadLength;

    /// <summary>Equality of two parameter sets.</summary>
    /// <param name="left">Left.</param>
    /// <param name="right">Right.</param>
    /// <returns>True when n, ell and m agree.</returns>
    public static bool operator ==(FssKeyParameters left, FssKeyParameters right) => left.Equals(right);

    /// <summary>Inequality of two parameter sets.</summary>
    /// <param name="left">Left.</param>
    /// <param name="right">Right.</param>
    /// <returns>True when n, ell or m differ.</returns>
    public static bool operator !=(FssKeyParameters left, FssKeyParameters right) => !left.Equals(right);

    /// <inheritdoc />
    public bool Equals(FssKeyParameters other) =>
        InputBits == other.InputBits && OutputBits == other.OutputBits && PayloadLength == other.PayloadLength;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is FssKeyParameters other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(InputBits, OutputBits, PayloadLength);

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"n={InputBits}, ell={OutputBits}, m={PayloadLength}");

    internal void Validate(string paramName)
    {
        if (!IsValid)
        {
            throw new ArgumentException("FSS key parameters are not initialised (default value); use the FssKeyParameters constructor.", paramName);
        }
    }
}
