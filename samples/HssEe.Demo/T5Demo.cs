using System.Diagnostics;
using System.Reflection;
using System.Text;
using HssEe.Ee;
using HssEe.Models;
using HssEe.Models.IO;
using HssEe.Models.T5;

namespace HssEe.Demo;

/// <summary>
/// <c>--model t5</c>: the small T5 v1.1 (gated GeLU, 2 + 2 layers, d = 64, random weights) of the PyTorch
/// fixture in tests/HssEe.Models.Tests/Fixtures/t5_v11, embedded here: one encoder pass over 10 input
/// tokens, then greedy decoding with the KV cache, plaintext against the chosen mode.
/// </summary>
internal static class T5Demo
{
    public static async Task<int> RunAsync(DemoOptions options)
    {
        var asm = Assembly.GetExecutingAssembly();
        T5Config config = T5Config.FromJson(Encoding.UTF8.GetString(Read(asm, "T5/config.json")));
        using SafeTensorsFile weights = SafeTensorsFile.FromBytes(Read(asm, "T5/model.safetensors"), "T5/model.safetensors");
        var model = T5Model.FromWeights(config, weights);
        int[] input = [13, 7, 42, 5, 31, 2, 19, 60, 11, 3];
        int count = Math.Min(options.Tokens, 24);
        Console.WriteLine($"HssEe demo: T5 v1.1 ({config.EncoderLayers}+{config.DecoderLayers} layers, d={config.ModelDimension}, random weights) on {input.Length} input tokens, {count} greedy tokens, mode {options.Mode}");

        using EeKey key = EeKey.Create(T5Model.CreateEeKeySpec(config));
        T5Model encrypted = model.Encrypt(key);
        await using T5Session plainSession = T5Session.CreatePlain(model);
        int[] plain = await T5Session.GenerateAsync(plainSession, input, count, stopAtEos: false);

        await using T5Session session = options.Mode switch
        {
            ExecutionMode.Plain => T5Session.CreatePlain(model),
            ExecutionMode.Ee => T5Session.CreateEe(encrypted, key),
            _ => T5Session.CreateHssEe(encrypted, key),
        };
        var sw = Stopwatch.StartNew();
        Console.Write($"  {options.Mode}: ");
        int[] priv = await T5Session.GenerateAsync(session, input, count, stopAtEos: false, onToken: t => Console.Write($"{t} "));
        Console.WriteLine();
        Console.WriteLine($"  plaintext ids : {string.Join(' ', plain)}");
        Console.WriteLine($"  {options.Mode,-13} : {string.Join(' ', priv)}");
        bool match = plain.SequenceEqual(priv);
        Console.WriteLine($"  match         : {(match ? "yes, identical" : "NO")}");
        Console.WriteLine($"  wall time     : {sw.Elapsed.TotalMilliseconds / count:F1} ms/token; total cost {session.TotalCost}");
        return match ? 0 : 1;
    }

    private static byte[] Read(Assembly asm, string name)
    {
        using Stream s = asm.GetManifestResourceStream(name) ?? throw new FileNotFoundException($"Embedded resource {name} is missing.");
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }
}
