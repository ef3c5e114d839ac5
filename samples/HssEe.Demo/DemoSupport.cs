using System.Reflection;
using System.Text;
using System.Text.Json;
using HssEe.Models;
using HssEe.Models.IO;
using HssEe.Models.Llama;

namespace HssEe.Demo;

/// <summary>Command-line options of the demo.</summary>
internal sealed record DemoOptions(string Model, ExecutionMode Mode, int Tokens, string Prompt)
{
    public static DemoOptions? Parse(string[] args)
    {
        string model = "llama", prompt = "And it came to pass, ";
        ExecutionMode mode = ExecutionMode.HssEe;
        int tokens = 48;
        for (int i = 0; i < args.Length; i++)
        {
            string? value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--model" when value is "llama" or "resnet" or "t5":
                    model = value;
                    i++;
                    break;
                case "--mode" when value is not null:
                    ExecutionMode? m = value.ToLowerInvariant() switch
                    {
                        "plain" => ExecutionMode.Plain,
                        "ee" => ExecutionMode.Ee,
                        "hss-ee" or "hssee" => ExecutionMode.HssEe,
                        _ => null,
                    };
                    if (m is null)
                    {
                        return null;
                    }

                    mode = m.Value;
                    i++;
                    break;
                case "--tokens" when int.TryParse(value, out int n) && n is >= 1 and <= 120:
                    tokens = n;
                    i++;
                    break;
                case "--prompt" when !string.IsNullOrEmpty(value):
                    prompt = value;
                    i++;
                    break;
                default:
                    Console.Error.WriteLine($"unknown or invalid argument: {args[i]}");
                    return null;
            }
        }

        return new DemoOptions(model, mode, tokens, prompt);
    }

    public static void PrintUsage()
    {
        Console.WriteLine("usage: dotnet run --project samples/HssEe.Demo -c Release [-- options]");
        Console.WriteLine("  --model llama|resnet|t5   llama (default): private generation with the embedded character model;");
        Console.WriteLine("                            resnet: ResNet-18 classification of a random 64x64 image; t5: a small T5 with random weights");
        Console.WriteLine("  --mode plain|ee|hss-ee    mode compared against plaintext (default hss-ee)");
        Console.WriteLine("  --tokens N                tokens to generate (1..120, default 48; prompt + tokens <= 128 for the character model)");
        Console.WriteLine("  --prompt TEXT             prompt for the character model (default \"And it came to pass, \")");
    }
}

/// <summary>Character vocabulary of the embedded model (vocab.json: a JSON array of one-character strings).</summary>
internal sealed class CharVocabulary
{
    private readonly string[] _chars;
    private readonly Dictionary<string, int> _ids;

    public CharVocabulary(string[] chars)
    {
        _chars = chars;
        _ids = chars.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
    }

    public int Count => _chars.Length;

    public int[] Encode(string text)
    {
        var ids = new List<int>();
        foreach (Rune r in text.EnumerateRunes())
        {
            if (!_ids.TryGetValue(r.ToString(), out int id))
            {
                throw new ArgumentException($"The character '{r}' is not in the model's vocabulary of {Count} characters.", nameof(text));
            }

            ids.Add(id);
        }

        return [.. ids];
    }

    public string Decode(IEnumerable<int> ids) => string.Concat(ids.Select(Printable));

    public string Printable(int id) => _chars[id] switch
    {
        "\n" => " / ",
        string s => s,
    };
}

/// <summary>The character model embedded in the demo assembly (Model/ in this folder).</summary>
internal static class EmbeddedModel
{
    public static (LlamaModel Model, CharVocabulary Vocabulary) Load()
    {
        var asm = Assembly.GetExecutingAssembly();
        LlamaConfig config = LlamaConfig.FromJson(Encoding.UTF8.GetString(Read(asm, "config.json")));
        using SafeTensorsFile weights = SafeTensorsFile.FromBytes(Read(asm, "model.safetensors"));
        var model = LlamaModel.FromWeights(config, weights);
        string[] chars = JsonSerializer.Deserialize<string[]>(Read(asm, "vocab.json")) ?? throw new InvalidDataException("vocab.json is empty.");
        return chars.Length == config.VocabSize
            ? (model, new CharVocabulary(chars))
            : throw new InvalidDataException($"vocab.json has {chars.Length} characters, the model {config.VocabSize}.");
    }

    private static byte[] Read(Assembly asm, string name)
    {
        using Stream s = asm.GetManifestResourceStream("Model/" + name) ?? throw new FileNotFoundException($"Embedded resource Model/{name} is missing.");
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }
}

/// <summary>Reports progress on the caller's thread (Progress&lt;T&gt; posts to the thread pool, out of order with the console).</summary>
internal sealed class SyncProgress(Action<(int Done, int Total)> report) : IProgress<(int Done, int Total)>
{
    public void Report((int Done, int Total) value) => report(value);
}
