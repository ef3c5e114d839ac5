// HssEe demo: private text generation, client -> two servers -> client.
//
// The embedded default model is a tiny LLaMA-architecture character model (4 layers, d = 128,
// grouped-query attention, RoPE, SwiGLU) trained by tools/reference/train_char_llama.py on the
// King James Bible (Debian's bible-kjv-text). The demo
//   1. makes a fresh EE key on the client and has the model owner rewrite the weights with it;
//   2. generates the continuation of a prompt in plaintext (the reference);
//   3. deals the FSS keys of every step (the offline phase: fresh keys for each token);
//   4. generates the same continuation privately: for each token the client EE-encrypts and
//      secret-shares the embedding, the two servers run the whole model on shares (keeping the
//      shared KV cache), and the client reconstructs and decrypts the logits and picks the token;
//   5. prints both texts side by side with time per token, online bytes, rounds and key bytes.
// Other models: --model resnet | t5 (see --help).
using System.Diagnostics;
using HssEe.Demo;
using HssEe.Ee;
using HssEe.Models;
using HssEe.Models.Llama;

var options = DemoOptions.Parse(args);
if (options is null)
{
    DemoOptions.PrintUsage();
    return args.Contains("--help") || args.Contains("-h") ? 0 : 2;
}

return options.Model switch
{
    "llama" => await RunLlamaAsync(options),
    "resnet" => await ResNetDemo.RunAsync(options),
    "t5" => await T5Demo.RunAsync(options),
    _ => 2,
};

static async Task<int> RunLlamaAsync(DemoOptions options)
{
    var total = Stopwatch.StartNew();
    (LlamaModel model, CharVocabulary vocab) = EmbeddedModel.Load();
    LlamaConfig c = model.Config;
    Console.WriteLine($"HssEe demo: private generation with a LLaMA-architecture character model ({c.Layers} layers, d={c.HiddenSize}, {c.Heads} heads / {c.KeyValueHeads} kv heads, ff={c.IntermediateSize}, vocab {c.VocabSize})");
    Console.WriteLine($"prompt: \"{options.Prompt}\", {options.Tokens} tokens, greedy, mode {options.Mode}");
    int[] prompt = vocab.Encode(options.Prompt);
    const int TrainedContext = 128; // the embedded model's training window (Model/README.md)
    if (prompt.Length + options.Tokens > TrainedContext)
    {
        Console.Error.WriteLine($"The model was trained on {TrainedContext}-character windows: prompt ({prompt.Length}) + tokens ({options.Tokens}) must not exceed {TrainedContext}.");
        return 2;
    }

    // 1. Client key, owner's offline rewrite.
    var sw = Stopwatch.StartNew();
    using EeKey key = EeKey.Create(LlamaModel.CreateEeKeySpec(c));
    LlamaModel encrypted = model.Encrypt(key);
    Console.WriteLine($"[1/4] client: fresh EE key ({key.Spec.Count} boundaries); owner: weights rewritten in {sw.ElapsedMilliseconds} ms");

    // 2. Plaintext reference.
    sw.Restart();
    await using LlamaSession plainSession = LlamaSession.CreatePlain(model);
    int[] plain = await LlamaGenerator.GenerateAsync(plainSession, prompt, options.Tokens);
    Console.WriteLine($"[2/4] plaintext reference: {options.Tokens} tokens in {sw.ElapsedMilliseconds} ms");

    // 3-4. The chosen private mode.
    await using LlamaSession session = options.Mode switch
    {
        ExecutionMode.Plain => LlamaSession.CreatePlain(model),
        ExecutionMode.Ee => LlamaSession.CreateEe(encrypted, key),
        _ => LlamaSession.CreateHssEe(encrypted, key),
    };
    sw.Restart();
    session.PrepareKeys(prompt.Length, options.Tokens - 1, new SyncProgress(p =>
        Console.Write($"\r[3/4] client (dealer): keys for step {p.Done}/{p.Total}")));
    Console.WriteLine(options.Mode == ExecutionMode.HssEe
        ? $"\r[3/4] client (dealer): keys for {options.Tokens} steps dealt in {sw.ElapsedMilliseconds} ms                "
        : "[3/4] no keys needed in this mode");

    Console.Write($"[4/4] {Label(options.Mode)}: ");
    var perToken = new List<InferenceCost>();
    sw.Restart();
    int[] priv = await LlamaGenerator.GenerateAsync(session, prompt, options.Tokens, onToken: t =>
    {
        perToken.Add(session.LastCost);
        Console.Write(vocab.Printable(t));
    });
    double seconds = sw.Elapsed.TotalSeconds;
    Console.WriteLine();

    InferenceCost totalCost = session.TotalCost;
    InferenceCost decode = perToken.Skip(1).Aggregate(default(InferenceCost), (a, b) => a + b);
    int decodeSteps = Math.Max(1, perToken.Count - 1);
    Console.WriteLine();
    Console.WriteLine($"  prompt    : {vocab.Decode(prompt)}");
    Console.WriteLine($"  plaintext : {vocab.Decode(plain)}");
    Console.WriteLine($"  {Label(options.Mode),-10}: {vocab.Decode(priv)}");
    bool match = plain.SequenceEqual(priv);
    int agree = plain.Zip(priv).TakeWhile(p => p.First == p.Second).Count();
    Console.WriteLine($"  match     : {(match ? "yes, identical" : $"NO: first {agree} of {plain.Length} tokens agree")}");
    Console.WriteLine();
    Console.WriteLine($"  wall time : {seconds:F2} s for {priv.Length} tokens ({1000 * seconds / priv.Length:F1} ms/token incl. client work)");
    if (options.Mode == ExecutionMode.HssEe)
    {
        InferenceCost first = perToken[0];
        Console.WriteLine($"  prefill   : {prompt.Length} tokens: {first}");
        Console.WriteLine($"  per token : {decode.Elapsed.TotalMilliseconds / decodeSteps:F1} ms online, {HssEe.Runtime.CostReport.FormatBytes(decode.OnlineBytes / decodeSteps)} online, {decode.Rounds / decodeSteps} rounds, {HssEe.Runtime.CostReport.FormatBytes(decode.KeyBytes / decodeSteps)} keys");
        Console.WriteLine($"  total     : {totalCost}");
    }

    Console.WriteLine($"  done in {total.Elapsed.TotalSeconds:F1} s");
    return match ? 0 : 1;
}

static string Label(ExecutionMode mode) => mode switch
{
    ExecutionMode.Plain => "plain",
    ExecutionMode.Ee => "EE",
    _ => "HSS-EE",
};
