using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace HssEe.Ee;

/// <summary>
/// The public layout of an EE key: the list of named feature-space boundaries with their transform
/// kind and dimension, e.g. <c>hidden: OrthogonalFixingOnes 512</c>, <c>heads: PairRotations 512 (8 heads x 64)</c>,
/// <c>vocab: Permutation 256</c>, <c>conv1: ScaledPermutation 64</c>. Together with a 256-bit seed it
/// determines every transform of an <see cref="EeKey"/>.
/// </summary>
public sealed class EeKeySpec : IReadOnlyList<EeBoundary>
{
    /// <summary>Most boundaries in one specification.</summary>
    public const int MaxBoundaries = 4096;

    private readonly EeBoundary[] _boundaries;
    private readonly Dictionary<string, EeBoundary> _byName;

    /// <summary>Creates a specification from its boundaries (order is kept; names must be unique).</summary>
    /// <param name="boundaries">One or more boundaries.</param>
    /// <exception cref="ArgumentException">The list is empty, too long, contains null or repeats a name.</exception>
    public EeKeySpec(params IEnumerable<EeBoundary> boundaries)
    {
        ArgumentNullException.ThrowIfNull(boundaries);
        _boundaries = boundaries.ToArray();
        if (_boundaries.Length == 0 || _boundaries.Length > MaxBoundaries)
        {
            throw new ArgumentException($"An EE key specification has 1 to {MaxBoundaries} boundaries, got {_boundaries.Length}.", nameof(boundaries));
        }

        _byName = new Dictionary<string, EeBoundary>(StringComparer.Ordinal);
        foreach (EeBoundary? b in _boundaries)
        {
            if (b is null)
            {
                throw new ArgumentException("An EE key specification cannot contain null boundaries.", nameof(boundaries));
            }

            if (!_byName.TryAdd(b.Name, b))
            {
                throw new ArgumentException($"Boundary name '{b.Name}' appears more than once in the EE key specification.", nameof(boundaries));
            }
        }
    }

    /// <summary>Number of boundaries.</summary>
    public int Count => _boundaries.Length;

    /// <summary>The boundary at a position.</summary>
    /// <param name="index">Position in [0, <see cref="Count"/>).</param>
    public EeBoundary this[int index] => _boundaries[index];

    /// <summary>The boundary with a given name.</summary>
    /// <param name="name">Boundary name.</param>
    /// <exception cref="ArgumentException">No boundary has that name.</exception>
    public EeBoundary this[string name] =>
        TryGetBoundary(name, out EeBoundary? b) ? b : throw UnknownBoundary(name);

    /// <summary>Looks a boundary up by name.</summary>
    /// <param name="name">Boundary name.</param>
    /// <param name="boundary">The boundary, when found.</param>
    /// <returns>True when the specification has a boundary of that name.</returns>
    public bool TryGetBoundary(string name, [NotNullWhen(true)] out EeBoundary? boundary)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out boundary);
    }

    /// <inheritdoc />
    public IEnumerator<EeBoundary> GetEnumerator() => ((IEnumerable<EeBoundary>)_boundaries).GetEnumerator();

    /// <inheritdoc />
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Lists the boundaries, e.g. <c>hidden: Orthogonal 512; vocab: Permutation 256</c>.</summary>
    /// <returns>Names, kinds and dimensions.</returns>
    public override string ToString() => string.Join("; ", _boundaries.Select(b => b.ToString()));

    internal ArgumentException UnknownBoundary(string name) =>
        new($"The EE key has no boundary named '{name}'. Known boundaries: {string.Join(", ", _boundaries.Select(b => "'" + b.Name + "'"))}.", "boundary");
}
