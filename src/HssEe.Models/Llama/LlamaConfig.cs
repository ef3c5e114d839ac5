using System.Text.Json;

namespace HssEe.Models.Llama;

/// <summary>
/// The architecture of a LLaMA-family decoder, read from a Hugging Face <c>config.json</c>
/// (<c>LlamaConfig</c> keys). Only the settings the computation depends on are kept.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>Vocabulary size (<c>vocab_size</c>).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Model width d (<c>hidden_size</c>).</summary>
    public required int HiddenSize { get; init; }

    /// <summary>MLP width (<c>intermediate_size</c>).</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Number of decoder layers (<c>num_hidden_layers</c>).</summary>
    public required int Layers { get; init; }

    /// <summary>Query heads (<c>num_attention_heads</c>).</summary>
    public required int Heads { get; init; }

    /// <summary>Key/value heads for grouped-query attention (<c>num_key_value_heads</c>; equal to <see cref="Heads"/> when absent).</summary>
    public required int KeyValueHeads { get; init; }

    /// <summary>RoPE base (<c>rope_theta</c>, default 10000).</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>RMSNorm epsilon (<c>rms_norm_eps</c>, default 1e-6).</summary>
    public double RmsNormEpsilon { get; init; } = 1e-6;

    /// <summary>Longest sequence (<c>max_position_embeddings</c>, default 2048).</summary>
    public int MaxPositions { get; init; } = 2048;

    /// <summary>Whether the LM head reuses the embedding table (<c>tie_word_embeddings</c>).</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Width of one head: <c>HiddenSize / Heads</c>.</summary>
    public int HeadDimension => HiddenSize / Heads;

    /// <summary>Parses a Hugging Face LLaMA <c>config.json</c> and validates it.</summary>
    /// <param name="json">The file's text.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="FormatException">A key is missing or has a wrong type or value.</exception>
    public static LlamaConfig FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        using JsonDocument doc = ParseObject(json, "LLaMA config.json");
        JsonElement root = doc.RootElement;
        if (root.TryGetProperty("hidden_act", out JsonElement act) && act.GetString() is string a && a != "silu")
        {
            throw new FormatException($"LLaMA config.json: hidden_act '{a}' is not supported (only 'silu').");
        }

        int heads = Int(root, "num_attention_heads");
        var config = new LlamaConfig
        {
            VocabSize = Int(root, "vocab_size"),
            HiddenSize = Int(root, "hidden_size"),
            IntermediateSize = Int(root, "intermediate_size"),
            Layers = Int(root, "num_hidden_layers"),
            Heads = heads,
            KeyValueHeads = root.TryGetProperty("num_key_value_heads", out JsonElement kv) && kv.ValueKind == JsonValueKind.Number ? kv.GetInt32() : heads,
            RopeTheta = Double(root, "rope_theta", 10000),
            RmsNormEpsilon = Double(root, "rms_norm_eps", 1e-6),
            MaxPositions = root.TryGetProperty("max_position_embeddings", out JsonElement mp) ? mp.GetInt32() : 2048,
            TieWordEmbeddings = root.TryGetProperty("tie_word_embeddings", out JsonElement tie) && tie.ValueKind == JsonValueKind.True,
        };
        config.Validate();
        return config;
    }

    /// <summary>Checks the configuration is consistent.</summary>
    /// <exception cref="FormatException">It is not.</exception>
    public void Validate()
    {
        if (VocabSize < 1 || HiddenSize < 2 || IntermediateSize < 1 || Layers < 1 || Heads < 1 || KeyValueHeads < 1 || MaxPositions < 1)
        {
            throw new FormatException($"LLaMA config: sizes must be positive ({this}).");
        }

        if (HiddenSize % Heads != 0 || HeadDimension % 2 != 0)
        {
            throw new FormatException($"LLaMA config: hidden_size {HiddenSize} must split into {Heads} heads of even width.");
        }

        if (Heads % KeyValueHeads != 0)
        {
            throw new FormatException($"LLaMA config: num_attention_heads {Heads} is not a multiple of num_key_value_heads {KeyValueHeads}.");
        }

        if (!(RopeTheta > 1) || !(RmsNormEpsilon >= 0))
        {
            throw new FormatException($"LLaMA config: rope_theta {RopeTheta} / rms_norm_eps {RmsNormEpsilon} out of range.");
        }
    }

    internal static JsonDocument ParseObject(string json, string what)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{what} is not valid JSON: {ex.Message}", ex);
        }

        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new FormatException($"{what} must be a JSON object.");
        }

        return doc;
    }

    internal static int Int(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out JsonElement e))
        {
            throw new FormatException($"config.json: missing key '{key}'.");
        }

        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int v))
        {
            throw new FormatException($"config.json: '{key}' must be an integer, got {e}.");
        }

        return v;
    }

    internal static double Double(JsonElement root, string key, double fallback)
    {
        if (!root.TryGetProperty(key, out JsonElement e) || e.ValueKind == JsonValueKind.Null)
        {
            return fallback;
        }

        return e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw new FormatException($"config.json: '{key}' must be a number, got {e}.");
    }
}
