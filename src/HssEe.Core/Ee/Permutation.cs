using System.Diagnostics;
using System.Numerics;
using HssEe.Randomness;

namespace HssEe.Ee;

/// <summary>
/// A secret permutation of the features: <c>y[i] = x[source[i]]</c> (a gather; as a matrix,
/// <c>P[i, source[i]] = 1</c>). Permutations commute with every element-wise operator and with additive
/// secret sharing, so they can also be applied to ring data (<see cref="Permute{T}"/>).
/// </summary>
/// <remarks>
/// Random permutations are uniform: Fisher-Yates with unbiased bounded draws from <see cref="AesPrg"/>.
/// Composition convention: <c>a.Then(b)</c> applies <c>a</c> first, then <c>b</c>
/// (<c>a.Then(b).Apply(x) == b.Apply(a.Apply(x))</c>, matrix <c>P_b P_a</c>).
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class Permutation : FeatureTransform
{
    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly int[] _source;

    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly int[] _target;

    private Permutation(string name, int[] source)
        : base(name, EeTransformKind.Permutation, source.Length)
    {
        _source = source;
        _target = EeSampling.Invert(source);
    }

    /// <summary>
    /// Creates a permutation from its source indices (<c>y[i] = x[sourceIndices[i]]</c>). Meant for
    /// tests and for tools that already hold a permutation (e.g. one recovered by an attack); use
    /// <see cref="EeKey"/> to create secret ones.
    /// </summary>
    /// <param name="sourceIndices">A permutation of <c>[0, n)</c>, <c>n &gt;= 1</c>.</param>
    /// <returns>A stand-alone permutation (dispose it).</returns>
    /// <exception cref="ArgumentException">The indices are empty, out of range or repeated.</exception>
    public static Permutation FromIndices(ReadOnlySpan<int> sourceIndices)
    {
        if (sourceIndices.IsEmpty)
        {
            throw new ArgumentException("A permutation needs at least one index.", nameof(sourceIndices));
        }

        int n = sourceIndices.Length;
        bool[] seen = new bool[n];
        int[] source = SecretArray<int>(n);
        for (int i = 0; i < n; i++)
        {
            int s = sourceIndices[i];
            if ((uint)s >= (uint)n || seen[s])
            {
                Array.Clear(source);
                throw new ArgumentException($"Index {s} at position {i} is out of range [0, {n}) or repeated: not a permutation.", nameof(sourceIndices));
            }

            seen[s] = true;
            source[i] = s;
        }

        return new Permutation("custom", source);
    }

    /// <summary>Where input element <paramref name="index"/> lands in the output (<c>source^-1[index]</c>); used to encrypt token ids.</summary>
    /// <param name="index">Input position in [0, <see cref="FeatureTransform.Dimension"/>).</param>
    /// <returns>Output position.</returns>
    public int MapIndex(int index)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Dimension, nameof(index));
        return _target[index];
    }

    /// <summary>Which input element output position <paramref name="position"/> holds (<c>source[position]</c>); used to decrypt token ids.</summary>
    /// <param name="position">Output position in [0, <see cref="FeatureTransform.Dimension"/>).</param>
    /// <returns>Input position.</returns>
    public int UnmapIndex(int position)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)position, (uint)Dimension, nameof(position));
        return _source[position];
    }

    /// <summary>The inverse permutation, as a new stand-alone transform (dispose it).</summary>
    /// <returns><c>P^-1</c>.</returns>
    public Permutation Inverse()
    {
        ThrowIfDisposed();
        int[] source = SecretArray<int>(Dimension);
        _target.CopyTo(source, 0);
        return new Permutation(Name + "^-1", source);
    }

    /// <summary>The composition "this, then <paramref name="next"/>": <c>Then(next).Apply(x) == next.Apply(Apply(x))</c> (matrix <c>P_next P_this</c>).</summary>
    /// <param name="next">The permutation applied second; same dimension.</param>
    /// <returns>A new stand-alone permutation (dispose it).</returns>
    /// <exception cref="ArgumentException">The dimensions differ.</exception>
    public Permutation Then(Permutation next)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(next);
        next.ThrowIfDisposed();
        if (next.Dimension != Dimension)
        {
            throw new ArgumentException($"Cannot compose {this} with {next}: dimensions differ.", nameof(next));
        }

        int[] source = SecretArray<int>(Dimension);
        for (int i = 0; i < source.Length; i++)
        {
            source[i] = _source[next._source[i]];
        }

        return new Permutation(Name + ".Then(" + next.Name + ")", source);
    }

    /// <summary>Permutes any unmanaged data exactly (e.g. shares over Z_2^64): <c>y[i] = x[source[i]]</c> along the feature axis.</summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <param name="x">Data viewed as <c>[outer, Dimension, innerSize]</c>.</param>
    /// <param name="y">Destination of the same length; may overlap <paramref name="x"/>.</param>
    /// <param name="innerSize">Elements after the feature axis.</param>
    /// <exception cref="ArgumentException">The lengths differ or are not a multiple of <c>Dimension * innerSize</c>.</exception>
    public void Permute<T>(ReadOnlySpan<T> x, Span<T> y, int innerSize = 1)
        where T : unmanaged
    {
        int outer = Shape(x.Length, y.Length, innerSize, nameof(x), nameof(innerSize));
        Move(x, y, outer, innerSize, scatter: false);
    }

    /// <summary>Undoes <see cref="Permute{T}"/>: <c>y[source[i]] = x[i]</c> along the feature axis.</summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <param name="x">Data viewed as <c>[outer, Dimension, innerSize]</c>.</param>
    /// <param name="y">Destination of the same length; may overlap <paramref name="x"/>.</param>
    /// <param name="innerSize">Elements after the feature axis.</param>
    /// <exception cref="ArgumentException">The lengths differ or are not a multiple of <c>Dimension * innerSize</c>.</exception>
    public void Unpermute<T>(ReadOnlySpan<T> x, Span<T> y, int innerSize = 1)
        where T : unmanaged
    {
        int outer = Shape(x.Length, y.Length, innerSize, nameof(x), nameof(innerSize));
        Move(x, y, outer, innerSize, scatter: true);
    }

    /// <summary>A copy of the source indices (secret; tests only).</summary>
    internal int[] CopySourceIndices()
    {
        ThrowIfDisposed();
        return (int[])_source.Clone();
    }

    internal static Permutation CreateRandom(string name, int n, AesPrg prg) => new(name, EeSampling.FisherYates(n, prg));

    private protected override void WipeCore()
    {
        Array.Clear(_source);
        Array.Clear(_target);
    }

    private protected override void RunCore<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int inner, TransformOp op) =>
        Move(x, y, outer, inner, scatter: op is TransformOp.Inverse or TransformOp.Transpose);

    private protected override void FiberCore(ReadOnlySpan<double> src, Span<double> dst, TransformOp op)
    {
        if (op is TransformOp.Inverse or TransformOp.Transpose)
        {
            for (int i = 0; i < _source.Length; i++)
            {
                dst[_source[i]] = src[i];
            }
        }
        else
        {
            for (int i = 0; i < _source.Length; i++)
            {
                dst[i] = src[_source[i]];
            }
        }
    }

    private void Move<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int inner, bool scatter)
    {
        T[]? copy = DetachIfOverlapping(ref x, y);
        try
        {
            int d = Dimension;
            int block = d * inner;
            int[] source = _source;
            for (int o = 0; o < outer; o++)
            {
                ReadOnlySpan<T> xs = x.Slice(o * block, block);
                Span<T> ys = y.Slice(o * block, block);
                if (inner == 1)
                {
                    if (scatter)
                    {
                        for (int i = 0; i < d; i++)
                        {
                            ys[source[i]] = xs[i];
                        }
                    }
                    else
                    {
                        for (int i = 0; i < d; i++)
                        {
                            ys[i] = xs[source[i]];
                        }
                    }
                }
                else if (scatter)
                {
                    for (int i = 0; i < d; i++)
                    {
                        xs.Slice(i * inner, inner).CopyTo(ys.Slice(source[i] * inner, inner));
                    }
                }
                else
                {
                    for (int i = 0; i < d; i++)
                    {
                        xs.Slice(source[i] * inner, inner).CopyTo(ys.Slice(i * inner, inner));
                    }
                }
            }
        }
        finally
        {
            Release(copy);
        }
    }
}
