using System.Text.Json;

namespace HssEe.Models.T5;

/// <summary>The feed-forward block of a T5 layer (Hugging Face <c>feed_forward_proj</c>).</summary>
public enum T5FeedForwardKind
{
    /// <summary><c>"relu"</c> (T5 v1.0): <c>wo(relu(wi(x)))</c>.</summary>
    Relu = 0,

    /// <summary><c>"gated-gelu"</c> (T5 v1.1, Flan-T5): <c>wo(gelu_new(wi_0(x)) * wi_1(x))</c>, with the tanh approximation of GeLU.</summary>
    GatedGelu = 1,
}

/// <summary>
/// The architecture of a T5 encoder-decoder, read from a Hugging Face <c>config.json</c> (<c>T5Config</c>
/// keys). Only the settings the computation depends on are kept.
/// </summary>
public sealed record T5Config
{
    /// <summary>Vocabulary size (<c>vocab_size</c>).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Width of the residual stream (<c>d_model</c>).</summary>
    public required int ModelDimension { get; init; }

    /// <summary>Width of one attention head (<c>d_kv</c>); <c>Heads * KeyValueDimension</c> need not equal <see cref="ModelDimension"/>.</summary>
    public required int KeyValueDimension { get; init; }

    /// <summary>Attention heads (<c>num_heads</c>).</summary>
    public required int Heads { get; init; }

    /// <summary>Width of the feed-forward block (<c>d_ff</c>).</summary>
    public required int FeedForwardDimension { get; init; }

    /// <summary>Encoder layers (<c>num_layers</c>).</summary>
    public required int EncoderLayers { get; init; }

    /// <summary>Decoder layers (<c>num_decoder_layers</c>; equal to <see cref="EncoderLayers"/> when absent).</summary>
    public required int DecoderLayers { get; init; }

    /// <summary>Relative-position buckets (<c>relative_attention_num_buckets</c>, default 32).</summary>
    public int RelativeAttentionBuckets { get; init; } = 32;

    /// <summary>Distance beyond which relative positions share the last bucket (<c>relative_attention_max_distance</c>, default 128).</summary>
    public int RelativeAttentionMaxDistance { get; init; } = 128;

    /// <summary>Epsilon of the T5 layer norm (<c>layer_norm_epsilon</c>, default 1e-6).</summary>
    public double LayerNormEpsilon { get; init; } = 1e-6;

    /// <summary>The feed-forward block (<c>feed_forward_proj</c>, default <c>"relu"</c>).</summary>
    public T5FeedForwardKind FeedForward { get; init; } = T5FeedForwardKind.Relu;

    /// <summary>Whether the LM head reuses the shared embedding (<c>tie_word_embeddings</c>, default true); then the decoder output is scaled by <c>d_model^-0.5</c> first.</summary>
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary>First decoder input token (<c>decoder_start_token_id</c>, default 0).</summary>
    public int DecoderStartTokenId { get; init; }

    /// <summary>End-of-sequence token (<c>eos_token_id</c>, default 1); greedy generation stops on it.</summary>
    public int EosTokenId { get; init; } = 1;

    /// <summary>Width of all heads together: <c>Heads * KeyValueDimension</c>.</summary>
    public int InnerDimension => Heads * KeyValueDimension;

    /// <summary>Parses a Hugging Face T5 <c>config.json</c> and validates it.</summary>
    /// <param name="json">The file's text.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="FormatException">A key is missing or has a wrong type or value, or the feed-forward kind is not supported.</exception>
    public static T5Config FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        using JsonDocument doc = Llama.LlamaConfig.ParseObject(json, "T5 config.json");
        JsonElement root = doc.RootElement;
        string proj = root.TryGetProperty("feed_forward_proj", out JsonElement p) && p.ValueKind == JsonValueKind.String ? p.GetString()! : "relu";
        T5FeedForwardKind ff = proj switch
        {
            "relu" => T5FeedForwardKind.Relu,
            "gated-gelu" => T5FeedForwardKind.GatedGelu,
            _ => throw new FormatException($"T5 config.json: feed_forward_proj '{proj}' is not supported (only 'relu' and 'gated-gelu')."),
        };
        int layers = Llama.LlamaConfig.Int(root, "num_layers");
        var config = new T5Config
        {
            VocabSize = Llama.LlamaConfig.Int(root, "vocab_size"),
            ModelDimension = Llama.LlamaConfig.Int(root, "d_model"),
            KeyValueDimension = Llama.LlamaConfig.Int(root, "d_kv"),
            Heads = Llama.LlamaConfig.Int(root, "num_heads"),
            FeedForwardDimension = Llama.LlamaConfig.Int(root, "d_ff"),
            EncoderLayers = layers,
            DecoderLayers = OptionalInt(root, "num_decoder_layers", layers),
            RelativeAttentionBuckets = OptionalInt(root, "relative_attention_num_buckets", 32),
            RelativeAttentionMaxDistance = OptionalInt(root, "relative_attention_max_distance", 128),
            LayerNormEpsilon = Llama.LlamaConfig.Double(root, "layer_norm_epsilon", 1e-6),
            FeedForward = ff,
            TieWordEmbeddings = !root.TryGetProperty("tie_word_embeddings", out JsonElement tie) || tie.ValueKind != JsonValueKind.False,
            DecoderStartTokenId = OptionalInt(root, "decoder_start_token_id", 0),
            EosTokenId = Eos(root),
        };
        config.Validate();
        return config;
    }

    /// <summary>Checks the configuration is consistent.</summary>
    /// <exception cref="FormatException">It is not.</exception>
    public void Validate()
    {
        if (VocabSize < 1 || ModelDimension < 1 || KeyValueDimension < 1 || Heads < 1 || FeedForwardDimension < 1 || EncoderLayers < 1 || DecoderLayers < 1)
        {
            throw new FormatException($"T5 config: sizes must be positive ({this}).");
        }

        if (RelativeAttentionBuckets < 4 || RelativeAttentionMaxDistance < 1)
        {
            throw new FormatException($"T5 config: relative_attention_num_buckets {RelativeAttentionBuckets} must be at least 4 and relative_attention_max_distance {RelativeAttentionMaxDistance} positive.");
        }

        if (!Enum.IsDefined(FeedForward) || !(LayerNormEpsilon >= 0))
        {
            throw new FormatException($"T5 config: feed-forward kind {FeedForward} / layer_norm_epsilon {LayerNormEpsilon} out of range.");
        }

        if ((uint)DecoderStartTokenId >= (uint)VocabSize)
        {
            throw new FormatException($"T5 config: decoder_start_token_id {DecoderStartTokenId} is outside the vocabulary [0, {VocabSize}).");
        }
    }

    private static int Eos(JsonElement root)
    {
        if (root.TryGetProperty("eos_token_id", out JsonElement e) && e.ValueKind == JsonValueKind.Array && e.GetArrayLength() > 0)
        {
            e = e[0];
        }
        else if (!root.TryGetProperty("eos_token_id", out e))
        {
            return 1;
        }

        return e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v : e.ValueKind == JsonValueKind.Null ? 1 : throw new FormatException($"config.json: 'eos_token_id' must be an integer, got {e}.");
    }

    private static int OptionalInt(JsonElement root, string key, int fallback) =>
        !root.TryGetProperty(key, out JsonElement e) || e.ValueKind == JsonValueKind.Null ? fallback : Llama.LlamaConfig.Int(root, key);
}
