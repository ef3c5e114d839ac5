using HssEe.Ee;
using HssEe.Models.Engine;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Models.ResNet;

/// <summary>
/// Image classification with a <see cref="ResNetModel"/> in one of the three <see cref="ExecutionMode"/>s.
/// Each call takes a torchvision-style image <c>[3, H, W]</c> (already normalised) and returns the plain
/// logits, as the client sees them after decryption.
/// </summary>
/// <remarks>
/// The client converts the image to channels-last <c>[H*W, 3]</c>; in EE and HSS-EE modes it permutes the
/// colour channels with the key's <c>input</c> boundary, and un-permutes the logits with <c>classes</c>.
/// In HSS-EE mode it also encodes the image in fixed point, splits it between two in-process servers,
/// deals fresh FSS keys for every image, and reconstructs the logits. HSS-EE needs activations below
/// 2^19 in magnitude (at 12 fractional bits) and above <see cref="Protocols.CompositeLayers.MaxPoolPadValue"/>
/// at the max pool (they are, after a ReLU).
/// </remarks>
public abstract class ResNetRunner : IAsyncDisposable
{
    private protected ResNetRunner(ResNetConfig config) => Config = config;

    /// <summary>The architecture.</summary>
    public ResNetConfig Config { get; }

    /// <summary>The mode this runner works in.</summary>
    public abstract ExecutionMode Mode { get; }

    /// <summary>Cost of the last call (online figures are zero in Plain and EE modes, where one server sees the data).</summary>
    public InferenceCost LastCost { get; private protected set; }

    /// <summary>Total cost of all calls.</summary>
    public InferenceCost TotalCost { get; private protected set; }

    /// <summary>Plain float32 inference on the original model.</summary>
    /// <param name="model">A model that is not encrypted.</param>
    /// <returns>The runner.</returns>
    public static ResNetRunner CreatePlain(ResNetModel model)
    {
        ModeGuard.Plain(model, model?.IsEncrypted == true, nameof(model));
        return new FloatRunner(model!, null);
    }

    /// <summary>
    /// EE inference: the server runs <paramref name="encryptedModel"/> in float32 on the image with its
    /// channels permuted by <paramref name="key"/>; the client un-permutes the logits.
    /// </summary>
    /// <param name="encryptedModel">The owner's rewrite, from <see cref="ResNetModel.Encrypt"/> with <paramref name="key"/>.</param>
    /// <param name="key">The client's key (not disposed by the runner).</param>
    /// <returns>The runner.</returns>
    public static ResNetRunner CreateEe(ResNetModel encryptedModel, EeKey key)
    {
        ModeGuard.Ee(encryptedModel, encryptedModel?.IsEncrypted == true, key, "ResNetModel.Encrypt", nameof(encryptedModel));
        return new FloatRunner(encryptedModel!, key);
    }

    /// <summary>
    /// HSS-EE inference: two in-process servers hold additive shares of the EE-encrypted activations and
    /// run <paramref name="encryptedModel"/> with FSS keys the client deals for every image.
    /// </summary>
    /// <param name="encryptedModel">The owner's rewrite, from <see cref="ResNetModel.Encrypt"/> with <paramref name="key"/>.</param>
    /// <param name="key">The client's key (not disposed by the runner).</param>
    /// <param name="fractionalBits">Fixed-point fractional bits f, 8 to 16 (default 12).</param>
    /// <param name="receiveTimeout">How long a server waits for its peer before failing (default 30 s).</param>
    /// <returns>The runner.</returns>
    public static ResNetRunner CreateHssEe(ResNetModel encryptedModel, EeKey key, int fractionalBits = 12, TimeSpan? receiveTimeout = null)
    {
        ModeGuard.HssEe(encryptedModel, encryptedModel?.IsEncrypted == true, key, "ResNetModel.Encrypt", fractionalBits, 8, nameof(encryptedModel));
        return new HssRunner(encryptedModel!, key, fractionalBits, receiveTimeout);
    }

    /// <summary>
    /// Deals the FSS keys of <paramref name="count"/> future images of size <paramref name="height"/> x
    /// <paramref name="width"/> ahead of time (the offline phase); each call of <see cref="ClassifyAsync"/> uses
    /// the oldest keys prepared for its image size, or deals fresh ones. Does nothing outside HSS-EE mode.
    /// </summary>
    /// <param name="height">Image height.</param>
    /// <param name="width">Image width.</param>
    /// <param name="count">Number of images.</param>
    /// <param name="cancellationToken">Cancels dealing.</param>
    /// <exception cref="ArgumentOutOfRangeException">The size is not in [1, 8192] (HSS-EE mode).</exception>
    /// <exception cref="NotSupportedException">The average pool would see more than <c>2^f</c> positions (HSS-EE mode).</exception>
    public virtual void PrepareKeys(int height, int width, int count = 1, CancellationToken cancellationToken = default)
    {
    }

    /// <summary>Classifies one image.</summary>
    /// <param name="imageNchw">The normalised image as torchvision takes it, <c>[3, H, W]</c> row-major (a batch of one).</param>
    /// <param name="height">Image height H.</param>
    /// <param name="width">Image width W.</param>
    /// <param name="cancellationToken">Cancels the inference.</param>
    /// <returns>Logits over the classes, in plain class order.</returns>
    /// <exception cref="ArgumentException">The image does not hold <c>3 * H * W</c> values.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The height or width is not in [1, 8192].</exception>
    /// <exception cref="NotSupportedException">HSS-EE mode: the average pool would see more than <c>2^f</c> positions (images beyond about 2048 x 2048 at f = 12).</exception>
    public Task<float[]> ClassifyAsync(float[] imageNchw, int height, int width, CancellationToken cancellationToken = default)
    {
        FloatTensor x = ResNetModel.ToChannelsLast(imageNchw, height, width);
        return RunAsync(x, height, width, cancellationToken);
    }

    private protected abstract Task<float[]> RunAsync(FloatTensor image, int height, int width, CancellationToken cancellationToken);

    /// <inheritdoc/>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    private sealed class FloatRunner(ResNetModel model, EeKey? key) : ResNetRunner(model.Config)
    {
        private readonly PlainEngine _engine = new();

        public override ExecutionMode Mode => key is null ? ExecutionMode.Plain : ExecutionMode.Ee;

        private protected override async Task<float[]> RunAsync(FloatTensor image, int height, int width, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var sw = System.Diagnostics.Stopwatch.StartNew();
            key?.Encrypt(ResNetModel.InputBoundary, image.Data, image.Data);
            FloatTensor y = await model.ForwardAsync(_engine, image, height, width).ConfigureAwait(false);
            float[] logits = y.Data;
            key?.DecryptLogits(ResNetModel.ClassesBoundary, logits, logits);
            LastCost = new InferenceCost(sw.Elapsed, 0, 0, 0, TimeSpan.Zero);
            TotalCost += LastCost;
            return logits;
        }
    }

    private sealed class HssRunner : ResNetRunner
    {
        private readonly ResNetModel _model;
        private readonly EeKey _key;
        private readonly HssEeRuntime _runtime;
        private readonly FixedPointFormat _format;
        private readonly Lock _gate = new();
        private readonly List<(int Height, int Width, DealtKeys Keys)> _prepared = [];

        public HssRunner(ResNetModel model, EeKey key, int fractionalBits, TimeSpan? receiveTimeout)
            : base(model.Config)
        {
            _model = model;
            _key = key;
            _format = new FixedPointFormat(fractionalBits);
            _runtime = new HssEeRuntime(fractionalBits, receiveTimeout);
        }

        public override ExecutionMode Mode => ExecutionMode.HssEe;

        public override void PrepareKeys(int height, int width, int count = 1, CancellationToken cancellationToken = default)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(count, 0);
            CheckSize(height, width);
            for (int i = 0; i < count; i++)
            {
                DealtKeys keys = DealtKeys.Deal(Plan(height, width), null, cancellationToken);
                lock (_gate)
                {
                    _prepared.Add((height, width, keys));
                }
            }
        }

        private void CheckSize(int height, int width)
        {
            if (height < 1 || width < 1 || height > 8192 || width > 8192)
            {
                throw new ArgumentOutOfRangeException(nameof(height), $"Image size {height}x{width} is out of range: height and width must be in [1, 8192].");
            }

            // The average pool's public scale 2^-k must be exact at f fractional bits.
            (int fh, int fw) = ResNetModel.FinalMapSize(height, width);
            if (System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(fh * fw)) > 1u << _format.FractionalBits)
            {
                throw new NotSupportedException(
                    $"A {height}x{width} image leaves a {fh}x{fw} map for the average pool, more than 2^{_format.FractionalBits} positions: too large for HSS-EE at f = {_format.FractionalBits}.");
            }
        }

        private Protocols.Plan Plan(int height, int width) =>
            _runtime.BuildPlan(new TensorShape(height * width, ResNetModel.InputChannels), (e, x) => _model.ForwardAsync(e, x, height, width));

        private protected override async Task<float[]> RunAsync(FloatTensor image, int height, int width, CancellationToken cancellationToken)
        {
            CheckSize(height, width);
            DealtKeys? keys = null;
            lock (_gate)
            {
                int i = _prepared.FindIndex(p => p.Height == height && p.Width == width);
                if (i >= 0)
                {
                    keys = _prepared[i].Keys;
                    _prepared.RemoveAt(i);
                }
            }

            keys ??= DealtKeys.Deal(Plan(height, width), null, cancellationToken);

            // Client: permute the colour channels, encode and split.
            _key.Encrypt(ResNetModel.InputBoundary, image.Data, image.Data);
            (Share a, Share b) = SecretSharing.Split(image.Data, image.Shape, _format);
            Array.Clear(image.Data);
            Share? ya = null, yb = null;
            try
            {
                InferenceCost cost;
                (ya, yb, cost) = await _runtime.RunAsync(
                    keys,
                    a,
                    b,
                    (_, e, input) => _model.ForwardAsync(e, input, height, width),
                    cancellationToken).ConfigureAwait(false);

                // Client: reconstruct, decode, un-permute the classes.
                float[] logits = SecretSharing.ReconstructToSingle(ya, yb);
                _key.DecryptLogits(ResNetModel.ClassesBoundary, logits, logits);
                LastCost = cost;
                TotalCost += cost;
                return logits;
            }
            finally
            {
                a.Dispose();
                b.Dispose();
                ya?.Dispose();
                yb?.Dispose();
            }
        }

        public override async ValueTask DisposeAsync()
        {
            await _runtime.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}
