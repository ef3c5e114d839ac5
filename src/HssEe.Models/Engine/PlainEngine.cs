using HssEe.Compute;
using HssEe.Ring;
using MathNet.Numerics;

namespace HssEe.Models.Engine;

/// <summary>A float32 tensor: row-major data and a shape.</summary>
internal sealed class FloatTensor
{
    public FloatTensor(float[] data, TensorShape shape)
    {
        if (data.Length != shape.ElementCount)
        {
            throw new ArgumentException($"Data length {data.Length} differs from shape {shape} ({shape.ElementCount} elements).", nameof(data));
        }

        Data = data;
        Shape = shape;
    }

    public float[] Data { get; }

    public TensorShape Shape { get; }

    public override string ToString() => "FloatTensor" + Shape;
}

/// <summary>
/// The float32 engine of the Plain and EE modes (EE runs it on rewritten weights). Linear layers and
/// matrix products go through <see cref="ComputeBackend.FloatGemm"/>; the element-wise functions are
/// the float32 definitions PyTorch uses (softmax max-subtracted, RMS norm <c>x / sqrt(mean(x^2) + eps)</c>).
/// </summary>
internal sealed class PlainEngine : Engine<FloatTensor>
{
    private readonly ComputeBackend _backend;

    public PlainEngine(ComputeBackend? backend = null) => _backend = backend ?? ComputeBackend.Cpu;

    public override TensorShape ShapeOf(FloatTensor x) => x.Shape;

    public override FloatTensor Reshape(FloatTensor x, TensorShape shape) => new(x.Data, shape);

    public override ValueTask<FloatTensor> LinearAsync(FloatTensor x, LinearLayer layer)
    {
        int k = x.Shape[-1];
        if (k != layer.In)
        {
            throw new ArgumentException($"{layer}: input has {k} features (shape {x.Shape}).", nameof(x));
        }

        int m = x.Shape.ElementCount / k;
        var y = new float[m * layer.Out];
        _backend.FloatGemm(x.Data, layer.Weight, y, m, k, layer.Out);
        if (layer.Bias is { } b)
        {
            for (int r = 0; r < m; r++)
            {
                System.Numerics.Tensors.TensorPrimitives.Add(y.AsSpan(r * layer.Out, layer.Out), b, y.AsSpan(r * layer.Out, layer.Out));
            }
        }

        return ValueTask.FromResult(new FloatTensor(y, WithLast(x.Shape, layer.Out)));
    }

    public override FloatTensor Add(FloatTensor a, FloatTensor b)
    {
        TensorShape.ThrowIfDifferent(a.Shape, b.Shape, nameof(b), "Add");
        var y = new float[a.Data.Length];
        System.Numerics.Tensors.TensorPrimitives.Add(a.Data, b.Data, y);
        return new FloatTensor(y, a.Shape);
    }

    public override FloatTensor AddPublic(FloatTensor x, float[] constants)
    {
        CheckLength(x, constants);
        var y = new float[x.Data.Length];
        System.Numerics.Tensors.TensorPrimitives.Add(x.Data, constants, y);
        return new FloatTensor(y, x.Shape);
    }

    public override FloatTensor MultiplyPublic(FloatTensor x, float[] constants)
    {
        CheckLength(x, constants);
        var y = new float[x.Data.Length];
        System.Numerics.Tensors.TensorPrimitives.Multiply(x.Data, constants, y);
        return new FloatTensor(y, x.Shape);
    }

    public override FloatTensor Scale(FloatTensor x, double factor)
    {
        var y = new float[x.Data.Length];
        System.Numerics.Tensors.TensorPrimitives.Multiply(x.Data, (float)factor, y);
        return new FloatTensor(y, x.Shape);
    }

    public override FloatTensor Gather(FloatTensor x, int[] index, TensorShape shape, float pad = 0)
    {
        CheckIndex(index, shape, x.Data.Length);
        var y = new float[index.Length];
        float[] src = x.Data;
        for (int i = 0; i < y.Length; i++)
        {
            int j = index[i];
            y[i] = j >= 0 ? src[j] : pad;
        }

        return new FloatTensor(y, shape);
    }

    public override FloatTensor Concat(FloatTensor a, FloatTensor b, TensorShape shape)
    {
        if (a.Data.Length + b.Data.Length != shape.ElementCount)
        {
            throw new ArgumentException($"Concat of {a.Shape} and {b.Shape} cannot have shape {shape}.", nameof(shape));
        }

        return new FloatTensor([.. a.Data, .. b.Data], shape);
    }

    public override FloatTensor SumLastAxis(FloatTensor x, TensorShape shape)
    {
        int k = x.Shape[-1], rows = x.Data.Length / k;
        CheckRows(shape, rows);
        var y = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            y[r] = System.Numerics.Tensors.TensorPrimitives.Sum<float>(x.Data.AsSpan(r * k, k));
        }

        return new FloatTensor(y, shape);
    }

    public override ValueTask<FloatTensor> ReluAsync(FloatTensor x, string label) =>
        Map(x, static v => MathF.Max(v, 0));

    public override ValueTask<FloatTensor> SiluAsync(FloatTensor x, string label) =>
        Map(x, static v => v / (1 + MathF.Exp(-v)));

    public override ValueTask<FloatTensor> GeluAsync(FloatTensor x, bool tanhApproximation, string label) =>
        tanhApproximation ? Map(x, static v => (float)GeluTanh(v)) : Map(x, static v => (float)(0.5 * v * (1 + SpecialFunctions.Erf(v / Math.Sqrt(2)))));

    /// <summary>Hugging Face <c>gelu_new</c>: <c>0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))</c>.</summary>
    public static double GeluTanh(double v) => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + (0.044715 * v * v * v))));

    public override ValueTask<FloatTensor> MultiplyAsync(FloatTensor a, FloatTensor b, string label)
    {
        TensorShape.ThrowIfDifferent(a.Shape, b.Shape, nameof(b), label);
        var y = new float[a.Data.Length];
        System.Numerics.Tensors.TensorPrimitives.Multiply(a.Data, b.Data, y);
        return ValueTask.FromResult(new FloatTensor(y, a.Shape));
    }

    public override ValueTask<FloatTensor> BatchMatMulAsync(FloatTensor a, FloatTensor b, string label)
    {
        (int batch, int m, int k, int n) = CheckBatchMatMul(a.Shape, b.Shape, label);
        var y = new float[batch * m * n];
        var bT = new float[k * n];
        for (int t = 0; t < batch; t++)
        {
            ReadOnlySpan<float> bt = b.Data.AsSpan(t * k * n, k * n);
            for (int r = 0; r < k; r++)
            {
                for (int c = 0; c < n; c++)
                {
                    bT[(c * k) + r] = bt[(r * n) + c];
                }
            }

            _backend.FloatGemm(a.Data.AsSpan(t * m * k, m * k), bT, y.AsSpan(t * m * n, m * n), m, k, n);
        }

        return ValueTask.FromResult(new FloatTensor(y, new TensorShape(batch, m, n)));
    }

    public override ValueTask<FloatTensor> SoftmaxAsync(FloatTensor x, bool causal, string label)
    {
        int k = x.Shape[-1];
        int q = causal ? x.Shape[-2] : 1;
        int rows = x.Data.Length / k;
        var y = new float[x.Data.Length];
        for (int r = 0; r < rows; r++)
        {
            int valid = causal ? (r % q) + k - q + 1 : k;
            ReadOnlySpan<float> src = x.Data.AsSpan(r * k, valid);
            Span<float> dst = y.AsSpan(r * k, valid);
            float max = System.Numerics.Tensors.TensorPrimitives.Max(src);
            float sum = 0;
            for (int j = 0; j < valid; j++)
            {
                dst[j] = MathF.Exp(src[j] - max);
                sum += dst[j];
            }

            System.Numerics.Tensors.TensorPrimitives.Divide(dst, sum, dst);
        }

        return ValueTask.FromResult(new FloatTensor(y, x.Shape));
    }

    public override ValueTask<FloatTensor> RmsNormAsync(FloatTensor x, double epsilon, string label)
    {
        int d = x.Shape[-1], rows = x.Data.Length / d;
        var y = new float[x.Data.Length];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> src = x.Data.AsSpan(r * d, d);
            float meanSquare = System.Numerics.Tensors.TensorPrimitives.SumOfSquares(src) / d;
            float inv = 1 / MathF.Sqrt(meanSquare + (float)epsilon);
            System.Numerics.Tensors.TensorPrimitives.Multiply(src, inv, y.AsSpan(r * d, d));
        }

        return ValueTask.FromResult(new FloatTensor(y, x.Shape));
    }

    public override ValueTask<FloatTensor> RescaleAsync(FloatTensor x, string label) => ValueTask.FromResult(x);

    public override ValueTask<FloatTensor> MaxLastAxisAsync(FloatTensor x, TensorShape shape, string label)
    {
        int k = x.Shape[-1], rows = x.Data.Length / k;
        CheckRows(shape, rows);
        var y = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            y[r] = System.Numerics.Tensors.TensorPrimitives.Max<float>(x.Data.AsSpan(r * k, k));
        }

        return ValueTask.FromResult(new FloatTensor(y, shape));
    }

    internal static TensorShape WithLast(TensorShape shape, int last)
    {
        int[] dims = shape.Dimensions.ToArray();
        dims[^1] = last;
        return new TensorShape(dims);
    }

    internal static (int Batch, int M, int K, int N) CheckBatchMatMul(TensorShape a, TensorShape b, string label)
    {
        if (a.Rank != 3 || b.Rank != 3 || a[0] != b[0] || a[2] != b[1])
        {
            throw new ArgumentException($"{label}: batched product needs [B, m, k] x [B, k, n]; got {a} x {b}.");
        }

        return (a[0], a[1], a[2], b[2]);
    }

    internal static void CheckIndex(int[] index, TensorShape shape, int sourceLength)
    {
        if (index.Length != shape.ElementCount)
        {
            throw new ArgumentException($"Gather index has {index.Length} entries but shape {shape} needs {shape.ElementCount}.", nameof(index));
        }

        foreach (int j in index)
        {
            if (j >= sourceLength)
            {
                throw new ArgumentOutOfRangeException(nameof(index), $"Gather index {j} is past the source length {sourceLength}.");
            }
        }
    }

    internal static void CheckRows(TensorShape shape, int rows)
    {
        if (shape.ElementCount != rows)
        {
            throw new ArgumentException($"Reduction result shape {shape} does not have {rows} elements.", nameof(shape));
        }
    }

    private static void CheckLength(FloatTensor x, float[] constants)
    {
        if (constants.Length != x.Data.Length)
        {
            throw new ArgumentException($"{constants.Length} public constants for a tensor of shape {x.Shape}.", nameof(constants));
        }
    }

    private static ValueTask<FloatTensor> Map(FloatTensor x, Func<float, float> f)
    {
        var y = new float[x.Data.Length];
        for (int i = 0; i < y.Length; i++)
        {
            y[i] = f(x.Data[i]);
        }

        return ValueTask.FromResult(new FloatTensor(y, x.Shape));
    }
}
