using System.Buffers;
using System.Diagnostics;
using System.Numerics;
using HssEe.Randomness;

namespace HssEe.Ee;

/// <summary>Which of the four related linear maps of a transform <c>T</c> to apply.</summary>
internal enum TransformOp
{
    /// <summary><c>T</c>.</summary>
    Forward,

    /// <summary><c>T^-1</c>.</summary>
    Inverse,

    /// <summary><c>T^T</c>.</summary>
    Transpose,

    /// <summary><c>T^-T</c> (used to rewrite the input side of weights: row <c>w</c> becomes <c>T^-T w</c>).</summary>
    InverseTranspose,
}

/// <summary>
/// A secret invertible linear transform <c>T</c> of one feature space (an EE transform). It acts on the
/// feature axis of row-major data; with the default <c>innerSize = 1</c> that is the last axis of
/// <c>[rows, Dimension]</c> data, and in general data is viewed as <c>[outer, Dimension, innerSize]</c>
/// (e.g. <c>innerSize = H*W</c> for the channel axis of NCHW activations).
/// </summary>
/// <remarks>
/// <para>Weights use the PyTorch layout <c>[out, in]</c> (or <c>[out, in, kernel...]</c> for convolutions).
/// The EE rewrite of a layer <c>y = W x + b</c> between an input boundary <c>T_in</c> and an output
/// boundary <c>T_out</c> is <c>W' = T_out W T_in^-1</c> and <c>b' = T_out b</c>, so that
/// <c>W' (T_in x) + b' = T_out (W x + b)</c>; see <see cref="TransformWeightInputs"/>,
/// <see cref="TransformWeightOutputs"/> and <see cref="TransformWeight"/>.</para>
/// <para>Float32 data is transformed with float64 arithmetic and rounded once. Permutations move values
/// exactly. Instances are safe for concurrent reads; the class hierarchy is closed.</para>
/// <para>A transform holds secret key material: <see cref="Dispose"/> wipes it, and neither
/// <see cref="ToString"/> nor the debugger view show it. Transforms obtained from an <see cref="EeKey"/>
/// belong to the key: their <see cref="Dispose"/> does nothing and the key wipes them when it is disposed.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public abstract class FeatureTransform : IDisposable
{
    private const long ParallelWorkThreshold = 1L << 21;
    private volatile bool _disposed;
    private bool _ownedByKey;

    private protected FeatureTransform(string name, EeTransformKind kind, int dimension)
    {
        Name = name;
        Kind = kind;
        Dimension = dimension;
    }

    /// <summary>The boundary name the transform was derived for (public information, used in messages).</summary>
    public string Name { get; }

    /// <summary>The transform kind.</summary>
    public EeTransformKind Kind { get; }

    /// <summary>Length of the feature axis the transform acts on.</summary>
    public int Dimension { get; }

    /// <summary>Work units (multiply-adds) per fiber, used to decide whether to parallelise.</summary>
    private protected virtual long FiberCost => Dimension;

    /// <summary>
    /// Samples a transform of the boundary's kind and dimension from <paramref name="prg"/>. An
    /// <see cref="EeKey"/> does this with an HKDF-derived generator per boundary; call it directly only
    /// for stand-alone transforms (and dispose them).
    /// </summary>
    /// <param name="boundary">Kind, dimension and heads of the transform.</param>
    /// <param name="prg">The randomness; the same generator state gives the same transform.</param>
    /// <returns>A new transform: <see cref="Permutation"/>, <see cref="ScaledPermutation"/>, <see cref="OrthogonalTransform"/> or <see cref="PairRotationTransform"/>.</returns>
    public static FeatureTransform Create(EeBoundary boundary, AesPrg prg)
    {
        ArgumentNullException.ThrowIfNull(boundary);
        ArgumentNullException.ThrowIfNull(prg);
        return boundary.Kind switch
        {
            EeTransformKind.Permutation => Permutation.CreateRandom(boundary.Name, boundary.Dimension, prg),
            EeTransformKind.PositiveScaling or EeTransformKind.ScaledPermutation =>
                ScaledPermutation.CreateRandom(boundary.Name, boundary.Kind, boundary.Dimension, prg),
            EeTransformKind.Orthogonal => OrthogonalTransform.CreateHaar(boundary.Name, boundary.Dimension, prg),
            EeTransformKind.OrthogonalFixingOnes => OrthogonalTransform.CreateFixingOnes(boundary.Name, boundary.Dimension, prg),
            EeTransformKind.PairRotations or EeTransformKind.PairRotationsHalfSplit =>
                PairRotationTransform.CreateRandom(boundary.Name, boundary.Kind, boundary.Dimension, boundary.Heads, prg),
            _ => throw new ArgumentOutOfRangeException(nameof(boundary), boundary.Kind, "Undefined EE transform kind."),
        };
    }

    /// <summary>Encrypts: <c>y = T x</c> along the feature axis of every row (or fiber).</summary>
    /// <param name="x">Data viewed as <c>[outer, Dimension, innerSize]</c>.</param>
    /// <param name="y">Destination of the same length; may be <paramref name="x"/> itself (in place).</param>
    /// <param name="innerSize">Elements after the feature axis (1 for <c>[rows, Dimension]</c>).</param>
    /// <exception cref="ArgumentException">The lengths differ or are not a multiple of <c>Dimension * innerSize</c>.</exception>
    /// <exception cref="ObjectDisposedException">The transform (or its key) was disposed.</exception>
    public void Apply(ReadOnlySpan<float> x, Span<float> y, int innerSize = 1) => Run(x, y, innerSize, TransformOp.Forward);

    /// <summary>Decrypts: <c>y = T^-1 x</c> along the feature axis.</summary>
    /// <param name="x">Data viewed as <c>[outer, Dimension, innerSize]</c>.</param>
    /// <param name="y">Destination of the same length; may be <paramref name="x"/> itself.</param>
    /// <param name="innerSize">Elements after the feature axis.</param>
    /// <exception cref="ArgumentException">The lengths differ or are not a multiple of <c>Dimension * innerSize</c>.</exception>
    /// <exception cref="ObjectDisposedException">The transform (or its key) was disposed.</exception>
    public void ApplyInverse(ReadOnlySpan<float> x, Span<float> y, int innerSize = 1) => Run(x, y, innerSize, TransformOp.Inverse);

    /// <summary>Encrypts float64 data: <c>y = T x</c> along the feature axis.</summary>
    /// <param name="x">Data viewed as <c>[outer, Dimension, innerSize]</c>.</param>
    /// <param name="y">Destination of the same length; may be <paramref name="x"/> itself.</param>
    /// <param name="innerSize">Elements after the feature axis.</param>
    /// <exception cref="ArgumentException">The lengths differ or are not a multiple of <c>Dimension * innerSize</c>.</exception>
    /// <exception cref="ObjectDisposedException">The transform (or its key) was disposed.</exception>
    public void Apply(ReadOnlySpan<double> x, Span<double> y, int innerSize = 1) => Run(x, y, innerSize, TransformOp.Forward);

    /// <summary>Decrypts float64 data: <c>y = T^-1 x</c> along the feature axis.</summary>
    /// <param name="x">Data viewed as <c>[outer, Dimension, innerSize]</c>.</param>
    /// <param name="y">Destination of the same length; may be <paramref name="x"/> itself.</param>
    /// <param name="innerSize">Elements after the feature axis.</param>
    /// <exception cref="ArgumentException">The lengths differ or are not a multiple of <c>Dimension * innerSize</c>.</exception>
    /// <exception cref="ObjectDisposedException">The transform (or its key) was disposed.</exception>
    public void ApplyInverse(ReadOnlySpan<double> x, Span<double> y, int innerSize = 1) => Run(x, y, innerSize, TransformOp.Inverse);

    /// <summary>
    /// Rewrites the input side of weights in place: <c>W = W T^-1</c>, so that the layer accepts
    /// encrypted inputs <c>T x</c>. The weight layout is <c>[out, Dimension, kernelSize]</c>
    /// (PyTorch <c>Linear</c> with <c>kernelSize = 1</c>, <c>Conv2d</c> with <c>kernelSize = kh*kw</c>).
    /// </summary>
    /// <param name="weight">Weights, rewritten in place.</param>
    /// <param name="kernelSize">Elements per (output, input) pair.</param>
    /// <exception cref="ArgumentException">The length is not a multiple of <c>Dimension * kernelSize</c>.</exception>
    /// <exception cref="ObjectDisposedException">The transform (or its key) was disposed.</exception>
    public void TransformWeightInputs(Span<float> weight, int kernelSize = 1)
    {
        int outer = Shape(weight.Length, weight.Length, kernelSize, nameof(weight), nameof(kernelSize));
        RunCore<float>(weight, weight, outer, kernelSize, TransformOp.InverseTranspose);
    }

    /// <summary>
    /// Rewrites the output side of weights in place: <c>W = T W</c>, so that the layer produces
    /// encrypted outputs. The layout is <c>[Dimension, rest]</c> with any <c>rest</c> (input features
    /// times kernel size); a bias vector (<c>rest = 1</c>) is rewritten the same way, <c>b = T b</c>.
    /// </summary>
    /// <param name="weight">Weights or bias, rewritten in place.</param>
    /// <exception cref="ArgumentException">The length is not a multiple of <c>Dimension</c>.</exception>
    /// <exception cref="ObjectDisposedException">The transform (or its key) was disposed.</exception>
    public void TransformWeightOutputs(Span<float> weight)
    {
        ThrowIfDisposed();
        if (weight.Length % Dimension != 0)
        {
            throw new ArgumentException($"{this}: weight length {weight.Length} is not a multiple of the output dimension {Dimension}.", nameof(weight));
        }

        int inner = weight.Length / Dimension;
        if (inner > 0)
        {
            RunCore<float>(weight, weight, 1, inner, TransformOp.Forward);
        }
    }

    /// <summary>
    /// Rewrites weights in place for EE: <c>W' = T_out W T_in^-1</c> (layout <c>[out, in, kernelSize]</c>);
    /// either side may be null (identity). Rewrite the bias with <see cref="TransformWeightOutputs"/> of
    /// <paramref name="output"/>.
    /// </summary>
    /// <param name="weight">Weights, rewritten in place.</param>
    /// <param name="output">Transform of the output features, or null.</param>
    /// <param name="input">Transform of the input features, or null.</param>
    /// <param name="kernelSize">Elements per (output, input) pair.</param>
    /// <exception cref="ArgumentException">The length is not <c>out * in * kernelSize</c> for the given transforms.</exception>
    /// <exception cref="ObjectDisposedException">A transform was disposed.</exception>
    public static void TransformWeight(Span<float> weight, FeatureTransform? output, FeatureTransform? input, int kernelSize = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(kernelSize, 1);
        if (output is not null && input is not null && (long)output.Dimension * input.Dimension * kernelSize != weight.Length)
        {
            throw new ArgumentException(
                $"Weight length {weight.Length} is not out x in x kernel = {output.Dimension} x {input.Dimension} x {kernelSize} (output '{output.Name}', input '{input.Name}').",
                nameof(weight));
        }

        if (output is null && input is not null && weight.Length % ((long)input.Dimension * kernelSize) != 0)
        {
            throw new ArgumentException($"Weight length {weight.Length} is not a multiple of in x kernel = {input.Dimension} x {kernelSize} (input '{input.Name}').", nameof(weight));
        }

        if (input is null && output is not null && weight.Length % output.Dimension != 0)
        {
            throw new ArgumentException($"Weight length {weight.Length} is not a multiple of out = {output.Dimension} (output '{output.Name}').", nameof(weight));
        }

        input?.TransformWeightInputs(weight, kernelSize);
        output?.TransformWeightOutputs(weight);
    }

    /// <summary>Wipes the key material of a stand-alone transform; further use throws <see cref="ObjectDisposedException"/>. Does nothing for a transform owned by an <see cref="EeKey"/> (the key wipes it).</summary>
    public void Dispose()
    {
        if (!_ownedByKey)
        {
            Wipe();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Describes the transform without key material, e.g. <c>OrthogonalTransform 'hidden' (Orthogonal, d=512)</c>.</summary>
    /// <returns>Type, boundary name, kind and dimension.</returns>
    public override string ToString() => $"{GetType().Name} '{Name}' ({Kind}, d={Dimension})";

    internal void MarkOwnedByKey() => _ownedByKey = true;

    internal void Wipe()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        WipeCore();
    }

    /// <summary>Allocates an array for key material on the pinned object heap, so the GC never leaves copies behind.</summary>
    internal static T[] SecretArray<T>(int length) => GC.AllocateArray<T>(length, pinned: true);

    private protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Validates a source/destination pair and returns the number of outer rows.</summary>
    private protected int Shape(int xLength, int yLength, int innerSize, string xName, string innerName)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfLessThan(innerSize, 1, innerName);
        if (xLength != yLength)
        {
            throw new ArgumentException($"{this}: destination length {yLength} differs from source length {xLength}.", "y");
        }

        long block = (long)Dimension * innerSize;
        if (xLength % block != 0)
        {
            throw new ArgumentException($"{this}: length {xLength} is not a multiple of Dimension x innerSize = {Dimension} x {innerSize}.", xName);
        }

        return (int)(xLength / block);
    }

    /// <summary>Wipes the key material (called once).</summary>
    private protected abstract void WipeCore();

    /// <summary>Applies <paramref name="op"/> to one contiguous fiber of <see cref="Dimension"/> values; <paramref name="src"/> and <paramref name="dst"/> do not overlap.</summary>
    private protected abstract void FiberCore(ReadOnlySpan<double> src, Span<double> dst, TransformOp op);

    /// <summary>
    /// Applies <paramref name="op"/> to data viewed as <c>[outer, Dimension, inner]</c> (already validated).
    /// <paramref name="y"/> may alias <paramref name="x"/> in any way. The default gathers each fiber into
    /// float64, calls <see cref="FiberCore"/> and rounds back.
    /// </summary>
    private protected virtual void RunCore<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int inner, TransformOp op)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T[]? copy = null;
        try
        {
            // Fibers read all their inputs before writing, so an exact alias is safe; any other overlap is copied.
            if (x.Overlaps(y, out int offset) && offset != 0)
            {
                copy = ArrayPool<T>.Shared.Rent(x.Length);
                x.CopyTo(copy);
                x = copy.AsSpan(0, x.Length);
            }

            RunFibers(x, y, outer, inner, op);
        }
        finally
        {
            if (copy is not null)
            {
                Array.Clear(copy);
                ArrayPool<T>.Shared.Return(copy);
            }
        }
    }

    /// <summary>Copies <paramref name="x"/> into a pooled buffer when it overlaps <paramref name="y"/>; returns the buffer to release (or null).</summary>
    private protected static T[]? DetachIfOverlapping<T>(ref ReadOnlySpan<T> x, Span<T> y)
    {
        if (!x.Overlaps(y))
        {
            return null;
        }

        T[] copy = ArrayPool<T>.Shared.Rent(x.Length);
        x.CopyTo(copy);
        x = copy.AsSpan(0, x.Length);
        return copy;
    }

    /// <summary>Clears and returns a buffer from <see cref="DetachIfOverlapping"/>.</summary>
    private protected static void Release<T>(T[]? copy)
    {
        if (copy is not null)
        {
            Array.Clear(copy);
            ArrayPool<T>.Shared.Return(copy);
        }
    }

    private void Run<T>(ReadOnlySpan<T> x, Span<T> y, int innerSize, TransformOp op)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int outer = Shape(x.Length, y.Length, innerSize, nameof(x), nameof(innerSize));
        if (outer > 0)
        {
            RunCore(x, y, outer, innerSize, op);
        }
    }

    private unsafe void RunFibers<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int inner, TransformOp op)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int d = Dimension;
        long fibers = (long)outer * inner;
        bool parallel = fibers > 1 && Environment.ProcessorCount > 1 && fibers * FiberCost >= ParallelWorkThreshold;
        fixed (T* px = x)
        fixed (T* py = y)
        {
            nint ax = (nint)px;
            nint ay = (nint)py;
            if (!parallel)
            {
                double[] buffer = new double[2 * d];
                for (long f = 0; f < fibers; f++)
                {
                    Fiber((T*)ax, (T*)ay, f, inner, buffer, op);
                }

                Array.Clear(buffer);
            }
            else
            {
                Parallel.For(
                    0L,
                    fibers,
                    () => new double[2 * d],
                    (f, _, buffer) =>
                    {
                        Fiber((T*)ax, (T*)ay, f, inner, buffer, op);
                        return buffer;
                    },
                    buffer => Array.Clear(buffer));
            }
        }
    }

    private unsafe void Fiber<T>(T* x, T* y, long fiber, int inner, double[] buffer, TransformOp op)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int d = Dimension;
        long o = fiber / inner;
        long c = fiber - (o * inner);
        long start = (o * d * inner) + c;
        Span<double> src = buffer.AsSpan(0, d);
        Span<double> dst = buffer.AsSpan(d, d);
        T* bx = x + start;
        for (int i = 0; i < d; i++)
        {
            src[i] = double.CreateTruncating(bx[(long)i * inner]);
        }

        FiberCore(src, dst, op);
        T* by = y + start;
        for (int i = 0; i < d; i++)
        {
            by[(long)i * inner] = T.CreateTruncating(dst[i]);
        }
    }
}
