using System.Diagnostics;
using HssEe.Randomness;

namespace HssEe.Ee;

/// <summary>
/// A secret transform of attention heads that commutes with rotary position embeddings (RoPE): output
/// head <c>i</c> is input head <c>headSource[i]</c> with each of its feature pairs rotated by an
/// independent uniform angle <c>phi[i, p]</c>. Pairs are <c>(2p, 2p+1)</c> for
/// <see cref="EeTransformKind.PairRotations"/> and <c>(p, p + headDim/2)</c> ("rotate half", Hugging Face
/// LLaMA) for <see cref="EeTransformKind.PairRotationsHalfSplit"/>.
/// </summary>
/// <remarks>
/// RoPE rotates pair <c>p</c> of every head by <c>pos * theta_p</c>; 2-D rotations commute and every head
/// uses the same frequencies, so <c>RoPE(T x) = T RoPE(x)</c>. The transform is orthogonal, so applying
/// it to q and k keeps every per-head score <c>q_h . k_h</c> (the score of input head <c>h</c> moves to
/// head <see cref="MapHead"/>(h)). Apply the same transform to v; for grouped-query attention use
/// <see cref="RepeatHeads"/> for the query side.
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class PairRotationTransform : FeatureTransform
{
    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly int[] _headSource;

    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly int[] _headTarget;

    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly double[] _cos; // [heads, headDim / 2], indexed by output head

    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly double[] _sin;

    private PairRotationTransform(string name, EeTransformKind kind, int heads, int headDimension, int[] headSource, double[] cos, double[] sin)
        : base(name, kind, heads * headDimension)
    {
        Heads = heads;
        HeadDimension = headDimension;
        _headSource = headSource;
        _headTarget = EeSampling.Invert(headSource);
        _cos = cos;
        _sin = sin;
    }

    /// <summary>Number of heads.</summary>
    public int Heads { get; }

    /// <summary>Features per head (even).</summary>
    public int HeadDimension { get; }

    /// <summary>The output head that input head <paramref name="head"/> is moved to.</summary>
    /// <param name="head">Input head in [0, <see cref="Heads"/>).</param>
    /// <returns>Output head.</returns>
    public int MapHead(int head)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)head, (uint)Heads, nameof(head));
        return _headTarget[head];
    }

    /// <summary>
    /// The matching transform of a grouped-query attention's query heads, where query head
    /// <c>k * g + j</c> (<c>j &lt; g</c>) attends with key/value head <c>k</c> (Hugging Face <c>repeat_kv</c>):
    /// every query head gets its key/value head's rotations, and groups move together with their
    /// key/value head. Then the score of each (query head, key/value head) pair is preserved.
    /// </summary>
    /// <param name="queriesPerKvHead">Group size <c>g</c> (query heads per key/value head), at least 1.</param>
    /// <returns>A new stand-alone transform over <c>Heads * g</c> heads (dispose it).</returns>
    public PairRotationTransform RepeatHeads(int queriesPerKvHead)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfLessThan(queriesPerKvHead, 1);
        int g = queriesPerKvHead;
        if ((long)Dimension * g > EeBoundary.MaxDimension)
        {
            throw new ArgumentOutOfRangeException(nameof(queriesPerKvHead), g, $"{this}: repeated dimension exceeds {EeBoundary.MaxDimension}.");
        }

        int half = HeadDimension / 2;
        int heads = Heads * g;
        int[] source = SecretArray<int>(heads);
        double[] cos = SecretArray<double>(heads * half);
        double[] sin = SecretArray<double>(heads * half);
        for (int i = 0; i < Heads; i++)
        {
            for (int j = 0; j < g; j++)
            {
                int qi = (i * g) + j;
                source[qi] = (_headSource[i] * g) + j;
                Array.Copy(_cos, i * half, cos, qi * half, half);
                Array.Copy(_sin, i * half, sin, qi * half, half);
            }
        }

        return new PairRotationTransform($"{Name}*{g}", Kind, heads, HeadDimension, source, cos, sin);
    }

    internal static PairRotationTransform CreateRandom(string name, EeTransformKind kind, int dimension, int heads, AesPrg prg)
    {
        int headDim = dimension / heads;
        int half = headDim / 2;
        int[] source = EeSampling.FisherYates(heads, prg);
        double[] cos = SecretArray<double>(heads * half);
        double[] sin = SecretArray<double>(heads * half);
        for (int k = 0; k < cos.Length; k++)
        {
            double angle = 2.0 * Math.PI * prg.NextDouble();
            cos[k] = Math.Cos(angle);
            sin[k] = Math.Sin(angle);
        }

        return new PairRotationTransform(name, kind, heads, headDim, source, cos, sin);
    }

    private protected override void WipeCore()
    {
        Array.Clear(_headSource);
        Array.Clear(_headTarget);
        Array.Clear(_cos);
        Array.Clear(_sin);
    }

    private protected override void FiberCore(ReadOnlySpan<double> src, Span<double> dst, TransformOp op)
    {
        int hd = HeadDimension;
        int half = hd / 2;
        bool interleaved = Kind == EeTransformKind.PairRotations;
        bool inverse = op is TransformOp.Inverse or TransformOp.Transpose; // orthogonal: T^T = T^-1, T^-T = T
        for (int i = 0; i < Heads; i++)
        {
            int outBase = i * hd;
            int inBase = _headSource[i] * hd;
            for (int p = 0; p < half; p++)
            {
                int a = interleaved ? 2 * p : p;
                int b = interleaved ? (2 * p) + 1 : p + half;
                double c = _cos[(i * half) + p];
                double s = _sin[(i * half) + p];
                if (!inverse)
                {
                    // output head i = R_i (input head source[i])
                    double xa = src[inBase + a];
                    double xb = src[inBase + b];
                    dst[outBase + a] = (c * xa) - (s * xb);
                    dst[outBase + b] = (s * xa) + (c * xb);
                }
                else
                {
                    // input head source[i] = R_i^T (output head i)
                    double ya = src[outBase + a];
                    double yb = src[outBase + b];
                    dst[inBase + a] = (c * ya) + (s * yb);
                    dst[inBase + b] = (c * yb) - (s * ya);
                }
            }
        }
    }
}
