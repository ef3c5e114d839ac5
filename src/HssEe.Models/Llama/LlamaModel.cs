using HssEe.Ee;
using HssEe.Models.Engine;
using HssEe.Models.IO;
using HssEe.Ring;

namespace HssEe.Models.Llama;

/// <summary>
/// A LLaMA-architecture decoder (RMSNorm, RoPE "rotate half", grouped-query attention, SwiGLU MLP,
/// tied or separate LM head) defined once and run in every <see cref="ExecutionMode"/>.
/// </summary>
/// <remarks>
/// <para>At load time the RMSNorm gains are folded into the next linear layers (q/k/v, gate/up and the
/// LM head) and <c>1/sqrt(head_dim)</c> into the query projection: mathematically the same model, and
/// what equivariant encryption needs (a gain does not commute with a rotation of the residual stream).</para>
/// <para><see cref="Encrypt"/> is the model owner's offline rewrite under an <see cref="EeKey"/> built from
/// <see cref="CreateEeKeySpec"/>: residual stream <c>hidden</c> (orthogonal or a permutation), per layer
/// <c>L{i}.qk</c> (per-pair rotations and a head permutation, shared by q, k and v, so RoPE and every
/// score are preserved), <c>L{i}.ff</c> (a permutation of the MLP width) and <c>vocab</c> (a permutation
/// of the token ids and logits).</para>
/// </remarks>
public sealed class LlamaModel
{
    private LlamaModel(LlamaConfig config, float[] embedding, LlamaLayer[] layers, LinearLayer head, bool encrypted, float residualScale)
    {
        ResidualScale = residualScale;
        Config = config;
        Embedding = embedding;
        Layers = layers;
        Head = head;
        IsEncrypted = encrypted;
    }

    /// <summary>The architecture.</summary>
    public LlamaConfig Config { get; }

    /// <summary>True for a model rewritten by <see cref="Encrypt"/> (it expects encrypted tokens and returns encrypted logits).</summary>
    public bool IsEncrypted { get; }

    internal float[] Embedding { get; }

    /// <summary>
    /// The power of two c the residual stream is carried at (embedding rows and the o/down projections
    /// are multiplied by c, the norm epsilon by c^2; every RMSNorm is scale-invariant, so the model is
    /// unchanged). Chosen at load so that the embedding rows have an RMS of at least 1/4: in fixed point
    /// the norms' mean square then keeps its precision and stays inside the rsqrt spline's domain.
    /// </summary>
    internal float ResidualScale { get; }

    private double NormEpsilon => Config.RmsNormEpsilon * ResidualScale * ResidualScale;

    internal LlamaLayer[] Layers { get; }

    internal LinearLayer Head { get; }

    /// <summary>Loads <c>config.json</c> and <c>model.safetensors</c> from a Hugging Face style folder.</summary>
    /// <param name="directory">The folder.</param>
    /// <returns>The model.</returns>
    public static LlamaModel Load(string directory)
    {
        LlamaConfig config = LlamaConfig.FromJson(File.ReadAllText(Path.Combine(directory, "config.json")));
        using var weights = SafeTensorsFile.Open(Path.Combine(directory, "model.safetensors"));
        return FromWeights(config, weights);
    }

    /// <summary>Builds the model from Hugging Face tensor names (<c>model.embed_tokens.weight</c>, <c>model.layers.{i}.self_attn.q_proj.weight</c>, ...).</summary>
    /// <param name="config">The architecture.</param>
    /// <param name="weights">The tensors.</param>
    /// <returns>The model.</returns>
    /// <exception cref="KeyNotFoundException">A tensor is missing.</exception>
    /// <exception cref="FormatException">A tensor has the wrong shape.</exception>
    public static LlamaModel FromWeights(LlamaConfig config, IWeightSource weights)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        config.Validate();
        int d = config.HiddenSize, hd = config.HeadDimension, ff = config.IntermediateSize;
        float[] embedding = ModelWeights.Read(weights, "model.embed_tokens.weight", config.VocabSize, d);
        float[] headSource = config.TieWordEmbeddings ? (float[])embedding.Clone() : embedding;
        double rms = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.SumOfSquares<float>(embedding) / embedding.Length);
        float scale = rms > 0 ? (float)Math.Pow(2, Math.Clamp(Math.Ceiling(Math.Log2(0.25 / rms)), 0, 8)) : 1;
        System.Numerics.Tensors.TensorPrimitives.Multiply(embedding, scale, embedding);
        var layers = new LlamaLayer[config.Layers];
        float qScale = 1 / MathF.Sqrt(hd);
        for (int i = 0; i < layers.Length; i++)
        {
            string p = $"model.layers.{i}.";
            float[] g1 = ModelWeights.Read(weights, p + "input_layernorm.weight", d);
            float[] g2 = ModelWeights.Read(weights, p + "post_attention_layernorm.weight", d);
            var q = new LinearLayer($"L{i}.q", config.Heads * hd, d, ModelWeights.Read(weights, p + "self_attn.q_proj.weight", config.Heads * hd, d));
            var k = new LinearLayer($"L{i}.k", config.KeyValueHeads * hd, d, ModelWeights.Read(weights, p + "self_attn.k_proj.weight", config.KeyValueHeads * hd, d));
            var v = new LinearLayer($"L{i}.v", config.KeyValueHeads * hd, d, ModelWeights.Read(weights, p + "self_attn.v_proj.weight", config.KeyValueHeads * hd, d));
            var o = new LinearLayer($"L{i}.o", d, config.Heads * hd, ModelWeights.Read(weights, p + "self_attn.o_proj.weight", d, config.Heads * hd));
            var gate = new LinearLayer($"L{i}.gate", ff, d, ModelWeights.Read(weights, p + "mlp.gate_proj.weight", ff, d));
            var up = new LinearLayer($"L{i}.up", ff, d, ModelWeights.Read(weights, p + "mlp.up_proj.weight", ff, d));
            var down = new LinearLayer($"L{i}.down", d, ff, ModelWeights.Read(weights, p + "mlp.down_proj.weight", d, ff));
            q.ScaleInputs(g1);
            System.Numerics.Tensors.TensorPrimitives.Multiply(q.Weight, qScale, q.Weight);
            k.ScaleInputs(g1);
            v.ScaleInputs(g1);
            gate.ScaleInputs(g2);
            up.ScaleInputs(g2);
            System.Numerics.Tensors.TensorPrimitives.Multiply(o.Weight, scale, o.Weight);
            System.Numerics.Tensors.TensorPrimitives.Multiply(down.Weight, scale, down.Weight);
            layers[i] = new LlamaLayer(q, k, v, o, gate, up, down);
        }

        float[] headWeight = config.TieWordEmbeddings || !weights.Contains("lm_head.weight")
            ? (config.TieWordEmbeddings ? headSource : throw new KeyNotFoundException("Tensor 'lm_head.weight' is missing and tie_word_embeddings is false."))
            : ModelWeights.Read(weights, "lm_head.weight", config.VocabSize, d);
        var head = new LinearLayer("lm_head", config.VocabSize, d, headWeight);
        head.ScaleInputs(ModelWeights.Read(weights, "model.norm.weight", d));
        return new LlamaModel(config, embedding, layers, head, encrypted: false, scale);
    }

    /// <summary>
    /// The boundaries of an EE key for this architecture: <c>vocab</c>, <c>hidden</c> (of
    /// <paramref name="hiddenKind"/>), and per layer <c>L{i}.qk</c> and <c>L{i}.ff</c>.
    /// </summary>
    /// <param name="config">The architecture.</param>
    /// <param name="hiddenKind">The residual-stream transform: <see cref="EeTransformKind.Orthogonal"/> (default; derivation costs O(d^3)) or <see cref="EeTransformKind.Permutation"/>.</param>
    /// <returns>The specification.</returns>
    public static EeKeySpec CreateEeKeySpec(LlamaConfig config, EeTransformKind hiddenKind = EeTransformKind.Orthogonal)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (hiddenKind is not (EeTransformKind.Orthogonal or EeTransformKind.Permutation))
        {
            throw new ArgumentException($"The LLaMA residual stream passes RMSNorm: it takes an orthogonal transform or a permutation, not {hiddenKind}.", nameof(hiddenKind));
        }

        var boundaries = new List<EeBoundary>
        {
            new("vocab", EeTransformKind.Permutation, config.VocabSize),
            new("hidden", hiddenKind, config.HiddenSize),
        };
        for (int i = 0; i < config.Layers; i++)
        {
            boundaries.Add(EeBoundary.PairRotations($"L{i}.qk", config.HeadDimension, config.KeyValueHeads, halfSplitPairs: true));
            boundaries.Add(new EeBoundary($"L{i}.ff", EeTransformKind.Permutation, config.IntermediateSize));
        }

        return new EeKeySpec(boundaries);
    }

    /// <summary>
    /// The model owner's offline rewrite: a new model whose weights are <c>W' = T_out W T_in^-1</c> for the
    /// transforms of <paramref name="key"/>, with the embedding table permuted and transformed.
    /// </summary>
    /// <param name="key">A key made from <see cref="CreateEeKeySpec"/> for this configuration.</param>
    /// <returns>The encrypted model.</returns>
    /// <exception cref="InvalidOperationException">This model is already encrypted.</exception>
    /// <exception cref="ArgumentException">The key does not fit the architecture.</exception>
    public LlamaModel Encrypt(EeKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (IsEncrypted)
        {
            throw new InvalidOperationException("The model is already EE-encrypted.");
        }

        ModelWeights.CheckKey(key, CreateEeKeySpec(Config, key.Spec.TryGetBoundary("hidden", out EeBoundary? hb) ? hb.Kind : EeTransformKind.Orthogonal), "LLaMA");
        int g = Config.Heads / Config.KeyValueHeads;
        float[] embedding = (float[])Embedding.Clone();
        key.EncryptEmbeddingTable(embedding, "vocab", "hidden");
        FeatureTransform hidden = key.GetTransform("hidden");
        var layers = new LlamaLayer[Layers.Length];
        for (int i = 0; i < layers.Length; i++)
        {
            LlamaLayer l = Layers[i];
            var qk = key.GetTransform<PairRotationTransform>($"L{i}.qk");
            using PairRotationTransform q = qk.RepeatHeads(g);
            LlamaLayer e = l.Copy();
            FeatureTransform.TransformWeight(e.Q.Weight, q, hidden);
            key.EncryptWeight(e.K.Weight, $"L{i}.qk", "hidden");
            key.EncryptWeight(e.V.Weight, $"L{i}.qk", "hidden");
            FeatureTransform.TransformWeight(e.O.Weight, hidden, q);
            key.EncryptWeight(e.Gate.Weight, $"L{i}.ff", "hidden");
            key.EncryptWeight(e.Up.Weight, $"L{i}.ff", "hidden");
            key.EncryptWeight(e.Down.Weight, "hidden", $"L{i}.ff");
            layers[i] = e;
        }

        LinearLayer head = Head.Clone();
        key.EncryptWeight(head.Weight, "vocab", "hidden");
        return new LlamaModel(Config, embedding, layers, head, encrypted: true, ResidualScale);
    }

    /// <summary>Plain float32 logits for every position of a token sequence (no cache).</summary>
    /// <param name="tokens">Token ids (encrypted ids for an encrypted model).</param>
    /// <returns>Logits <c>[tokens, vocab]</c> row-major (encrypted order for an encrypted model).</returns>
    public float[] ComputeLogits(ReadOnlySpan<int> tokens)
    {
        var engine = new PlainEngine();
        FloatTensor x = Embed(tokens);
        var cache = new KvCache<FloatTensor>(Config.Layers);
        return ForwardAsync(engine, x, cache, allPositions: true).AsTask().GetAwaiter().GetResult().Data;
    }

    internal FloatTensor Embed(ReadOnlySpan<int> tokens)
    {
        int d = Config.HiddenSize;
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

    /// <summary>
    /// The forward pass on <c>x [n, d]</c> (embedded new tokens at positions <c>cache.Length ..</c>),
    /// appending to the cache. Returns logits of the last position <c>[1, V]</c>, or of all <c>[n, V]</c>.
    /// </summary>
    internal async ValueTask<T> ForwardAsync<T>(Engine<T> e, T x, KvCache<T> cache, bool allPositions = false, int stopAfterLayer = -1)
        where T : class
    {
        LlamaConfig c = Config;
        int n = e.ShapeOf(x)[0], start = cache.Length, total = start + n;
        if (total > c.MaxPositions)
        {
            throw new ArgumentException($"Sequence of {total} positions exceeds max_position_embeddings {c.MaxPositions}.", nameof(x));
        }

        int hd = c.HeadDimension, h = c.Heads, kvh = c.KeyValueHeads;
        (float[] cosQ, float[] sinQ, int[] rotQ) = Rope(start, n, h);
        (float[] cosK, float[] sinK, int[] rotK) = Rope(start, n, kvh);
        int[] qHeads = HeadLayout.Split(n, h, hd);
        int[] kT = HeadLayout.Transposed(total, h, kvh, hd);
        int[] vHeads = HeadLayout.ByHead(total, h, kvh, hd);
        int[] merge = HeadLayout.Merge(n, h, hd);
        for (int i = 0; i < Layers.Length; i++)
        {
            LlamaLayer l = Layers[i];
            string p = $"L{i}";
            T hN = await e.RmsNormAsync(x, NormEpsilon, $"{p}.attn_norm").ConfigureAwait(false);
            T q = await e.LinearAsync(hN, l.Q).ConfigureAwait(false);
            T k = await e.LinearAsync(hN, l.K).ConfigureAwait(false);
            T v = await e.LinearAsync(hN, l.V).ConfigureAwait(false);
            q = e.Add(e.MultiplyPublic(q, cosQ), e.MultiplyPublic(e.Gather(q, rotQ, e.ShapeOf(q)), sinQ));
            k = e.Add(e.MultiplyPublic(k, cosK), e.MultiplyPublic(e.Gather(k, rotK, e.ShapeOf(k)), sinK));
            q = await e.RescaleAsync(q, $"{p}.q").ConfigureAwait(false);
            k = await e.RescaleAsync(k, $"{p}.k").ConfigureAwait(false);
            v = await e.RescaleAsync(v, $"{p}.v").ConfigureAwait(false);
            var kvShape = new TensorShape(total, kvh * hd);
            T kAll = cache.K[i] is { } k0 ? e.Concat(k0, k, kvShape) : k;
            T vAll = cache.V[i] is { } v0 ? e.Concat(v0, v, kvShape) : v;
            cache.K[i] = kAll;
            cache.V[i] = vAll;
            T qh = e.Gather(q, qHeads, new TensorShape(h, n, hd));
            T kh = e.Gather(kAll, kT, new TensorShape(h, hd, total));
            T vh = e.Gather(vAll, vHeads, new TensorShape(h, total, hd));
            T scores = await e.BatchMatMulAsync(qh, kh, $"{p}.scores").ConfigureAwait(false);
            T probs = await e.SoftmaxAsync(scores, causal: n > 1, $"{p}.softmax").ConfigureAwait(false);
            T ctx = await e.BatchMatMulAsync(probs, vh, $"{p}.context").ConfigureAwait(false);
            ctx = e.Gather(ctx, merge, new TensorShape(n, h * hd));
            T attn = await e.LinearAsync(ctx, l.O).ConfigureAwait(false);
            x = e.Add(x, attn);
            T h2 = await e.RmsNormAsync(x, NormEpsilon, $"{p}.mlp_norm").ConfigureAwait(false);
            T gate = await e.LinearAsync(h2, l.Gate).ConfigureAwait(false);
            T up = await e.LinearAsync(h2, l.Up).ConfigureAwait(false);
            T act = await e.SiluAsync(gate, $"{p}.silu").ConfigureAwait(false);
            T prod = await e.MultiplyAsync(act, up, $"{p}.swiglu").ConfigureAwait(false);
            T down = await e.LinearAsync(prod, l.Down).ConfigureAwait(false);
            x = e.Add(x, down);
            if (i == stopAfterLayer)
            {
                return x;
            }
        }

        cache.Length = total;
        if (!allPositions && n > 1)
        {
            int d = c.HiddenSize;
            x = e.Gather(x, Enumerable.Range((n - 1) * d, d).ToArray(), new TensorShape(1, d));
        }

        T final = await e.RmsNormAsync(x, NormEpsilon, "final_norm").ConfigureAwait(false);
        T logits = await e.LinearAsync(final, Head).ConfigureAwait(false);
        return await e.RescaleAsync(logits, "logits").ConfigureAwait(false);
    }

    /// <summary>RoPE ("rotate half") for rows at positions start.. as y = x * cos + x[rot] * sinSigned.</summary>
    private (float[] Cos, float[] Sin, int[] Rot) Rope(int start, int n, int heads)
    {
        int hd = Config.HeadDimension, half = hd / 2, width = heads * hd;
        var cos = new float[n * width];
        var sin = new float[n * width];
        var rot = new int[n * width];
        // Hugging Face computes inv_freq and the angles in float32.
        var invFreq = new float[half];
        for (int fi = 0; fi < half; fi++)
        {
            invFreq[fi] = (float)(1.0 / Math.Pow(Config.RopeTheta, 2.0 * fi / hd));
        }

        for (int t = 0; t < n; t++)
        {
            float pos = start + t;
            for (int j = 0; j < hd; j++)
            {
                float angle = pos * invFreq[j % half];
                float cj = MathF.Cos(angle), sj = MathF.Sin(angle);
                for (int hh = 0; hh < heads; hh++)
                {
                    int idx = (t * width) + (hh * hd) + j;
                    cos[idx] = cj;
                    sin[idx] = j < half ? -sj : sj;
                    rot[idx] = j < half ? idx + half : idx - half;
                }
            }
        }

        return (cos, sin, rot);
    }
}

/// <summary>The linear layers of one decoder layer (gains and the query scale already folded).</summary>
internal sealed record LlamaLayer(LinearLayer Q, LinearLayer K, LinearLayer V, LinearLayer O, LinearLayer Gate, LinearLayer Up, LinearLayer Down)
{
    public LlamaLayer Copy() => new(Q.Clone(), K.Clone(), V.Clone(), O.Clone(), Gate.Clone(), Up.Clone(), Down.Clone());
}

/// <summary>Keys and values of the positions seen so far, per layer, as <c>[positions, kvHeads * headDim]</c>.</summary>
/// <typeparam name="T">The engine's tensor type.</typeparam>
internal sealed class KvCache<T>(int layers)
    where T : class
{
    public T?[] K { get; } = new T?[layers];

    public T?[] V { get; } = new T?[layers];

    public int Length { get; set; }
}
