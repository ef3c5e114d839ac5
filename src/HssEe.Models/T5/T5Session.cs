using HssEe.Ee;
using HssEe.Models.Engine;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Models.T5;

/// <summary>
/// Incremental T5 inference in one of the three <see cref="ExecutionMode"/>s: <see cref="EncodeAsync"/> runs
/// the encoder once (and prepares the cross-attention keys and values of every decoder layer), then
/// <see cref="NextLogitsAsync"/> feeds decoder tokens with a self-attention KV cache and returns the plain
/// logits of the last token fed, as the client sees them after decryption.
/// </summary>
/// <remarks>
/// The client embeds every token itself (encoder and decoder inputs) with the model's embedding table,
/// which in EE and HSS-EE is the encrypted table, indexed by encrypted token ids. In HSS-EE the encoder
/// output and all caches stay secret-shared on the two servers; nothing but the logits is reconstructed.
/// </remarks>
public abstract class T5Session : IAsyncDisposable
{
    private protected T5Session(T5Config config) => Config = config;

    /// <summary>The architecture.</summary>
    public T5Config Config { get; }

    /// <summary>The mode this session runs in.</summary>
    public abstract ExecutionMode Mode { get; }

    /// <summary>Length of the encoded input (0 before <see cref="EncodeAsync"/>).</summary>
    public int EncoderLength { get; private protected set; }

    /// <summary>Decoder positions processed since the last <see cref="EncodeAsync"/>.</summary>
    public int DecoderPosition { get; private protected set; }

    /// <summary>Total cost so far (online figures are zero in Plain and EE modes, where one server sees the data).</summary>
    public InferenceCost TotalCost { get; private protected set; }

    /// <summary>Cost of the last call (<see cref="EncodeAsync"/> or <see cref="NextLogitsAsync"/>).</summary>
    public InferenceCost LastCost { get; private protected set; }

    /// <summary>Plain inference on the original model.</summary>
    /// <param name="model">A model that is not encrypted.</param>
    /// <returns>The session.</returns>
    public static T5Session CreatePlain(T5Model model)
    {
        ModeGuard.Plain(model, model?.IsEncrypted == true, nameof(model));
        return new FloatSession(model!, null);
    }

    /// <summary>
    /// EE inference: the server runs <paramref name="encryptedModel"/> in float32; the client holding
    /// <paramref name="key"/> encrypts the tokens (embedding rows under the key) and decrypts the logits.
    /// </summary>
    /// <param name="encryptedModel">The owner's rewrite, from <see cref="T5Model.Encrypt"/> with <paramref name="key"/>.</param>
    /// <param name="key">The client's key (not disposed by the session).</param>
    /// <returns>The session.</returns>
    public static T5Session CreateEe(T5Model encryptedModel, EeKey key)
    {
        ModeGuard.Ee(encryptedModel, encryptedModel?.IsEncrypted == true, key, "T5Model.Encrypt", nameof(encryptedModel));
        return new FloatSession(encryptedModel!, key);
    }

    /// <summary>
    /// HSS-EE inference: two in-process servers hold additive shares of the EE-encrypted activations and
    /// run <paramref name="encryptedModel"/> with FSS keys the client deals for each call (fresh keys every
    /// call). The servers keep the shared encoder output, the cross-attention keys and values and the
    /// decoder's KV cache between calls.
    /// </summary>
    /// <param name="encryptedModel">The owner's rewrite, from <see cref="T5Model.Encrypt"/> with <paramref name="key"/>.</param>
    /// <param name="key">The client's key (not disposed by the session).</param>
    /// <param name="fractionalBits">
    /// Fixed-point fractional bits f (default 14: T5 has no RoPE, so the wider scale fits, and it brings the
    /// gated-GeLU fixture's fidelity from about 0.9990 at f = 12 to 0.9992-0.9994). Attention scores plus
    /// bias must stay below 32 in magnitude.
    /// </param>
    /// <param name="receiveTimeout">How long a server waits for its peer before failing (default 30 s).</param>
    /// <returns>The session.</returns>
    public static T5Session CreateHssEe(T5Model encryptedModel, EeKey key, int fractionalBits = 14, TimeSpan? receiveTimeout = null)
    {
        ModeGuard.HssEe(encryptedModel, encryptedModel?.IsEncrypted == true, key, "T5Model.Encrypt", fractionalBits, 4, nameof(encryptedModel));
        return new HssSession(encryptedModel!, key, fractionalBits, receiveTimeout);
    }

    /// <summary>Runs the encoder on new input ids and starts a fresh decoder (position 0) that attends to them.</summary>
    /// <param name="inputIds">Plain encoder input ids (at least one).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the encoder output is ready (kept by the servers, shared in HSS-EE).</returns>
    public async Task EncodeAsync(ReadOnlyMemory<int> inputIds, CancellationToken cancellationToken = default)
    {
        if (inputIds.Length == 0)
        {
            throw new ArgumentException("Encode at least one token.", nameof(inputIds));
        }

        CheckTokens(inputIds.Span, nameof(inputIds));
        EncoderLength = 0;
        DecoderPosition = 0;
        await EncodeCoreAsync(inputIds, cancellationToken).ConfigureAwait(false);
        EncoderLength = inputIds.Length;
    }

    /// <summary>Feeds decoder tokens at the next decoder positions and returns the plain logits of the last one.</summary>
    /// <param name="decoderTokens">Plain decoder token ids (at least one); the first call normally starts with <see cref="T5Config.DecoderStartTokenId"/>.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>Logits over the vocabulary, in plain token order.</returns>
    /// <exception cref="InvalidOperationException"><see cref="EncodeAsync"/> has not run.</exception>
    public async Task<float[]> NextLogitsAsync(ReadOnlyMemory<int> decoderTokens, CancellationToken cancellationToken = default)
    {
        if (EncoderLength == 0)
        {
            throw new InvalidOperationException("Call EncodeAsync before decoding.");
        }

        if (decoderTokens.Length == 0)
        {
            throw new ArgumentException("Feed at least one token.", nameof(decoderTokens));
        }

        CheckTokens(decoderTokens.Span, nameof(decoderTokens));
        float[] logits = await StepAsync(decoderTokens, cancellationToken).ConfigureAwait(false);
        DecoderPosition += decoderTokens.Length;
        return logits;
    }

    /// <summary>
    /// Greedy decoding: encodes <paramref name="inputIds"/>, then feeds <see cref="T5Config.DecoderStartTokenId"/>
    /// and each chosen token (the argmax of the decrypted logits, picked by the client) until
    /// <paramref name="maxTokens"/> tokens or <see cref="T5Config.EosTokenId"/>.
    /// </summary>
    /// <param name="session">The session (any earlier state is replaced).</param>
    /// <param name="inputIds">Encoder input ids (at least one).</param>
    /// <param name="maxTokens">Most tokens to generate.</param>
    /// <param name="stopAtEos">Stop after generating <see cref="T5Config.EosTokenId"/> (included in the result).</param>
    /// <param name="onToken">Called with each generated token as soon as it is chosen.</param>
    /// <param name="cancellationToken">Cancels generation.</param>
    /// <returns>The generated token ids (without the start token).</returns>
    public static async Task<int[]> GenerateAsync(
        T5Session session,
        ReadOnlyMemory<int> inputIds,
        int maxTokens,
        bool stopAtEos = true,
        Action<int>? onToken = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        await session.EncodeAsync(inputIds, cancellationToken).ConfigureAwait(false);
        var output = new List<int>(maxTokens);
        int token = session.Config.DecoderStartTokenId;
        while (output.Count < maxTokens)
        {
            float[] logits = await session.NextLogitsAsync(new[] { token }, cancellationToken).ConfigureAwait(false);
            token = Llama.LlamaGenerator.ArgMax(logits);
            output.Add(token);
            onToken?.Invoke(token);
            if (stopAtEos && token == session.Config.EosTokenId)
            {
                break;
            }
        }

        return [.. output];
    }

    private protected abstract Task EncodeCoreAsync(ReadOnlyMemory<int> inputIds, CancellationToken cancellationToken);

    private protected abstract Task<float[]> StepAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken);

    /// <inheritdoc/>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    private void CheckTokens(ReadOnlySpan<int> tokens, string name)
    {
        foreach (int t in tokens)
        {
            if ((uint)t >= (uint)Config.VocabSize)
            {
                throw new ArgumentOutOfRangeException(name, t, $"Token id outside the vocabulary [0, {Config.VocabSize}).");
            }
        }
    }

    private sealed class FloatSession(T5Model model, EeKey? key) : T5Session(model.Config)
    {
        private readonly PlainEngine _engine = new();
        private T5DecoderCache<FloatTensor>? _cache;

        public override ExecutionMode Mode => key is null ? ExecutionMode.Plain : ExecutionMode.Ee;

        private protected override async Task EncodeCoreAsync(ReadOnlyMemory<int> inputIds, CancellationToken cancellationToken)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            _cache = null;
            int[] ids = inputIds.ToArray();
            key?.EncryptTokens("vocab", ids, ids);
            FloatTensor encoded = await model.EncodeAsync(_engine, model.Embed(ids)).ConfigureAwait(false);
            _cache = await model.StartDecoderAsync(_engine, encoded).ConfigureAwait(false);
            Record(sw.Elapsed);
        }

        private protected override async Task<float[]> StepAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            int[] ids = tokens.ToArray();
            key?.EncryptTokens("vocab", ids, ids);
            FloatTensor y = await model.DecodeAsync(_engine, model.Embed(ids), _cache!).ConfigureAwait(false);
            float[] logits = y.Data;
            key?.DecryptLogits("vocab", logits, logits);
            Record(sw.Elapsed);
            return logits;
        }

        private void Record(TimeSpan elapsed)
        {
            LastCost = new InferenceCost(elapsed, 0, 0, 0, TimeSpan.Zero);
            TotalCost += LastCost;
        }
    }

    private sealed class HssSession : T5Session
    {
        private readonly T5Model _model;
        private readonly EeKey _key;
        private readonly HssEeRuntime _runtime;
        private readonly FixedPointFormat _format;

        // Server state: each party's share of the encoder output and its decoder cache (cross-attention
        // keys / values and the self-attention KV cache). Never reconstructed.
        private Share? _encodedA;
        private Share? _encodedB;
        private T5DecoderCache<SecretTensor>? _cacheA;
        private T5DecoderCache<SecretTensor>? _cacheB;

        public HssSession(T5Model model, EeKey key, int fractionalBits, TimeSpan? receiveTimeout)
            : base(model.Config)
        {
            _model = model;
            _key = key;
            _format = new FixedPointFormat(fractionalBits);
            _runtime = new HssEeRuntime(fractionalBits, receiveTimeout);
        }

        public override ExecutionMode Mode => ExecutionMode.HssEe;

        private protected override async Task EncodeCoreAsync(ReadOnlyMemory<int> inputIds, CancellationToken cancellationToken)
        {
            ReleaseServerState();
            int s = inputIds.Length;
            Protocols.Plan plan = _runtime.BuildPlan(new TensorShape(s, Config.ModelDimension), async (e, x) =>
            {
                SecretTensor encoded = await _model.EncodeAsync(e, x).ConfigureAwait(false);
                _ = await _model.StartDecoderAsync(e, encoded).ConfigureAwait(false);
                return encoded;
            });
            DealtKeys keys = DealtKeys.Deal(plan, null, cancellationToken);
            (Share a, Share b) = Split(inputIds);
            (Share ya, Share yb, InferenceCost cost) = await _runtime.RunAsync(
                keys,
                a,
                b,
                async (party, e, input) =>
                {
                    SecretTensor encoded = await _model.EncodeAsync(e, input).ConfigureAwait(false);
                    T5DecoderCache<SecretTensor> cache = await _model.StartDecoderAsync(e, encoded).ConfigureAwait(false);
                    if (party == Party.A)
                    {
                        _cacheA = cache;
                    }
                    else
                    {
                        _cacheB = cache;
                    }

                    return encoded;
                },
                cancellationToken).ConfigureAwait(false);
            a.Dispose();
            b.Dispose();

            // The encoder output stays with the servers, shared; the decoder reads it through the cross-attention cache.
            _encodedA = ya;
            _encodedB = yb;
            LastCost = cost;
            TotalCost += cost;
        }

        private Protocols.Plan DecoderPlan(int tokens, int position, int encoderLength) =>
            _runtime.BuildPlan(new TensorShape(tokens, Config.ModelDimension), (e, x) =>
            {
                int h = Config.Heads, dkv = Config.KeyValueDimension;
                var cache = new T5DecoderCache<SecretTensor>(Config.DecoderLayers, encoderLength) { Length = position };
                for (int i = 0; i < Config.DecoderLayers; i++)
                {
                    cache.CrossK[i] = e.Symbolic(new TensorShape(h, dkv, encoderLength));
                    cache.CrossV[i] = e.Symbolic(new TensorShape(h, encoderLength, dkv));
                    if (position > 0)
                    {
                        cache.SelfK[i] = e.Symbolic(new TensorShape(position, Config.InnerDimension));
                        cache.SelfV[i] = e.Symbolic(new TensorShape(position, Config.InnerDimension));
                    }
                }

                return _model.DecodeAsync(e, x, cache);
            });

        private protected override async Task<float[]> StepAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken)
        {
            DealtKeys keys = DealtKeys.Deal(DecoderPlan(tokens.Length, DecoderPosition, EncoderLength), null, cancellationToken);
            (Share a, Share b) = Split(tokens);
            T5DecoderCache<SecretTensor> cacheA = _cacheA!, cacheB = _cacheB!;
            (Share ya, Share yb, InferenceCost cost) = await _runtime.RunAsync(
                keys,
                a,
                b,
                (party, e, input) => _model.DecodeAsync(e, input, party == Party.A ? cacheA : cacheB),
                cancellationToken).ConfigureAwait(false);

            // Client: reconstruct, decode, decrypt the vocabulary order.
            float[] logits = SecretSharing.ReconstructToSingle(ya, yb);
            _key.DecryptLogits("vocab", logits, logits);
            a.Dispose();
            b.Dispose();
            ya.Dispose();
            yb.Dispose();
            LastCost = cost;
            TotalCost += cost;
            return logits;
        }

        /// <summary>Client: encrypts the tokens, embeds them with the encrypted table, encodes and splits.</summary>
        private (Share A, Share B) Split(ReadOnlyMemory<int> tokens)
        {
            int[] ids = tokens.ToArray();
            _key.EncryptTokens("vocab", ids, ids);
            FloatTensor x = _model.Embed(ids);
            Array.Clear(ids);
            (Share a, Share b) = SecretSharing.Split(x.Data, x.Shape, _format);
            Array.Clear(x.Data);
            return (a, b);
        }

        private void ReleaseServerState()
        {
            _encodedA?.Dispose();
            _encodedB?.Dispose();
            _encodedA = null;
            _encodedB = null;
            _cacheA = null;
            _cacheB = null;
        }

        public override async ValueTask DisposeAsync()
        {
            ReleaseServerState();
            await _runtime.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}
