using HssEe.Ee;
using HssEe.Models.Engine;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Models.Llama;

/// <summary>
/// Incremental LLaMA inference with a KV cache in one of the three <see cref="ExecutionMode"/>s. Feed the
/// prompt, then one token at a time; each call returns the plain logits of the last token fed, as the
/// client sees them after decryption.
/// </summary>
public abstract class LlamaSession : IAsyncDisposable
{
    private Exception? _failure;

    private protected LlamaSession(LlamaConfig config) => Config = config;

    /// <summary>The architecture.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The mode this session runs in.</summary>
    public abstract ExecutionMode Mode { get; }

    /// <summary>Positions processed so far.</summary>
    public int Position { get; private protected set; }

    /// <summary>Total cost so far (online figures are zero in Plain and EE modes, where one server sees the data).</summary>
    public InferenceCost TotalCost { get; private protected set; }

    /// <summary>Cost of the last call.</summary>
    public InferenceCost LastCost { get; private protected set; }

    /// <summary>Plain inference on the original model.</summary>
    /// <param name="model">A model that is not encrypted.</param>
    /// <returns>The session.</returns>
    public static LlamaSession CreatePlain(LlamaModel model)
    {
        ModeGuard.Plain(model, model?.IsEncrypted == true, nameof(model));
        return new FloatSession(model!, null);
    }

    /// <summary>
    /// EE inference: the server runs <paramref name="encryptedModel"/> in float32; the client holding
    /// <paramref name="key"/> encrypts the tokens (embedding rows under the key) and decrypts the logits.
    /// </summary>
    /// <param name="encryptedModel">The owner's rewrite, from <see cref="LlamaModel.Encrypt"/> with <paramref name="key"/>.</param>
    /// <param name="key">The client's key (not disposed by the session).</param>
    /// <returns>The session.</returns>
    public static LlamaSession CreateEe(LlamaModel encryptedModel, EeKey key)
    {
        ModeGuard.Ee(encryptedModel, encryptedModel?.IsEncrypted == true, key, "LlamaModel.Encrypt", nameof(encryptedModel));
        return new FloatSession(encryptedModel!, key);
    }

    /// <summary>
    /// HSS-EE inference: two in-process servers hold additive shares of the EE-encrypted activations and
    /// run <paramref name="encryptedModel"/> with FSS keys the client deals for each step (fresh keys every
    /// step; the servers keep the shared KV cache between steps).
    /// </summary>
    /// <param name="encryptedModel">The owner's rewrite, from <see cref="LlamaModel.Encrypt"/> with <paramref name="key"/>.</param>
    /// <param name="key">The client's key (not disposed by the session).</param>
    /// <param name="fractionalBits">Fixed-point fractional bits f (default 12).</param>
    /// <param name="receiveTimeout">How long a server waits for its peer before failing (default 30 s).</param>
    /// <returns>The session.</returns>
    public static LlamaSession CreateHssEe(LlamaModel encryptedModel, EeKey key, int fractionalBits = 12, TimeSpan? receiveTimeout = null)
    {
        ModeGuard.HssEe(encryptedModel, encryptedModel?.IsEncrypted == true, key, "LlamaModel.Encrypt", fractionalBits, 4, nameof(encryptedModel));
        return new HssSession(encryptedModel!, key, fractionalBits, receiveTimeout);
    }

    /// <summary>
    /// Deals the keys of future steps ahead of time (the offline phase): a prefill of
    /// <paramref name="firstTokens"/> tokens at the current position, then <paramref name="singleSteps"/>
    /// one-token steps. Does nothing outside HSS-EE mode.
    /// </summary>
    /// <param name="firstTokens">Tokens of the next call.</param>
    /// <param name="singleSteps">Number of one-token calls after it.</param>
    /// <param name="progress">Receives (steps dealt, steps total).</param>
    /// <param name="cancellationToken">Cancels dealing.</param>
    public virtual void PrepareKeys(int firstTokens, int singleSteps, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
    }

    /// <summary>Processes new tokens at the next positions and returns the plain logits of the last one.</summary>
    /// <param name="tokens">Plain token ids (at least one).</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>Logits over the vocabulary, in plain token order.</returns>
    public async Task<float[]> NextLogitsAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken = default)
    {
        if (tokens.Length == 0)
        {
            throw new ArgumentException("Feed at least one token.", nameof(tokens));
        }

        if (Position + tokens.Length > Config.MaxPositions)
        {
            throw new ArgumentException($"Position {Position} + {tokens.Length} tokens exceeds max_position_embeddings {Config.MaxPositions}.", nameof(tokens));
        }

        foreach (int t in tokens.Span)
        {
            if ((uint)t >= (uint)Config.VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), t, $"Token id outside the vocabulary [0, {Config.VocabSize}).");
            }
        }

        if (_failure is not null)
        {
            throw new InvalidOperationException($"This session failed at position {Position} ({_failure.Message}); its KV cache is no longer consistent. Start a new session.", _failure);
        }

        try
        {
            float[] logits = await StepAsync(tokens, cancellationToken).ConfigureAwait(false);
            Position += tokens.Length;
            return logits;
        }
        catch (Exception ex)
        {
            _failure = ex;
            throw;
        }
    }

    private protected abstract Task<float[]> StepAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken);

    /// <inheritdoc/>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    private sealed class FloatSession(LlamaModel model, EeKey? key) : LlamaSession(model.Config)
    {
        private readonly PlainEngine _engine = new();
        private readonly KvCache<FloatTensor> _cache = new(model.Config.Layers);

        public override ExecutionMode Mode => key is null ? ExecutionMode.Plain : ExecutionMode.Ee;

        private protected override async Task<float[]> StepAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            int[] ids = tokens.ToArray();
            key?.EncryptTokens("vocab", ids, ids);
            FloatTensor y = await model.ForwardAsync(_engine, model.Embed(ids), _cache).ConfigureAwait(false);
            float[] logits = y.Data;
            key?.DecryptLogits("vocab", logits, logits);
            LastCost = new InferenceCost(sw.Elapsed, 0, 0, 0, TimeSpan.Zero);
            TotalCost += LastCost;
            return logits;
        }
    }

    private sealed class HssSession : LlamaSession
    {
        private readonly LlamaModel _model;
        private readonly EeKey _key;
        private readonly HssEeRuntime _runtime;
        private readonly FixedPointFormat _format;
        private readonly KvCache<SecretTensor> _cacheA;
        private readonly KvCache<SecretTensor> _cacheB;
        private readonly Queue<(int Tokens, int Position, DealtKeys Keys)> _prepared = new();

        public HssSession(LlamaModel model, EeKey key, int fractionalBits, TimeSpan? receiveTimeout)
            : base(model.Config)
        {
            _model = model;
            _key = key;
            _format = new FixedPointFormat(fractionalBits);
            _runtime = new HssEeRuntime(fractionalBits, receiveTimeout);
            _cacheA = new KvCache<SecretTensor>(model.Config.Layers);
            _cacheB = new KvCache<SecretTensor>(model.Config.Layers);
        }

        public override ExecutionMode Mode => ExecutionMode.HssEe;

        public override void PrepareKeys(int firstTokens, int singleSteps, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(firstTokens, 1);
            ArgumentOutOfRangeException.ThrowIfNegative(singleSteps);
            int position = _prepared.Count > 0 ? _prepared.Last().Position + _prepared.Last().Tokens : Position;
            int total = singleSteps + 1;
            for (int s = 0; s < total; s++)
            {
                int n = s == 0 ? firstTokens : 1;
                if (position + n > Config.MaxPositions)
                {
                    break;
                }

                _prepared.Enqueue((n, position, DealtKeys.Deal(Plan(n, position), null, cancellationToken)));
                position += n;
                progress?.Report((s + 1, total));
            }
        }

        private Protocols.Plan Plan(int tokens, int position) =>
            _runtime.BuildPlan(new TensorShape(tokens, Config.HiddenSize), (e, x) =>
            {
                var cache = new KvCache<SecretTensor>(Config.Layers) { Length = position };
                if (position > 0)
                {
                    for (int i = 0; i < Config.Layers; i++)
                    {
                        cache.K[i] = e.Symbolic(new TensorShape(position, Config.KeyValueHeads * Config.HeadDimension));
                        cache.V[i] = e.Symbolic(new TensorShape(position, Config.KeyValueHeads * Config.HeadDimension));
                    }
                }

                return _model.ForwardAsync(e, x, cache);
            });

        private protected override async Task<float[]> StepAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken)
        {
            int n = tokens.Length;
            DealtKeys keys;
            if (_prepared.TryPeek(out var next) && next.Tokens == n && next.Position == Position)
            {
                keys = _prepared.Dequeue().Keys;
            }
            else
            {
                _prepared.Clear();
                keys = DealtKeys.Deal(Plan(n, Position), null, cancellationToken);
            }

            // Client: encrypt the tokens, embed them with the encrypted table, encode and split.
            int[] ids = tokens.ToArray();
            _key.EncryptTokens("vocab", ids, ids);
            FloatTensor x = _model.Embed(ids);
            (Share a, Share b) = SecretSharing.Split(x.Data, x.Shape, _format);
            Array.Clear(x.Data);
            (Share ya, Share yb, InferenceCost cost) = await _runtime.RunAsync(
                keys,
                a,
                b,
                (party, e, input) => _model.ForwardAsync(e, input, party == Party.A ? _cacheA : _cacheB),
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

        public override async ValueTask DisposeAsync()
        {
            await _runtime.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}
