using BenchmarkDotNet.Attributes;
using HssEe.Ee;
using HssEe.Models;
using HssEe.Models.Engine;
using HssEe.Models.IO;
using HssEe.Models.Llama;
using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Benchmarks;

/// <summary>
/// One LLaMA decoder layer (RMSNorm, q/k/v/o with RoPE and causal grouped-query attention, SwiGLU MLP,
/// residuals; no embedding or head) in the three modes, with random weights:
/// <list type="bullet">
/// <item><c>block d=512 T=32</c>: the LLaMA-style block (8 heads, ff = 1376), prefill of 32 tokens.</item>
/// <item><c>7B layer prefill T=128</c> and <c>7B layer decode @128</c>: LLaMA-2-7B shapes (d = 4096, 32 heads, ff = 11008),
/// prefill of 128 tokens and one decode step against a KV cache of 128 positions.</item>
/// </list>
/// EE uses the same float engine on the rewritten weights, so EE over Plain is the EE overhead. HSS-EE
/// times the online phase of both servers in one process; keys are dealt before each iteration
/// (single use, not timed). Online bytes, rounds and key bytes are printed at setup (<c>COST</c> lines).
/// HSS-EE of the 7B prefill is left out: by the per-element key sizes in RESULTS.md its keys come to roughly 5 GB per
/// run (1.4 M SiLU elements at about 1 KB, 5 M truncated projection outputs at about 250 B, 0.5 M softmax scores at
/// about 3.9 KB), dealt afresh for every iteration. Not measured.
/// </summary>
[Config(typeof(Config))]
public class LlamaBenchmarks
{
    private LlamaModel _model = null!;
    private LlamaModel _encrypted = null!;
    private EeKey? _key;
    private int _tokens;
    private int _cached;
    private FloatTensor _input = null!;
    private KvCache<FloatTensor> _floatCache = null!;
    private HssEeRuntime? _runtime;
    private DealtKeys? _keys;
    private Share? _inA;
    private Share? _inB;
    private SecretTensor[]? _cacheA;
    private SecretTensor[]? _cacheB;

    /// <summary>Layer shape.</summary>
    [Params("block d=512 T=32", "7B layer prefill T=128", "7B layer decode @128")]
    public string Shape { get; set; } = "block d=512 T=32";

    /// <summary>Execution mode.</summary>
    [Params("Plain", "EE", "HSS-EE")]
    public string Mode { get; set; } = "Plain";

    /// <summary>Builds the layer, the rewritten layer and, for HSS-EE, the runtime; prints the costs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        bool big = Shape.StartsWith("7B", StringComparison.Ordinal);
        var config = new LlamaConfig
        {
            VocabSize = 32,
            HiddenSize = big ? 4096 : 512,
            IntermediateSize = big ? 11008 : 1376,
            Layers = 1,
            Heads = big ? 32 : 8,
            KeyValueHeads = big ? 32 : 8,
            RmsNormEpsilon = 1e-5,
            MaxPositions = 4096,
        };
        (_tokens, _cached) = Shape switch
        {
            "block d=512 T=32" => (32, 0),
            "7B layer prefill T=128" => (128, 0),
            _ => (1, 128),
        };
        _model = LlamaModel.FromWeights(config, RandomLlamaWeights.Create(config, 7));
        if (Mode == "HSS-EE" && Shape == "7B layer prefill T=128")
        {
            Console.WriteLine("COST 7B layer prefill T=128 HSS-EE: not run (see the class remarks)");
            return;
        }

        if (Mode != "Plain")
        {
            _key = EeKey.Create(LlamaModel.CreateEeKeySpec(config, big ? EeTransformKind.Permutation : EeTransformKind.Orthogonal));
            _encrypted = _model.Encrypt(_key);
        }

        var random = new Random(11);
        var x = new float[_tokens * config.HiddenSize];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)((random.NextDouble() * 2) - 1);
        }

        _input = new FloatTensor(x, new TensorShape(_tokens, config.HiddenSize));
        int kvWidth = config.KeyValueHeads * config.HeadDimension;
        var kv = new float[Math.Max(1, _cached) * kvWidth];
        for (int i = 0; i < kv.Length; i++)
        {
            kv[i] = (float)((random.NextDouble() * 2) - 1);
        }

        ResetFloatCache(kv, kvWidth);
        if (Mode == "HSS-EE")
        {
            _runtime = new HssEeRuntime(12);
            if (_cached > 0)
            {
                (Share a, Share b) = SecretSharing.Split(kv, new TensorShape(_cached, kvWidth), new FixedPointFormat(12));
                (Share a2, Share b2) = SecretSharing.Split(kv, new TensorShape(_cached, kvWidth), new FixedPointFormat(12));
                _cacheA = [new SecretTensor(a.Shape, 12, a), new SecretTensor(a2.Shape, 12, a2)];
                _cacheB = [new SecretTensor(b.Shape, 12, b), new SecretTensor(b2.Shape, 12, b2)];
            }

            IterationSetupHss();
            var (_, _, cost) = RunHss().GetAwaiter().GetResult();
            Console.WriteLine($"COST {Shape} HSS-EE: online {cost.OnlineBytes} B ({cost.OnlineBytes / 1048576.0:F2} MiB), rounds {cost.Rounds}, key bytes {cost.KeyBytes} ({cost.KeyBytes / 1048576.0:F1} MiB), keygen {cost.KeyGeneration.TotalMilliseconds:F0} ms, online time {cost.Elapsed.TotalMilliseconds:F1} ms");
        }
    }

    private void ResetFloatCache(float[] kv, int kvWidth)
    {
        _floatCache = new KvCache<FloatTensor>(1) { Length = _cached };
        if (_cached > 0)
        {
            _floatCache.K[0] = new FloatTensor(kv, new TensorShape(_cached, kvWidth));
            _floatCache.V[0] = new FloatTensor(kv, new TensorShape(_cached, kvWidth));
        }
    }

    /// <summary>Deals fresh keys and shares before each HSS-EE iteration (not timed).</summary>
    [IterationSetup]
    public void IterationSetup()
    {
        if (Mode == "HSS-EE" && _runtime is not null)
        {
            IterationSetupHss();
        }
    }

    private void IterationSetupHss()
    {
        _keys = null;
        GC.Collect();
        int cached = _cached;
        Plan plan = _runtime!.BuildPlan(_input.Shape, (e, x) => _encrypted.ForwardAsync(e, x, SymbolicCache(e, cached), stopAfterLayer: 0));
        _keys = DealtKeys.Deal(plan);
        (_inA, _inB) = SecretSharing.Split(_input.Data, _input.Shape, new FixedPointFormat(12));
    }

    private KvCache<SecretTensor> SymbolicCache(HssEngine e, int cached)
    {
        var cache = new KvCache<SecretTensor>(1) { Length = cached };
        if (cached > 0)
        {
            int w = _model.Config.KeyValueHeads * _model.Config.HeadDimension;
            cache.K[0] = e.Symbolic(new TensorShape(cached, w));
            cache.V[0] = e.Symbolic(new TensorShape(cached, w));
        }

        return cache;
    }

    private KvCache<SecretTensor> ShareCache(SecretTensor[]? mine)
    {
        var cache = new KvCache<SecretTensor>(1) { Length = _cached };
        if (mine is not null)
        {
            cache.K[0] = mine[0];
            cache.V[0] = mine[1];
        }

        return cache;
    }

    private Task<(Share A, Share B, InferenceCost Cost)> RunHss() =>
        _runtime!.RunAsync(_keys!, _inA!, _inB!, (party, e, x) => _encrypted.ForwardAsync(e, x, ShareCache(party == Party.A ? _cacheA : _cacheB), stopAfterLayer: 0), CancellationToken.None);

    /// <summary>One decoder layer.</summary>
    /// <returns>An output element (keeps the work alive).</returns>
    [Benchmark]
    public async Task<float> Layer()
    {
        switch (Mode)
        {
            case "HSS-EE":
                if (_runtime is null)
                {
                    return 0;
                }

                var (a, _, _) = await RunHss().ConfigureAwait(false);
                return a.Value.Span[0];
            default:
                LlamaModel m = Mode == "EE" ? _encrypted : _model;
                _floatCache.Length = _cached;
                var cache = new KvCache<FloatTensor>(1) { Length = _cached };
                cache.K[0] = _floatCache.K[0];
                cache.V[0] = _floatCache.V[0];
                FloatTensor y = await m.ForwardAsync(new PlainEngine(), _input, cache, stopAfterLayer: 0).ConfigureAwait(false);
                return y.Data[0];
        }
    }

    /// <summary>Releases the runtime and the key.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _runtime?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _key?.Dispose();
    }
}

/// <summary>Random LLaMA weights with Hugging Face names (N(0, 1/fan_in) linears, gains near 1).</summary>
internal static class RandomLlamaWeights
{
    public static InMemoryWeights Create(LlamaConfig c, int seed)
    {
        var random = new Random(seed);
        var w = new InMemoryWeights();
        void Add(string name, int rows, int cols, double scale, double mean = 0)
        {
            var data = new float[rows * cols];
            double a = scale * Math.Sqrt(3);
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = (float)(mean + (a * ((2 * random.NextDouble()) - 1)));
            }

            w.Add(name, cols == 1 ? [rows] : [rows, cols], data);
        }

        int d = c.HiddenSize, hd = c.HeadDimension;
        Add("model.embed_tokens.weight", c.VocabSize, d, 1);
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"model.layers.{i}.";
            Add(p + "input_layernorm.weight", d, 1, 0.1, 1);
            Add(p + "post_attention_layernorm.weight", d, 1, 0.1, 1);
            Add(p + "self_attn.q_proj.weight", c.Heads * hd, d, 1 / Math.Sqrt(d));
            Add(p + "self_attn.k_proj.weight", c.KeyValueHeads * hd, d, 1 / Math.Sqrt(d));
            Add(p + "self_attn.v_proj.weight", c.KeyValueHeads * hd, d, 1 / Math.Sqrt(d));
            Add(p + "self_attn.o_proj.weight", d, c.Heads * hd, 1 / Math.Sqrt(d));
            Add(p + "mlp.gate_proj.weight", c.IntermediateSize, d, 1 / Math.Sqrt(d));
            Add(p + "mlp.up_proj.weight", c.IntermediateSize, d, 1 / Math.Sqrt(d));
            Add(p + "mlp.down_proj.weight", d, c.IntermediateSize, 1 / Math.Sqrt(c.IntermediateSize));
        }

        Add("model.norm.weight", d, 1, 0.1, 1);
        Add("lm_head.weight", c.VocabSize, d, 1 / Math.Sqrt(d));
        return w;
    }
}
