using HssEe.Ee;
using HssEe.Models.Engine;
using HssEe.Models.IO;
using HssEe.Ring;

namespace HssEe.Models.T5;

/// <summary>
/// A T5 encoder-decoder (Hugging Face <c>T5ForConditionalGeneration</c>: v1.0 with ReLU and a tied head,
/// v1.1 / Flan-T5 with gated GeLU and its own LM head) defined once and run in every <see cref="ExecutionMode"/>.
/// </summary>
/// <remarks>
/// <para><b>Semantics.</b> The T5 layer norm is an RMS norm without mean subtraction; attention scores are
/// <c>q k^T</c> with no <c>1/sqrt(d_kv)</c> scaling, plus a relative-position bias. The bias table of the
/// first layer of each stack (<c>[buckets, heads]</c>) is looked up with <see cref="RelativePositionBucket"/>
/// (bidirectional in the encoder, unidirectional in decoder self-attention) and added to the scores of
/// every layer of that stack; cross-attention has no bias. The bias is public model data: in HSS-EE it is
/// added to the shared scores as a public constant.</para>
/// <para><b>Folding.</b> At load time every norm gain is folded into the linear layers that read the
/// normalised value: self-attention q/k/v, cross-attention q, the feed-forward input(s), the encoder's final
/// gain into every decoder layer's cross-attention k and v, the decoder's final gain into the LM head, and
/// with a tied head also the factor <c>d_model^-0.5</c>. The model computes the same function, and the norms
/// commute with an orthogonal transform of the residual stream.</para>
/// <para><b>EE.</b> <see cref="Encrypt"/> rewrites the weights under a key from <see cref="CreateEeKeySpec"/>:
/// <c>hidden</c> (the residual stream of both stacks; orthogonal or a permutation), per attention block
/// one <see cref="EeTransformKind.PairRotations"/> boundary (<c>enc.L{i}.attn</c>, <c>dec.L{i}.self</c>,
/// <c>dec.L{i}.cross</c>) shared by q, k, v and the input of o (independent 2-D rotations inside each
/// head and a secret permutation of whole heads: every per-head score is preserved and moves with its
/// head), per layer a feed-forward permutation (<c>enc.L{i}.ff</c>, <c>dec.L{i}.ff</c>; both gated
/// projections share it) and <c>vocab</c> (token ids and logits). Because heads move, the encrypted model
/// carries one bias table per layer whose head columns are permuted with that layer's head permutation
/// (the plain model shares one table per stack).</para>
/// <para><b>Caching.</b> The decoder keeps its self-attention keys and values per position, and the
/// cross-attention keys and values, computed once from the encoder output, for every step.</para>
/// </remarks>
public sealed class T5Model
{
    private T5Model(T5Config config, float[] embedding, T5EncoderLayer[] encoder, T5DecoderLayer[] decoder, LinearLayer head, float[]? encoderFinalGain, bool encrypted)
    {
        Config = config;
        Embedding = embedding;
        Encoder = encoder;
        Decoder = decoder;
        Head = head;
        EncoderFinalGain = encoderFinalGain;
        IsEncrypted = encrypted;
    }

    /// <summary>The architecture.</summary>
    public T5Config Config { get; }

    /// <summary>True for a model rewritten by <see cref="Encrypt"/> (it expects encrypted tokens and returns encrypted logits).</summary>
    public bool IsEncrypted { get; }

    internal float[] Embedding { get; }

    internal T5EncoderLayer[] Encoder { get; }

    internal T5DecoderLayer[] Decoder { get; }

    internal LinearLayer Head { get; }

    /// <summary>The encoder's final norm gain (plain model only; it is folded into the cross-attention k and v).</summary>
    internal float[]? EncoderFinalGain { get; }

    /// <summary>Loads <c>config.json</c> and <c>model.safetensors</c> from a Hugging Face style folder.</summary>
    /// <param name="directory">The folder.</param>
    /// <returns>The model.</returns>
    public static T5Model Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        T5Config config = T5Config.FromJson(File.ReadAllText(Path.Combine(directory, "config.json")));
        using var weights = SafeTensorsFile.Open(Path.Combine(directory, "model.safetensors"));
        return FromWeights(config, weights);
    }

    /// <summary>
    /// Builds the model from Hugging Face tensor names (<c>shared.weight</c>,
    /// <c>encoder.block.{i}.layer.0.SelfAttention.q.weight</c>, ..., <c>lm_head.weight</c> when untied).
    /// </summary>
    /// <param name="config">The architecture.</param>
    /// <param name="weights">The tensors.</param>
    /// <returns>The model.</returns>
    /// <exception cref="KeyNotFoundException">A tensor is missing.</exception>
    /// <exception cref="FormatException">A tensor has the wrong shape.</exception>
    public static T5Model FromWeights(T5Config config, IWeightSource weights)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        config.Validate();
        int d = config.ModelDimension, h = config.Heads, buckets = config.RelativeAttentionBuckets;
        float[] embedding = ModelWeights.Read(weights, "shared.weight", config.VocabSize, d);

        float[] encoderBias = ModelWeights.Read(weights, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", buckets, h);
        var encoder = new T5EncoderLayer[config.EncoderLayers];
        for (int i = 0; i < encoder.Length; i++)
        {
            string p = $"encoder.block.{i}.";
            T5Attention self = ReadAttention(weights, config, p + "layer.0.SelfAttention.", $"enc.L{i}.self");
            float[] g0 = ModelWeights.Read(weights, p + "layer.0.layer_norm.weight", d);
            self.ScaleQueryInputs(g0);
            self.ScaleKeyValueInputs(g0);
            T5FeedForward ff = ReadFeedForward(weights, config, p + "layer.1.DenseReluDense.", $"enc.L{i}.ff");
            ff.ScaleInputs(ModelWeights.Read(weights, p + "layer.1.layer_norm.weight", d));
            encoder[i] = new T5EncoderLayer(self, ff, encoderBias);
        }

        float[] encoderFinal = ModelWeights.Read(weights, "encoder.final_layer_norm.weight", d);
        float[] decoderBias = ModelWeights.Read(weights, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", buckets, h);
        var decoder = new T5DecoderLayer[config.DecoderLayers];
        for (int i = 0; i < decoder.Length; i++)
        {
            string p = $"decoder.block.{i}.";
            T5Attention self = ReadAttention(weights, config, p + "layer.0.SelfAttention.", $"dec.L{i}.self");
            float[] g0 = ModelWeights.Read(weights, p + "layer.0.layer_norm.weight", d);
            self.ScaleQueryInputs(g0);
            self.ScaleKeyValueInputs(g0);
            T5Attention cross = ReadAttention(weights, config, p + "layer.1.EncDecAttention.", $"dec.L{i}.cross");
            cross.ScaleQueryInputs(ModelWeights.Read(weights, p + "layer.1.layer_norm.weight", d));
            cross.ScaleKeyValueInputs(encoderFinal);
            T5FeedForward ff = ReadFeedForward(weights, config, p + "layer.2.DenseReluDense.", $"dec.L{i}.ff");
            ff.ScaleInputs(ModelWeights.Read(weights, p + "layer.2.layer_norm.weight", d));
            decoder[i] = new T5DecoderLayer(self, cross, ff, decoderBias);
        }

        float[] headWeight;
        if (config.TieWordEmbeddings)
        {
            headWeight = (float[])embedding.Clone();
            System.Numerics.Tensors.TensorPrimitives.Multiply(headWeight, (float)(1 / Math.Sqrt(d)), headWeight);
        }
        else
        {
            headWeight = weights.Contains("lm_head.weight")
                ? ModelWeights.Read(weights, "lm_head.weight", config.VocabSize, d)
                : throw new KeyNotFoundException("Tensor 'lm_head.weight' is missing and tie_word_embeddings is false.");
        }

        var head = new LinearLayer("lm_head", config.VocabSize, d, headWeight);
        head.ScaleInputs(ModelWeights.Read(weights, "decoder.final_layer_norm.weight", d));
        return new T5Model(config, embedding, encoder, decoder, head, encoderFinal, encrypted: false);
    }

    /// <summary>
    /// The boundaries of an EE key for this architecture: <c>vocab</c>, <c>hidden</c> (of
    /// <paramref name="hiddenKind"/>), per encoder layer <c>enc.L{i}.attn</c> and <c>enc.L{i}.ff</c>, per
    /// decoder layer <c>dec.L{i}.self</c>, <c>dec.L{i}.cross</c> and <c>dec.L{i}.ff</c>. The attention
    /// boundaries are <see cref="EeTransformKind.PairRotations"/> over <c>num_heads</c> heads of <c>d_kv</c>
    /// (which must be even).
    /// </summary>
    /// <param name="config">The architecture.</param>
    /// <param name="hiddenKind">The residual-stream transform: <see cref="EeTransformKind.Orthogonal"/> (default; derivation costs O(d^3)) or <see cref="EeTransformKind.Permutation"/>.</param>
    /// <returns>The specification.</returns>
    /// <exception cref="ArgumentException">The hidden kind does not commute with the T5 norm, or <c>d_kv</c> is odd.</exception>
    public static EeKeySpec CreateEeKeySpec(T5Config config, EeTransformKind hiddenKind = EeTransformKind.Orthogonal)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (hiddenKind is not (EeTransformKind.Orthogonal or EeTransformKind.Permutation))
        {
            throw new ArgumentException($"The T5 residual stream passes an RMS norm: it takes an orthogonal transform or a permutation, not {hiddenKind}.", nameof(hiddenKind));
        }

        if (config.KeyValueDimension % 2 != 0)
        {
            throw new ArgumentException($"T5 EE keys rotate feature pairs inside each head: d_kv {config.KeyValueDimension} must be even.", nameof(config));
        }

        var boundaries = new List<EeBoundary>
        {
            new("vocab", EeTransformKind.Permutation, config.VocabSize),
            new("hidden", hiddenKind, config.ModelDimension),
        };
        for (int i = 0; i < config.EncoderLayers; i++)
        {
            boundaries.Add(EeBoundary.PairRotations($"enc.L{i}.attn", config.KeyValueDimension, config.Heads));
            boundaries.Add(new EeBoundary($"enc.L{i}.ff", EeTransformKind.Permutation, config.FeedForwardDimension));
        }

        for (int i = 0; i < config.DecoderLayers; i++)
        {
            boundaries.Add(EeBoundary.PairRotations($"dec.L{i}.self", config.KeyValueDimension, config.Heads));
            boundaries.Add(EeBoundary.PairRotations($"dec.L{i}.cross", config.KeyValueDimension, config.Heads));
            boundaries.Add(new EeBoundary($"dec.L{i}.ff", EeTransformKind.Permutation, config.FeedForwardDimension));
        }

        return new EeKeySpec(boundaries);
    }

    /// <summary>
    /// The model owner's offline rewrite: a new model whose weights are <c>W' = T_out W T_in^-1</c> for the
    /// transforms of <paramref name="key"/>, with the shared embedding table permuted and transformed and
    /// the relative-position bias tables' head columns permuted like the heads of each layer.
    /// </summary>
    /// <param name="key">A key made from <see cref="CreateEeKeySpec"/> for this configuration.</param>
    /// <returns>The encrypted model.</returns>
    /// <exception cref="InvalidOperationException">This model is already encrypted.</exception>
    /// <exception cref="ArgumentException">The key does not fit the architecture.</exception>
    public T5Model Encrypt(EeKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (IsEncrypted)
        {
            throw new InvalidOperationException("The model is already EE-encrypted.");
        }

        ModelWeights.CheckKey(key, CreateEeKeySpec(Config, key.Spec.TryGetBoundary("hidden", out EeBoundary? hb) ? hb.Kind : EeTransformKind.Orthogonal), "T5");
        float[] embedding = (float[])Embedding.Clone();
        key.EncryptEmbeddingTable(embedding, "vocab", "hidden");
        var encoder = new T5EncoderLayer[Encoder.Length];
        for (int i = 0; i < encoder.Length; i++)
        {
            T5EncoderLayer l = Encoder[i];
            string attn = $"enc.L{i}.attn";
            encoder[i] = new T5EncoderLayer(
                EncryptAttention(l.Self, key, attn),
                EncryptFeedForward(l.FeedForward, key, $"enc.L{i}.ff"),
                PermuteBiasHeads(l.Bias, key.GetTransform<PairRotationTransform>(attn)));
        }

        var decoder = new T5DecoderLayer[Decoder.Length];
        for (int i = 0; i < decoder.Length; i++)
        {
            T5DecoderLayer l = Decoder[i];
            string self = $"dec.L{i}.self";
            decoder[i] = new T5DecoderLayer(
                EncryptAttention(l.Self, key, self),
                EncryptAttention(l.Cross, key, $"dec.L{i}.cross"),
                EncryptFeedForward(l.FeedForward, key, $"dec.L{i}.ff"),
                PermuteBiasHeads(l.Bias, key.GetTransform<PairRotationTransform>(self)));
        }

        LinearLayer head = Head.Clone();
        key.EncryptWeight(head.Weight, "vocab", "hidden");
        return new T5Model(Config, embedding, encoder, decoder, head, null, encrypted: true);
    }

    /// <summary>
    /// Hugging Face <c>T5Attention._relative_position_bucket</c>: the bucket of <c>relative_position = key - query</c>.
    /// Bidirectional: half the buckets for keys after the query; unidirectional: keys after the query share
    /// bucket 0. Within each half, distances below half of it are exact, larger ones are logarithmic up to
    /// <paramref name="maxDistance"/> and clipped to the last bucket (computed in float32 as PyTorch does).
    /// </summary>
    /// <param name="relativePosition">Key position minus query position.</param>
    /// <param name="bidirectional">True in the encoder, false in decoder self-attention.</param>
    /// <param name="numBuckets">Buckets (<c>relative_attention_num_buckets</c>).</param>
    /// <param name="maxDistance">Distance of the last bucket (<c>relative_attention_max_distance</c>).</param>
    /// <returns>The bucket in [0, <paramref name="numBuckets"/>).</returns>
    public static int RelativePositionBucket(int relativePosition, bool bidirectional, int numBuckets, int maxDistance)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numBuckets, bidirectional ? 4 : 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDistance, 1);
        int bucket = 0;
        long rp = relativePosition;
        if (bidirectional)
        {
            numBuckets /= 2;
            if (rp > 0)
            {
                bucket += numBuckets;
            }

            rp = Math.Abs(rp);
        }
        else
        {
            rp = -Math.Min(rp, 0);
        }

        int maxExact = numBuckets / 2;
        if (rp < maxExact)
        {
            return bucket + (int)rp;
        }

        // torch: (log(rp.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)).to(long), in float32.
        float ratio = (float)rp / maxExact;
        float scaled = MathF.Log(ratio) / (float)Math.Log((double)maxDistance / maxExact) * (numBuckets - maxExact);
        long large = maxExact + (long)scaled;
        return bucket + (int)Math.Min(large, numBuckets - 1);
    }

    /// <summary>The encoder's last hidden state (Hugging Face <c>encoder_last_hidden_state</c>, final norm gain applied) of a plain model.</summary>
    /// <param name="inputIds">Encoder input token ids.</param>
    /// <returns><c>[inputs, d_model]</c> row-major.</returns>
    /// <exception cref="InvalidOperationException">The model is encrypted (its encoder output is only defined up to the key, without the folded gain).</exception>
    public float[] ComputeEncoderOutput(ReadOnlySpan<int> inputIds)
    {
        float[] gain = EncoderFinalGain ?? throw new InvalidOperationException("The encoder output of an encrypted model is not available in plain form.");
        var engine = new PlainEngine();
        FloatTensor y = EncodeAsync(engine, Embed(inputIds)).AsTask().GetAwaiter().GetResult();
        int d = Config.ModelDimension;
        for (int r = 0; r < y.Data.Length; r += d)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(y.Data.AsSpan(r, d), gain, y.Data.AsSpan(r, d));
        }

        return y.Data;
    }

    /// <summary>Plain float32 logits for every decoder position (no cache; one encoder pass).</summary>
    /// <param name="inputIds">Encoder input ids (encrypted ids for an encrypted model).</param>
    /// <param name="decoderInputIds">Decoder input ids, normally starting with <see cref="T5Config.DecoderStartTokenId"/> (encrypted for an encrypted model).</param>
    /// <returns>Logits <c>[decoder inputs, vocab]</c> row-major (encrypted order for an encrypted model).</returns>
    public float[] ComputeLogits(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> decoderInputIds)
    {
        var engine = new PlainEngine();
        FloatTensor encoded = EncodeAsync(engine, Embed(inputIds)).AsTask().GetAwaiter().GetResult();
        T5DecoderCache<FloatTensor> cache = StartDecoderAsync(engine, encoded).AsTask().GetAwaiter().GetResult();
        return DecodeAsync(engine, Embed(decoderInputIds), cache, allPositions: true).AsTask().GetAwaiter().GetResult().Data;
    }

    internal FloatTensor Embed(ReadOnlySpan<int> tokens)
    {
        if (tokens.Length == 0)
        {
            throw new ArgumentException("At least one token is needed.", nameof(tokens));
        }

        int d = Config.ModelDimension;
        var x = new float[tokens.Length * d];
        for (int t = 0; t < tokens.Length; t++)
        {
            if ((uint)tokens[t] >= (uint)Config.VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), tokens[t], $"Token {t} is outside the vocabulary [0, {Config.VocabSize}).");
            }

            Embedding.AsSpan(tokens[t] * d, d).CopyTo(x.AsSpan(t * d, d));
        }

        return new FloatTensor(x, new TensorShape(tokens.Length, d));
    }

    /// <summary>The encoder on embedded inputs <c>x [S, d]</c>: the normalised final state <c>[S, d]</c> (its gain is folded into the cross-attention k and v).</summary>
    internal async ValueTask<T> EncodeAsync<T>(Engine<T> e, T x)
        where T : class
    {
        T5Config c = Config;
        int s = e.ShapeOf(x)[0], h = c.Heads, dkv = c.KeyValueDimension;
        int[] kT = HeadLayout.Transposed(s, h, h, dkv), vHeads = HeadLayout.ByHead(s, h, h, dkv);
        var bias = new BiasMemo(this, bidirectional: true);
        for (int i = 0; i < Encoder.Length; i++)
        {
            T5EncoderLayer l = Encoder[i];
            string p = $"enc.L{i}";
            T hN = await e.RmsNormAsync(x, c.LayerNormEpsilon, $"{p}.attn_norm").ConfigureAwait(false);
            T q = await e.LinearAsync(hN, l.Self.Q).ConfigureAwait(false);
            T k = await e.LinearAsync(hN, l.Self.K).ConfigureAwait(false);
            T v = await e.LinearAsync(hN, l.Self.V).ConfigureAwait(false);
            T kh = e.Gather(k, kT, new TensorShape(h, dkv, s));
            T vh = e.Gather(v, vHeads, new TensorShape(h, s, dkv));
            T ctx = await AttentionAsync(e, q, kh, vh, s, s, bias.Get(l.Bias, 0, s, s), causal: false, $"{p}.attn").ConfigureAwait(false);
            x = e.Add(x, await e.LinearAsync(ctx, l.Self.O).ConfigureAwait(false));
            x = await FeedForwardAsync(e, x, l.FeedForward, p).ConfigureAwait(false);
        }

        return await e.RmsNormAsync(x, c.LayerNormEpsilon, "enc.final_norm").ConfigureAwait(false);
    }

    /// <summary>A fresh decoder cache: the cross-attention keys <c>[H, d_kv, S]</c> and values <c>[H, S, d_kv]</c> of every decoder layer, from the encoder output.</summary>
    internal async ValueTask<T5DecoderCache<T>> StartDecoderAsync<T>(Engine<T> e, T encoded)
        where T : class
    {
        int s = e.ShapeOf(encoded)[0], h = Config.Heads, dkv = Config.KeyValueDimension;
        int[] kT = HeadLayout.Transposed(s, h, h, dkv), vHeads = HeadLayout.ByHead(s, h, h, dkv);
        var cache = new T5DecoderCache<T>(Decoder.Length, s);
        for (int i = 0; i < Decoder.Length; i++)
        {
            T5Attention a = Decoder[i].Cross;
            T k = await e.RescaleAsync(await e.LinearAsync(encoded, a.K).ConfigureAwait(false), $"dec.L{i}.cross.k").ConfigureAwait(false);
            T v = await e.RescaleAsync(await e.LinearAsync(encoded, a.V).ConfigureAwait(false), $"dec.L{i}.cross.v").ConfigureAwait(false);
            cache.CrossK[i] = e.Gather(k, kT, new TensorShape(h, dkv, s));
            cache.CrossV[i] = e.Gather(v, vHeads, new TensorShape(h, s, dkv));
        }

        return cache;
    }

    /// <summary>
    /// The decoder on embedded new tokens <c>y [n, d]</c> at positions <c>cache.Length ..</c>, appending to the
    /// self-attention cache. Returns logits of the last position <c>[1, V]</c>, or of all <c>[n, V]</c>.
    /// </summary>
    internal async ValueTask<T> DecodeAsync<T>(Engine<T> e, T y, T5DecoderCache<T> cache, bool allPositions = false)
        where T : class
    {
        T5Config c = Config;
        int n = e.ShapeOf(y)[0], start = cache.Length, total = start + n, s = cache.EncoderLength;
        int h = c.Heads, dkv = c.KeyValueDimension, inner = c.InnerDimension;
        int[] kT = HeadLayout.Transposed(total, h, h, dkv), vHeads = HeadLayout.ByHead(total, h, h, dkv);
        var bias = new BiasMemo(this, bidirectional: false);
        for (int i = 0; i < Decoder.Length; i++)
        {
            T5DecoderLayer l = Decoder[i];
            string p = $"dec.L{i}";
            T hN = await e.RmsNormAsync(y, c.LayerNormEpsilon, $"{p}.self_norm").ConfigureAwait(false);
            T q = await e.LinearAsync(hN, l.Self.Q).ConfigureAwait(false);
            T k = await e.RescaleAsync(await e.LinearAsync(hN, l.Self.K).ConfigureAwait(false), $"{p}.self.k").ConfigureAwait(false);
            T v = await e.RescaleAsync(await e.LinearAsync(hN, l.Self.V).ConfigureAwait(false), $"{p}.self.v").ConfigureAwait(false);
            var kvShape = new TensorShape(total, inner);
            T kAll = cache.SelfK[i] is { } k0 ? e.Concat(k0, k, kvShape) : k;
            T vAll = cache.SelfV[i] is { } v0 ? e.Concat(v0, v, kvShape) : v;
            cache.SelfK[i] = kAll;
            cache.SelfV[i] = vAll;
            T kh = e.Gather(kAll, kT, new TensorShape(h, dkv, total));
            T vh = e.Gather(vAll, vHeads, new TensorShape(h, total, dkv));
            T ctx = await AttentionAsync(e, q, kh, vh, n, total, bias.Get(l.Bias, start, n, total), causal: n > 1, $"{p}.self").ConfigureAwait(false);
            y = e.Add(y, await e.LinearAsync(ctx, l.Self.O).ConfigureAwait(false));

            hN = await e.RmsNormAsync(y, c.LayerNormEpsilon, $"{p}.cross_norm").ConfigureAwait(false);
            q = await e.LinearAsync(hN, l.Cross.Q).ConfigureAwait(false);
            T crossK = cache.CrossK[i] ?? throw new InvalidOperationException("The decoder cache has no cross-attention keys.");
            T crossV = cache.CrossV[i] ?? throw new InvalidOperationException("The decoder cache has no cross-attention values.");
            ctx = await AttentionAsync(e, q, crossK, crossV, n, s, null, causal: false, $"{p}.cross").ConfigureAwait(false);
            y = e.Add(y, await e.LinearAsync(ctx, l.Cross.O).ConfigureAwait(false));
            y = await FeedForwardAsync(e, y, l.FeedForward, p).ConfigureAwait(false);
        }

        cache.Length = total;
        if (!allPositions && n > 1)
        {
            int d = c.ModelDimension;
            y = e.Gather(y, Enumerable.Range((n - 1) * d, d).ToArray(), new TensorShape(1, d));
        }

        T final = await e.RmsNormAsync(y, c.LayerNormEpsilon, "dec.final_norm").ConfigureAwait(false);
        T logits = await e.LinearAsync(final, Head).ConfigureAwait(false);
        return await e.RescaleAsync(logits, "logits").ConfigureAwait(false);
    }

    /// <summary>Attention of queries <c>q [n, H * d_kv]</c> on prepared keys <c>[H, d_kv, k]</c> and values <c>[H, k, d_kv]</c>: the context <c>[n, H * d_kv]</c>.</summary>
    private async ValueTask<T> AttentionAsync<T>(Engine<T> e, T q, T keys, T values, int n, int k, float[]? bias, bool causal, string label)
        where T : class
    {
        int h = Config.Heads, dkv = Config.KeyValueDimension;
        T qh = e.Gather(q, HeadLayout.Split(n, h, dkv), new TensorShape(h, n, dkv));
        T scores = await e.BatchMatMulAsync(qh, keys, $"{label}.scores").ConfigureAwait(false);
        if (bias is not null)
        {
            scores = e.AddPublic(scores, bias);
        }

        T probs = await e.SoftmaxAsync(scores, causal, $"{label}.softmax").ConfigureAwait(false);
        T ctx = await e.BatchMatMulAsync(probs, values, $"{label}.context").ConfigureAwait(false);
        return e.Gather(ctx, HeadLayout.Merge(n, h, dkv), new TensorShape(n, h * dkv));
    }

    /// <summary>The residual feed-forward sub-layer: <c>x + FFN(norm(x))</c>.</summary>
    private async ValueTask<T> FeedForwardAsync<T>(Engine<T> e, T x, T5FeedForward ff, string p)
        where T : class
    {
        T hN = await e.RmsNormAsync(x, Config.LayerNormEpsilon, $"{p}.ff_norm").ConfigureAwait(false);
        T act;
        if (ff.Gate is null)
        {
            act = await e.ReluAsync(await e.LinearAsync(hN, ff.In).ConfigureAwait(false), $"{p}.relu").ConfigureAwait(false);
        }
        else
        {
            T g = await e.GeluAsync(await e.LinearAsync(hN, ff.In).ConfigureAwait(false), tanhApproximation: true, $"{p}.gelu").ConfigureAwait(false);
            T u = await e.LinearAsync(hN, ff.Gate).ConfigureAwait(false);
            act = await e.MultiplyAsync(g, u, $"{p}.gate").ConfigureAwait(false);
        }

        return e.Add(x, await e.LinearAsync(act, ff.Out).ConfigureAwait(false));
    }

    /// <summary>
    /// The public bias <c>[H, n, total]</c> of queries at positions <c>start .. start + n - 1</c> against keys
    /// <c>0 .. total - 1</c>, from a <c>[buckets, H]</c> table.
    /// </summary>
    internal float[] PositionBias(float[] table, int start, int n, int total, bool bidirectional)
    {
        int h = Config.Heads;
        var bias = new float[h * n * total];
        for (int t = 0; t < n; t++)
        {
            for (int j = 0; j < total; j++)
            {
                int bucket = RelativePositionBucket(j - (start + t), bidirectional, Config.RelativeAttentionBuckets, Config.RelativeAttentionMaxDistance);
                for (int hh = 0; hh < h; hh++)
                {
                    bias[(((hh * n) + t) * total) + j] = table[(bucket * h) + hh];
                }
            }
        }

        return bias;
    }

    private static T5Attention EncryptAttention(T5Attention a, EeKey key, string boundary)
    {
        T5Attention e = a.Copy();
        key.EncryptWeight(e.Q.Weight, boundary, "hidden");
        key.EncryptWeight(e.K.Weight, boundary, "hidden");
        key.EncryptWeight(e.V.Weight, boundary, "hidden");
        key.EncryptWeight(e.O.Weight, "hidden", boundary);
        return e;
    }

    private static T5FeedForward EncryptFeedForward(T5FeedForward f, EeKey key, string boundary)
    {
        T5FeedForward e = f.Copy();
        key.EncryptWeight(e.In.Weight, boundary, "hidden");
        if (e.Gate is not null)
        {
            key.EncryptWeight(e.Gate.Weight, boundary, "hidden");
        }

        key.EncryptWeight(e.Out.Weight, "hidden", boundary);
        return e;
    }

    /// <summary>The bias table <c>[buckets, H]</c> with head column <c>h</c> moved to <c>MapHead(h)</c>, where the transform puts that head's scores.</summary>
    private float[] PermuteBiasHeads(float[] table, PairRotationTransform heads)
    {
        int h = Config.Heads, buckets = Config.RelativeAttentionBuckets;
        var permuted = new float[table.Length];
        for (int hh = 0; hh < h; hh++)
        {
            int target = heads.MapHead(hh);
            for (int b = 0; b < buckets; b++)
            {
                permuted[(b * h) + target] = table[(b * h) + hh];
            }
        }

        return permuted;
    }

    private static T5Attention ReadAttention(IWeightSource weights, T5Config c, string prefix, string name)
    {
        int d = c.ModelDimension, inner = c.InnerDimension;
        return new T5Attention(
            new LinearLayer($"{name}.q", inner, d, ModelWeights.Read(weights, prefix + "q.weight", inner, d)),
            new LinearLayer($"{name}.k", inner, d, ModelWeights.Read(weights, prefix + "k.weight", inner, d)),
            new LinearLayer($"{name}.v", inner, d, ModelWeights.Read(weights, prefix + "v.weight", inner, d)),
            new LinearLayer($"{name}.o", d, inner, ModelWeights.Read(weights, prefix + "o.weight", d, inner)));
    }

    private static T5FeedForward ReadFeedForward(IWeightSource weights, T5Config c, string prefix, string name)
    {
        int d = c.ModelDimension, ff = c.FeedForwardDimension;
        var wo = new LinearLayer($"{name}.wo", d, ff, ModelWeights.Read(weights, prefix + "wo.weight", d, ff));
        return c.FeedForward == T5FeedForwardKind.Relu
            ? new T5FeedForward(new LinearLayer($"{name}.wi", ff, d, ModelWeights.Read(weights, prefix + "wi.weight", ff, d)), null, wo)
            : new T5FeedForward(
                new LinearLayer($"{name}.wi_0", ff, d, ModelWeights.Read(weights, prefix + "wi_0.weight", ff, d)),
                new LinearLayer($"{name}.wi_1", ff, d, ModelWeights.Read(weights, prefix + "wi_1.weight", ff, d)),
                wo);
    }

    /// <summary>Position biases of one forward pass, computed once per distinct table (the plain model shares one table per stack).</summary>
    private sealed class BiasMemo(T5Model model, bool bidirectional)
    {
        private float[]? _table;
        private float[]? _bias;

        public float[] Get(float[] table, int start, int n, int total)
        {
            if (!ReferenceEquals(table, _table))
            {
                _table = table;
                _bias = model.PositionBias(table, start, n, total, bidirectional);
            }

            return _bias!;
        }
    }
}

/// <summary>The q, k, v, o projections of one attention block (norm gains folded into q / k, v).</summary>
internal sealed record T5Attention(LinearLayer Q, LinearLayer K, LinearLayer V, LinearLayer O)
{
    public T5Attention Copy() => new(Q.Clone(), K.Clone(), V.Clone(), O.Clone());

    public void ScaleQueryInputs(ReadOnlySpan<float> gain) => Q.ScaleInputs(gain);

    public void ScaleKeyValueInputs(ReadOnlySpan<float> gain)
    {
        K.ScaleInputs(gain);
        V.ScaleInputs(gain);
    }
}

/// <summary>A feed-forward block: <c>Out(relu(In x))</c>, or <c>Out(gelu_new(In x) * Gate x)</c> when gated (<c>In</c> = wi / wi_0, <c>Gate</c> = wi_1).</summary>
internal sealed record T5FeedForward(LinearLayer In, LinearLayer? Gate, LinearLayer Out)
{
    public T5FeedForward Copy() => new(In.Clone(), Gate?.Clone(), Out.Clone());

    public void ScaleInputs(ReadOnlySpan<float> gain)
    {
        In.ScaleInputs(gain);
        Gate?.ScaleInputs(gain);
    }
}

/// <summary>One encoder layer with the relative-position bias table <c>[buckets, H]</c> it adds to its scores.</summary>
internal sealed record T5EncoderLayer(T5Attention Self, T5FeedForward FeedForward, float[] Bias);

/// <summary>One decoder layer with the bias table of its self-attention.</summary>
internal sealed record T5DecoderLayer(T5Attention Self, T5Attention Cross, T5FeedForward FeedForward, float[] Bias);

/// <summary>
/// Decoder state between steps: self-attention keys and values <c>[positions, H * d_kv]</c> per layer, and
/// the cross-attention keys <c>[H, d_kv, S]</c> and values <c>[H, S, d_kv]</c> computed once from the encoder output.
/// </summary>
/// <typeparam name="T">The engine's tensor type.</typeparam>
internal sealed class T5DecoderCache<T>(int layers, int encoderLength)
    where T : class
{
    public T?[] SelfK { get; } = new T?[layers];

    public T?[] SelfV { get; } = new T?[layers];

    public T?[] CrossK { get; } = new T?[layers];

    public T?[] CrossV { get; } = new T?[layers];

    public int EncoderLength { get; } = encoderLength;

    public int Length { get; set; }
}
