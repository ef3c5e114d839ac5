using System.Globalization;

namespace HssEe.Ee;

/// <summary>
/// One named feature-space boundary of a model in an <see cref="EeKeySpec"/>: the name, the kind of
/// transform used there and the length of the feature axis. The boundary is public information
/// (model shape); only the transform derived for it is secret.
/// </summary>
public sealed class EeBoundary : IEquatable<EeBoundary>
{
    /// <summary>Longest boundary name, in characters.</summary>
    public const int MaxNameLength = 64;

    /// <summary>Largest feature dimension of a permutation or scaling boundary (vocabularies included).</summary>
    public const int MaxDimension = 1 << 24;

    /// <summary>Largest feature dimension of a dense rotation (<see cref="EeTransformKind.Orthogonal"/>, <see cref="EeTransformKind.OrthogonalFixingOnes"/>), whose matrix takes <c>8 d^2</c> bytes.</summary>
    public const int MaxDenseDimension = 8192;

    /// <summary>Creates a boundary description.</summary>
    /// <param name="name">1 to <see cref="MaxNameLength"/> characters among ASCII letters, digits, <c>_</c>, <c>.</c> and <c>-</c>.</param>
    /// <param name="kind">The transform kind.</param>
    /// <param name="dimension">Length of the feature axis (for pair rotations: all heads together).</param>
    /// <param name="heads">Number of heads; more than 1 only for <see cref="EeTransformKind.PairRotations"/> and <see cref="EeTransformKind.PairRotationsHalfSplit"/>, whose head dimension <c>dimension / heads</c> must be even.</param>
    /// <exception cref="ArgumentException">The name is invalid, or the heads do not fit the kind or dimension.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The kind is undefined or the dimension is out of range.</exception>
    public EeBoundary(string name, EeTransformKind kind, int dimension, int heads = 1)
    {
        ValidateName(name);
        if (!Enum.IsDefined(kind))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Undefined EE transform kind.");
        }

        bool dense = kind is EeTransformKind.Orthogonal or EeTransformKind.OrthogonalFixingOnes;
        int max = dense ? MaxDenseDimension : MaxDimension;
        if (dimension < 1 || dimension > max)
        {
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, $"Boundary '{name}' ({kind}): the dimension must be in [1, {max}].");
        }

        bool pairs = kind is EeTransformKind.PairRotations or EeTransformKind.PairRotationsHalfSplit;
        if (heads < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(heads), heads, $"Boundary '{name}': the number of heads must be at least 1.");
        }

        if (!pairs && heads != 1)
        {
            throw new ArgumentException($"Boundary '{name}': only pair-rotation boundaries have heads; {kind} needs heads = 1, got {heads}.", nameof(heads));
        }

        if (pairs && (dimension % heads != 0 || (dimension / heads) % 2 != 0))
        {
            throw new ArgumentException($"Boundary '{name}' ({kind}): the dimension {dimension} must split into {heads} heads of even length.", nameof(heads));
        }

        Name = name;
        Kind = kind;
        Dimension = dimension;
        Heads = heads;
    }

    /// <summary>The boundary name, unique within a key specification.</summary>
    public string Name { get; }

    /// <summary>The transform kind.</summary>
    public EeTransformKind Kind { get; }

    /// <summary>Length of the feature axis the transform acts on.</summary>
    public int Dimension { get; }

    /// <summary>Number of heads (1 except for pair rotations).</summary>
    public int Heads { get; }

    /// <summary>Features per head, <c>Dimension / Heads</c>.</summary>
    public int HeadDimension => Dimension / Heads;

    /// <summary>HKDF info string of this boundary: <c>HssEe/EE/v1/{name}/{kind}/{dimension}/{heads}</c>.</summary>
    internal string DerivationInfo =>
        string.Create(CultureInfo.InvariantCulture, $"HssEe/EE/v1/{Name}/{KindLabel(Kind)}/{Dimension}/{Heads}");

    /// <summary>Creates a pair-rotation boundary for attention heads (RoPE-compatible).</summary>
    /// <param name="name">Boundary name (see the constructor).</param>
    /// <param name="headDimension">Features per head; even.</param>
    /// <param name="heads">Number of heads.</param>
    /// <param name="halfSplitPairs">True for the "rotate half" pairing <c>(i, i + headDim/2)</c> of Hugging Face LLaMA; false for interleaved pairs <c>(2i, 2i+1)</c>.</param>
    /// <returns>The boundary, of dimension <c>headDimension * heads</c>.</returns>
    public static EeBoundary PairRotations(string name, int headDimension, int heads, bool halfSplitPairs = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(headDimension, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(heads, 1);
        if ((long)headDimension * heads > MaxDimension)
        {
            throw new ArgumentOutOfRangeException(nameof(heads), heads, $"Boundary '{name}': headDimension x heads exceeds {MaxDimension}.");
        }

        return new EeBoundary(name, halfSplitPairs ? EeTransformKind.PairRotationsHalfSplit : EeTransformKind.PairRotations, headDimension * heads, heads);
    }

    /// <inheritdoc />
    public bool Equals(EeBoundary? other) =>
        other is not null && string.Equals(Name, other.Name, StringComparison.Ordinal) && Kind == other.Kind && Dimension == other.Dimension && Heads == other.Heads;

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as EeBoundary);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(StringComparer.Ordinal.GetHashCode(Name), Kind, Dimension, Heads);

    /// <summary>Describes the boundary, e.g. <c>heads: PairRotations 512 (8 heads x 64)</c>.</summary>
    /// <returns>Name, kind and shape; no secret material.</returns>
    public override string ToString() => Heads == 1
        ? string.Create(CultureInfo.InvariantCulture, $"{Name}: {Kind} {Dimension}")
        : string.Create(CultureInfo.InvariantCulture, $"{Name}: {Kind} {Dimension} ({Heads} heads x {HeadDimension})");

    internal static string KindLabel(EeTransformKind kind) => kind switch
    {
        EeTransformKind.Permutation => "permutation",
        EeTransformKind.PositiveScaling => "positive-scaling",
        EeTransformKind.ScaledPermutation => "scaled-permutation",
        EeTransformKind.Orthogonal => "orthogonal",
        EeTransformKind.OrthogonalFixingOnes => "orthogonal-fixing-ones",
        EeTransformKind.PairRotations => "pair-rotations",
        EeTransformKind.PairRotationsHalfSplit => "pair-rotations-half-split",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Undefined EE transform kind."),
    };

    private static void ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0 || name.Length > MaxNameLength)
        {
            throw new ArgumentException($"A boundary name has 1 to {MaxNameLength} characters, got {name.Length}.", nameof(name));
        }

        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
            {
                throw new ArgumentException($"Boundary name '{name}' may only contain ASCII letters, digits, '_', '.' and '-'.", nameof(name));
            }
        }
    }
}
