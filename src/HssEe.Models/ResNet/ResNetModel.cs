using System.Collections.Concurrent;
using HssEe.Ee;
using HssEe.Models.Engine;
using HssEe.Models.IO;
using HssEe.Protocols;
using HssEe.Ring;

namespace HssEe.Models.ResNet;

/// <summary>
/// A torchvision ResNet-18/34/50 image classifier (batch of one) defined once and run in every
/// <see cref="ExecutionMode"/> through <see cref="ResNetRunner"/>.
/// </summary>
/// <remarks>
/// <para><b>Computation.</b> Every batch norm (eval mode, eps 1e-5) is folded into the convolution before
/// it: <c>W' = W * gamma / sqrt(var + eps)</c>, <c>b = beta - mean * gamma / sqrt(var + eps)</c>. Activations
/// are channels-last <c>[H*W, C]</c>. A convolution is a local gather (im2col with zero padding, columns in
/// <c>(c_in, ky, kx)</c> order to match the weight layout <c>[out, in, kh, kw]</c>) followed by a linear
/// layer with bias; the 3x3/2 max pool gathers its windows with the pad value
/// <see cref="CompositeLayers.MaxPoolPadValue"/> and takes the maximum per row; the global average pool is
/// a gather to <c>[C, H*W]</c>, a row sum and a public scale. To keep that scale exact in fixed point it
/// is <c>2^-k</c> with <c>2^k &gt;= H*W</c>; the remaining factor <c>2^k / (H*W)</c> (in [1, 2)) is folded
/// into a copy of <c>fc</c> made once per pooled size.</para>
/// <para><b>Equivariant encryption.</b> <see cref="CreateEeKeySpec"/> gives one
/// <see cref="EeTransformKind.ScaledPermutation"/> boundary (a permutation and positive scaling of the
/// channels, which commutes with ReLU, max pooling, zero padding and average pooling) per residual
/// stream and per internal convolution output, a <see cref="EeTransformKind.Permutation"/> <c>input</c>
/// of the 3 image channels (the client permutes the colour channels of its image) and a permutation
/// <c>classes</c> of the logits (the client un-permutes them).</para>
/// </remarks>
public sealed class ResNetModel
{
    /// <summary>Batch-norm epsilon of torchvision's <c>BatchNorm2d</c>.</summary>
    public const double BatchNormEpsilon = 1e-5;

    /// <summary>Image channels (RGB).</summary>
    public const int InputChannels = 3;

    /// <summary>Name of the EE boundary of the image channels (a permutation of RGB).</summary>
    public const string InputBoundary = "input";

    /// <summary>Name of the EE boundary of the logits (a permutation of the classes).</summary>
    public const string ClassesBoundary = "classes";

    private readonly ConcurrentDictionary<int, LinearLayer> _pooledHeads = new();

    private ResNetModel(ResNetConfig config, ResNetConv stem, ResNetBlock[][] stages, LinearLayer fc, bool encrypted)
    {
        Config = config;
        Stem = stem;
        Stages = stages;
        Fc = fc;
        IsEncrypted = encrypted;
    }

    /// <summary>The architecture.</summary>
    public ResNetConfig Config { get; }

    /// <summary>True for a model rewritten by <see cref="Encrypt"/> (it expects encrypted images and returns encrypted logits).</summary>
    public bool IsEncrypted { get; }

    internal ResNetConv Stem { get; }

    internal ResNetBlock[][] Stages { get; }

    internal LinearLayer Fc { get; }

    /// <summary>Loads a torchvision state dict saved as safetensors (<c>conv1.weight</c>, <c>bn1.weight</c>, ..., <c>fc.bias</c>).</summary>
    /// <param name="safetensorsPath">The file.</param>
    /// <param name="config">The architecture.</param>
    /// <returns>The model.</returns>
    public static ResNetModel Load(string safetensorsPath, ResNetConfig config)
    {
        using var weights = SafeTensorsFile.Open(safetensorsPath);
        return FromWeights(config, weights);
    }

    /// <summary>
    /// Builds the model from torchvision state-dict names: <c>conv1.weight</c>,
    /// <c>bn1.{weight,bias,running_mean,running_var}</c>, <c>layer{1-4}.{b}.conv{1,2,3}.weight</c>,
    /// <c>layer{1-4}.{b}.bn{1,2,3}.*</c>, <c>layer{1-4}.0.downsample.0.weight</c>,
    /// <c>layer{1-4}.0.downsample.1.*</c>, <c>fc.weight</c>, <c>fc.bias</c> (other tensors such as
    /// <c>num_batches_tracked</c> are ignored). Batch norms are folded into the convolutions.
    /// </summary>
    /// <param name="config">The architecture.</param>
    /// <param name="weights">The tensors.</param>
    /// <returns>The model.</returns>
    /// <exception cref="KeyNotFoundException">A tensor is missing.</exception>
    /// <exception cref="FormatException">A tensor has the wrong shape.</exception>
    public static ResNetModel FromWeights(ResNetConfig config, IWeightSource weights)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        config.Validate();
        ResNetConv stem = ReadConv(weights, "conv1", "bn1", config.Width, InputChannels, 7, 2, 3);
        var stages = new ResNetBlock[4][];
        int inChannels = config.Width;
        for (int s = 0; s < 4; s++)
        {
            int planes = config.Width << s, outChannels = planes * config.Expansion;
            stages[s] = new ResNetBlock[config.BlocksPerStage[s]];
            for (int b = 0; b < stages[s].Length; b++)
            {
                string p = $"layer{s + 1}.{b}.";
                int stride = b == 0 && s > 0 ? 2 : 1;
                ResNetConv? downsample = stride != 1 || inChannels != outChannels
                    ? ReadConv(weights, p + "downsample.0", p + "downsample.1", outChannels, inChannels, 1, stride, 0)
                    : null;
                stages[s][b] = config.UsesBottleneck
                    ? new ResNetBlock(
                        ReadConv(weights, p + "conv1", p + "bn1", planes, inChannels, 1, 1, 0),
                        ReadConv(weights, p + "conv2", p + "bn2", planes, planes, 3, stride, 1),
                        ReadConv(weights, p + "conv3", p + "bn3", outChannels, planes, 1, 1, 0),
                        downsample)
                    : new ResNetBlock(
                        ReadConv(weights, p + "conv1", p + "bn1", planes, inChannels, 3, stride, 1),
                        ReadConv(weights, p + "conv2", p + "bn2", planes, planes, 3, 1, 1),
                        null,
                        downsample);
                inChannels = outChannels;
            }
        }

        var fc = new LinearLayer(
            "fc",
            config.NumClasses,
            config.FeatureCount,
            ModelWeights.Read(weights, "fc.weight", config.NumClasses, config.FeatureCount),
            ModelWeights.Read(weights, "fc.bias", config.NumClasses));
        return new ResNetModel(config, stem, stages, fc, encrypted: false);
    }

    /// <summary>
    /// The boundaries of an EE key for this architecture: <c>input</c> (permutation of the 3 image
    /// channels), <c>classes</c> (permutation of the logits), and scaled permutations of channels: one per
    /// residual stream, <c>layer1</c> .. <c>layer4</c> (for ResNet-18/34 the stem output is the
    /// <c>layer1</c> stream; ResNet-50 has a separate <c>stem</c>), and one per internal convolution output
    /// of every block, <c>layer{s}.{b}.conv1</c> (and <c>.conv2</c> for bottleneck blocks).
    /// </summary>
    /// <param name="config">The architecture.</param>
    /// <returns>The specification.</returns>
    public static EeKeySpec CreateEeKeySpec(ResNetConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var boundaries = new List<EeBoundary>
        {
            new(InputBoundary, EeTransformKind.Permutation, InputChannels),
            new(ClassesBoundary, EeTransformKind.Permutation, config.NumClasses),
        };
        if (config.Expansion != 1)
        {
            boundaries.Add(new EeBoundary(StreamBoundary(config, 0), EeTransformKind.ScaledPermutation, config.Width));
        }

        for (int s = 1; s <= 4; s++)
        {
            int planes = config.Width << (s - 1);
            boundaries.Add(new EeBoundary(StreamBoundary(config, s), EeTransformKind.ScaledPermutation, planes * config.Expansion));
            for (int b = 0; b < config.BlocksPerStage[s - 1]; b++)
            {
                boundaries.Add(new EeBoundary($"layer{s}.{b}.conv1", EeTransformKind.ScaledPermutation, planes));
                if (config.UsesBottleneck)
                {
                    boundaries.Add(new EeBoundary($"layer{s}.{b}.conv2", EeTransformKind.ScaledPermutation, planes));
                }
            }
        }

        return new EeKeySpec(boundaries);
    }

    /// <summary>
    /// The model owner's offline rewrite: a new model whose convolution weights are
    /// <c>W' = T_out W T_in^-1</c> (per kernel position), biases <c>b' = T_out b</c>, and classifier
    /// <c>fc' = P_classes fc T_layer4^-1</c>, for the transforms of <paramref name="key"/>.
    /// </summary>
    /// <param name="key">A key made from <see cref="CreateEeKeySpec"/> for this configuration.</param>
    /// <returns>The encrypted model.</returns>
    /// <exception cref="InvalidOperationException">This model is already encrypted.</exception>
    /// <exception cref="ArgumentException">The key does not fit the architecture.</exception>
    public ResNetModel Encrypt(EeKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (IsEncrypted)
        {
            throw new InvalidOperationException("The model is already EE-encrypted.");
        }

        ModelWeights.CheckKey(key, CreateEeKeySpec(Config), "ResNet");
        ResNetConfig c = Config;
        ResNetConv stem = EncryptConv(key, Stem, StreamBoundary(c, 0), InputBoundary);
        var stages = new ResNetBlock[4][];
        for (int s = 1; s <= 4; s++)
        {
            stages[s - 1] = new ResNetBlock[Stages[s - 1].Length];
            for (int b = 0; b < stages[s - 1].Length; b++)
            {
                ResNetBlock block = Stages[s - 1][b];
                string input = StreamBoundary(c, b == 0 ? s - 1 : s), output = StreamBoundary(c, s), mid1 = $"layer{s}.{b}.conv1";
                stages[s - 1][b] = block.Conv3 is null
                    ? new ResNetBlock(
                        EncryptConv(key, block.Conv1, mid1, input),
                        EncryptConv(key, block.Conv2, output, mid1),
                        null,
                        block.Downsample is null ? null : EncryptConv(key, block.Downsample, output, input))
                    : new ResNetBlock(
                        EncryptConv(key, block.Conv1, mid1, input),
                        EncryptConv(key, block.Conv2, $"layer{s}.{b}.conv2", mid1),
                        EncryptConv(key, block.Conv3, output, $"layer{s}.{b}.conv2"),
                        block.Downsample is null ? null : EncryptConv(key, block.Downsample, output, input));
            }
        }

        LinearLayer fc = Fc.Clone();
        key.EncryptWeight(fc.Weight, ClassesBoundary, StreamBoundary(c, 4));
        key.EncryptBias(fc.Bias!, ClassesBoundary);
        return new ResNetModel(c, stem, stages, fc, encrypted: true);
    }

    /// <summary>The EE boundary of residual stream <paramref name="stage"/> (0 = stem output, 1..4 = <c>layer1..4</c>).</summary>
    internal static string StreamBoundary(ResNetConfig config, int stage) =>
        stage == 0 ? (config.Expansion == 1 ? "layer1" : "stem") : $"layer{stage}";

    /// <summary>Spatial size of the last stage (what the average pool sees) for an input of <paramref name="height"/> x <paramref name="width"/>: five stride-2 steps, each <c>ceil(n / 2)</c>.</summary>
    internal static (int Height, int Width) FinalMapSize(int height, int width)
    {
        for (int i = 0; i < 5; i++)
        {
            (height, width) = ((height + 1) / 2, (width + 1) / 2);
        }

        return (height, width);
    }

    /// <summary>Checks an image's size and converts it from <c>[3, H, W]</c> (torchvision) to channels-last <c>[H*W, 3]</c>.</summary>
    internal static FloatTensor ToChannelsLast(float[] imageChw, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(imageChw);
        if (height < 1 || width < 1 || height > 8192 || width > 8192)
        {
            throw new ArgumentOutOfRangeException(nameof(height), $"Image size {height}x{width} is out of range: height and width must be in [1, 8192].");
        }

        int hw = height * width;
        if (imageChw.Length != InputChannels * hw)
        {
            throw new ArgumentException(
                $"The image must be [3, {height}, {width}] (torchvision CHW, {InputChannels * hw} values); got {imageChw.Length} values.",
                nameof(imageChw));
        }

        var x = new float[imageChw.Length];
        for (int c = 0; c < InputChannels; c++)
        {
            for (int p = 0; p < hw; p++)
            {
                x[(p * InputChannels) + c] = imageChw[(c * hw) + p];
            }
        }

        return new FloatTensor(x, new TensorShape(hw, InputChannels));
    }

    /// <summary>
    /// The forward pass on a channels-last image <c>x [H*W, 3]</c>: logits <c>[1, classes]</c> at the engine's
    /// working scale, or, with <paramref name="stopAfterStage"/> in 1..4, the output of that stage
    /// <c>[H_s*W_s, C_s]</c> (channels-last).
    /// </summary>
    internal async ValueTask<T> ForwardAsync<T>(Engine<T> e, T x, int height, int width, int stopAfterStage = 0)
        where T : class
    {
        TensorShape inShape = e.ShapeOf(x);
        if (inShape.Rank != 2 || inShape[0] != height * width || inShape[1] != InputChannels)
        {
            throw new ArgumentException($"The input must be [{height * width}, {InputChannels}] (channels-last {height}x{width} image); got {inShape}.", nameof(x));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(stopAfterStage);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(stopAfterStage, 4);
        int h = height, w = width;
        (x, h, w) = await ConvAsync(e, x, h, w, Stem).ConfigureAwait(false);
        x = await e.ReluAsync(x, "relu").ConfigureAwait(false);
        (x, h, w) = await MaxPoolAsync(e, x, h, w, Stem.OutChannels).ConfigureAwait(false);
        for (int s = 0; s < Stages.Length; s++)
        {
            for (int b = 0; b < Stages[s].Length; b++)
            {
                ResNetBlock block = Stages[s][b];
                string p = $"layer{s + 1}.{b}";
                (T y, int oh, int ow) = await ConvAsync(e, x, h, w, block.Conv1).ConfigureAwait(false);
                y = await e.ReluAsync(y, p + ".relu1").ConfigureAwait(false);
                (y, oh, ow) = await ConvAsync(e, y, oh, ow, block.Conv2).ConfigureAwait(false);
                if (block.Conv3 is { } conv3)
                {
                    y = await e.ReluAsync(y, p + ".relu2").ConfigureAwait(false);
                    (y, oh, ow) = await ConvAsync(e, y, oh, ow, conv3).ConfigureAwait(false);
                }

                T identity = block.Downsample is { } ds ? (await ConvAsync(e, x, h, w, ds).ConfigureAwait(false)).Y : x;
                x = await e.ReluAsync(e.Add(y, identity), p + ".relu").ConfigureAwait(false);
                (h, w) = (oh, ow);
            }

            if (stopAfterStage == s + 1)
            {
                return x;
            }
        }

        // Global average pool: [H*W, C] -> [C, H*W] -> row sums -> * 2^-k; the factor 2^k / (H*W) is in the head.
        int hw = h * w, channels = Config.FeatureCount;
        var transpose = new int[channels * hw];
        for (int c = 0; c < channels; c++)
        {
            for (int q = 0; q < hw; q++)
            {
                transpose[(c * hw) + q] = (q * channels) + c;
            }
        }

        T pooled = e.SumLastAxis(e.Gather(x, transpose, new TensorShape(channels, hw)), new TensorShape(1, channels));
        int pow2 = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)hw);
        pooled = e.Scale(pooled, 1.0 / pow2);
        T logits = await e.LinearAsync(pooled, PooledHead(hw, pow2)).ConfigureAwait(false);
        return await e.RescaleAsync(logits, "logits").ConfigureAwait(false);
    }

    /// <summary>The classifier with the average pool's leftover factor <c>2^k / (H*W)</c> folded in (cached per size).</summary>
    private LinearLayer PooledHead(int hw, int pow2) =>
        hw == pow2 ? Fc : _pooledHeads.GetOrAdd(hw, static (n, arg) =>
        {
            LinearLayer head = arg.Fc.Clone();
            float factor = (float)((double)arg.Pow2 / n);
            System.Numerics.Tensors.TensorPrimitives.Multiply(head.Weight, factor, head.Weight);
            return head;
        }, (Fc, Pow2: pow2));

    private static async ValueTask<(T Y, int H, int W)> ConvAsync<T>(Engine<T> e, T x, int h, int w, ResNetConv conv)
        where T : class
    {
        int k = conv.Kernel, s = conv.Stride, pad = conv.Padding, cin = conv.InChannels;
        int oh = ((h + (2 * pad) - k) / s) + 1, ow = ((w + (2 * pad) - k) / s) + 1;
        if (k == 1 && s == 1 && pad == 0)
        {
            return (await e.LinearAsync(x, conv.Layer).ConfigureAwait(false), oh, ow);
        }

        int cols = cin * k * k;
        var index = new int[oh * ow * cols];
        for (int oy = 0; oy < oh; oy++)
        {
            for (int ox = 0; ox < ow; ox++)
            {
                int row = ((oy * ow) + ox) * cols;
                for (int ci = 0; ci < cin; ci++)
                {
                    for (int ky = 0; ky < k; ky++)
                    {
                        int iy = (oy * s) - pad + ky;
                        for (int kx = 0; kx < k; kx++)
                        {
                            int ix = (ox * s) - pad + kx;
                            bool inside = (uint)iy < (uint)h && (uint)ix < (uint)w;
                            index[row + (((ci * k) + ky) * k) + kx] = inside ? (((iy * w) + ix) * cin) + ci : -1;
                        }
                    }
                }
            }
        }

        T columns = e.Gather(x, index, new TensorShape(oh * ow, cols));
        return (await e.LinearAsync(columns, conv.Layer).ConfigureAwait(false), oh, ow);
    }

    /// <summary>Max pool 3x3, stride 2, padding 1 on <c>[H*W, C]</c>; padded positions hold <see cref="CompositeLayers.MaxPoolPadValue"/>.</summary>
    private static async ValueTask<(T Y, int H, int W)> MaxPoolAsync<T>(Engine<T> e, T x, int h, int w, int channels)
        where T : class
    {
        const int k = 3, s = 2, pad = 1;
        int oh = ((h + (2 * pad) - k) / s) + 1, ow = ((w + (2 * pad) - k) / s) + 1;
        var index = new int[oh * ow * channels * k * k];
        for (int oy = 0; oy < oh; oy++)
        {
            for (int ox = 0; ox < ow; ox++)
            {
                for (int c = 0; c < channels; c++)
                {
                    int row = ((((oy * ow) + ox) * channels) + c) * k * k;
                    for (int ky = 0; ky < k; ky++)
                    {
                        int iy = (oy * s) - pad + ky;
                        for (int kx = 0; kx < k; kx++)
                        {
                            int ix = (ox * s) - pad + kx;
                            bool inside = (uint)iy < (uint)h && (uint)ix < (uint)w;
                            index[row + (ky * k) + kx] = inside ? (((iy * w) + ix) * channels) + c : -1;
                        }
                    }
                }
            }
        }

        T windows = e.Gather(x, index, new TensorShape(oh * ow * channels, k * k), (float)CompositeLayers.MaxPoolPadValue);
        T y = await e.MaxLastAxisAsync(windows, new TensorShape(oh * ow, channels), "maxpool").ConfigureAwait(false);
        return (y, oh, ow);
    }

    private static ResNetConv EncryptConv(EeKey key, ResNetConv conv, string output, string input)
    {
        LinearLayer layer = conv.Layer.Clone();
        key.EncryptWeight(layer.Weight, output, input, conv.Kernel * conv.Kernel);
        key.EncryptBias(layer.Bias!, output);
        return conv with { Layer = layer };
    }

    /// <summary>Reads a bias-free convolution and the batch norm after it, and folds the norm into weight and bias.</summary>
    private static ResNetConv ReadConv(IWeightSource weights, string conv, string bn, int outChannels, int inChannels, int kernel, int stride, int padding)
    {
        int fan = inChannels * kernel * kernel;
        float[] w = ModelWeights.Read(weights, conv + ".weight", outChannels, inChannels, kernel, kernel);
        float[] gamma = ModelWeights.Read(weights, bn + ".weight", outChannels);
        float[] beta = ModelWeights.Read(weights, bn + ".bias", outChannels);
        float[] mean = ModelWeights.Read(weights, bn + ".running_mean", outChannels);
        float[] variance = ModelWeights.Read(weights, bn + ".running_var", outChannels);
        var bias = new float[outChannels];
        for (int o = 0; o < outChannels; o++)
        {
            if (!(variance[o] >= 0))
            {
                throw new FormatException($"Tensor '{bn}.running_var' has a negative or NaN entry {variance[o]} at channel {o}.");
            }

            double scale = gamma[o] / Math.Sqrt(variance[o] + BatchNormEpsilon);
            Span<float> row = w.AsSpan(o * fan, fan);
            for (int i = 0; i < row.Length; i++)
            {
                row[i] = (float)(row[i] * scale);
            }

            bias[o] = (float)(beta[o] - (mean[o] * scale));
        }

        return new ResNetConv(new LinearLayer(conv, outChannels, fan, w, bias), inChannels, kernel, stride, padding);
    }
}

/// <summary>A convolution with its batch norm folded: a linear layer over im2col rows <c>[out, in * k * k]</c> with bias.</summary>
internal sealed record ResNetConv(LinearLayer Layer, int InChannels, int Kernel, int Stride, int Padding)
{
    public int OutChannels => Layer.Out;
}

/// <summary>One residual block: basic (<c>Conv3</c> null) or bottleneck; <c>Downsample</c> is the 1x1 projection shortcut, if any.</summary>
internal sealed record ResNetBlock(ResNetConv Conv1, ResNetConv Conv2, ResNetConv? Conv3, ResNetConv? Downsample);
