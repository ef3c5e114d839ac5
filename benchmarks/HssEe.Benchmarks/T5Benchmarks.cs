using BenchmarkDotNet.Attributes;
using HssEe.Ee;
using HssEe.Models;
using HssEe.Models.Engine;
using HssEe.Models.IO;
using HssEe.Models.T5;
using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Runtime;
using HssEe.Sharing;

namespace HssEe.Benchmarks;

/// <summary>
/// T5-small (d_model 512, d_kv 64, 8 heads, d_ff 2048, 6 encoder and 6 decoder layers, vocabulary 32128,
/// ReLU feed-forward, tied head, 32 buckets up to distance 128) with random weights, in the three modes.
/// One operation is one encoder pass over 32 tokens (with the cross-attention keys and values of every
/// decoder layer) followed by the first decoder step (the start token), returning the plain logits:
/// <list type="bullet">
/// <item>Plain and EE: <see cref="T5Session.EncodeAsync"/> and <see cref="T5Session.NextLogitsAsync"/> on the
/// float engine (EE on the rewritten weights with an orthogonal hidden transform; the client encrypts the
/// tokens and decrypts the logits), so EE over Plain is the EE overhead.</item>
/// <item>HSS-EE: the same two steps as <see cref="T5Session"/> runs them (the client encrypts, embeds and
/// splits the tokens, both servers run the online phase in one process and keep the shared encoder output
/// and caches, the client reconstructs and decrypts the logits), but on the internal model with the FSS keys
/// of both steps dealt before each iteration (single use, not timed): the session deals inside each call.</item>
/// </list>
/// Online bytes, rounds, key bytes and key-generation time of each step are printed at setup (<c>COST</c> lines).
/// The encoder's keys are about 2.7 GB per server at 32 tokens (mostly the truncations after every linear layer);
/// <see cref="DealtKeys"/> keeps them in 16 MiB chunks.
/// </summary>
[Config(typeof(Config))]
public class T5Benchmarks
{
    private const int FractionalBits = 12;
    private const int InputTokens = 32;

    private T5Config _config = null!;
    private int[] _tokens = null!;
    private EeKey? _key;
    private T5Session? _session;
    private T5Model _encrypted = null!;
    private HssEeRuntime? _runtime;
    private Plan? _encoderPlan;
    private Plan? _decoderPlan;
    private DealtKeys? _encoderKeys;
    private DealtKeys? _decoderKeys;
    private T5DecoderCache<SecretTensor>? _cacheA;
    private T5DecoderCache<SecretTensor>? _cacheB;

    /// <summary>Model and input.</summary>
    [Params("T5-small S=32")]
    public string Shape { get; set; } = "T5-small S=32";

    /// <summary>Execution mode.</summary>
    [Params("Plain", "EE", "HSS-EE")]
    public string Mode { get; set; } = "Plain";

    /// <summary>Builds the model, the rewritten model and the session or runtime; for HSS-EE runs once and prints the costs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _config = new T5Config
        {
            VocabSize = 32128,
            ModelDimension = 512,
            KeyValueDimension = 64,
            Heads = 8,
            FeedForwardDimension = 2048,
            EncoderLayers = 6,
            DecoderLayers = 6,
            RelativeAttentionBuckets = 32,
            RelativeAttentionMaxDistance = 128,
            LayerNormEpsilon = 1e-6,
            FeedForward = T5FeedForwardKind.Relu,
            TieWordEmbeddings = true,
            DecoderStartTokenId = 0,
            EosTokenId = 1,
        };
        var random = new Random(13);
        _tokens = new int[InputTokens];
        for (int i = 0; i < _tokens.Length; i++)
        {
            _tokens[i] = random.Next(2, _config.VocabSize);
        }

        var model = T5Model.FromWeights(_config, RandomT5Weights.Create(_config, 9));
        if (Mode == "Plain")
        {
            _session = T5Session.CreatePlain(model);
            return;
        }

        _key = EeKey.Create(T5Model.CreateEeKeySpec(_config, EeTransformKind.Orthogonal));
        _encrypted = model.Encrypt(_key);
        if (Mode == "EE")
        {
            _session = T5Session.CreateEe(_encrypted, _key);
            return;
        }

        _runtime = new HssEeRuntime(FractionalBits);
        HssEeRuntime planner = _runtime;
        _encoderPlan = planner.BuildPlan(new TensorShape(InputTokens, _config.ModelDimension), async (e, x) =>
        {
            SecretTensor encoded = await _encrypted.EncodeAsync(e, x).ConfigureAwait(false);
            _ = await _encrypted.StartDecoderAsync(e, encoded).ConfigureAwait(false);
            return encoded;
        });
        _decoderPlan = planner.BuildPlan(new TensorShape(1, _config.ModelDimension), (e, x) => _encrypted.DecodeAsync(e, x, SymbolicCache(e)));
        IterationSetup();
        (_, InferenceCost encoder, InferenceCost decoder) = RunHss().GetAwaiter().GetResult();
        Print("encoder (32 tokens)", encoder);
        Print("decoder step 1", decoder);
        Print("total", encoder + decoder);
    }

    private void Print(string step, InferenceCost cost) =>
        Console.WriteLine($"COST {Shape} HSS-EE {step}: online {cost.OnlineBytes} B ({cost.OnlineBytes / 1048576.0:F2} MiB), rounds {cost.Rounds}, key bytes {cost.KeyBytes} ({cost.KeyBytes / 1048576.0:F1} MiB), keygen {cost.KeyGeneration.TotalMilliseconds:F0} ms, online time {cost.Elapsed.TotalMilliseconds:F1} ms");

    /// <summary>The decoder cache the first step sees while planning: cross-attention keys and values of 32 positions, no self-attention history.</summary>
    private T5DecoderCache<SecretTensor> SymbolicCache(HssEngine e)
    {
        int h = _config.Heads, dkv = _config.KeyValueDimension;
        var cache = new T5DecoderCache<SecretTensor>(_config.DecoderLayers, InputTokens);
        for (int i = 0; i < _config.DecoderLayers; i++)
        {
            cache.CrossK[i] = e.Symbolic(new TensorShape(h, dkv, InputTokens));
            cache.CrossV[i] = e.Symbolic(new TensorShape(h, InputTokens, dkv));
        }

        return cache;
    }

    /// <summary>Deals fresh keys for both HSS-EE steps before each iteration (not timed).</summary>
    [IterationSetup]
    public void IterationSetup()
    {
        if (Mode == "HSS-EE" && _runtime is not null)
        {
            _encoderKeys = null;
            _decoderKeys = null;
            _cacheA = null;
            _cacheB = null;
            GC.Collect();
            _encoderKeys = DealtKeys.Deal(_encoderPlan!);
            _decoderKeys = DealtKeys.Deal(_decoderPlan!);
        }
    }

    /// <summary>The client's side of a step: encrypts the tokens, embeds them with the encrypted table, encodes and splits.</summary>
    private (Share A, Share B) Split(int[] tokens)
    {
        int[] ids = (int[])tokens.Clone();
        _key!.EncryptTokens("vocab", ids, ids);
        FloatTensor x = _encrypted.Embed(ids);
        return SecretSharing.Split(x.Data, x.Shape, new FixedPointFormat(FractionalBits));
    }

    /// <summary>Both HSS-EE steps as <see cref="T5Session"/> runs them, on keys dealt beforehand.</summary>
    private async Task<(float Logit, InferenceCost Encoder, InferenceCost Decoder)> RunHss()
    {
        (Share a, Share b) = Split(_tokens);
        (Share ea, Share eb, InferenceCost encoderCost) = await _runtime!.RunAsync(
            _encoderKeys!,
            a,
            b,
            async (party, e, input) =>
            {
                SecretTensor encoded = await _encrypted.EncodeAsync(e, input).ConfigureAwait(false);
                T5DecoderCache<SecretTensor> cache = await _encrypted.StartDecoderAsync(e, encoded).ConfigureAwait(false);
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
            CancellationToken.None).ConfigureAwait(false);
        a.Dispose();
        b.Dispose();

        (a, b) = Split([_config.DecoderStartTokenId]);
        T5DecoderCache<SecretTensor> cacheA = _cacheA!, cacheB = _cacheB!;
        (Share ya, Share yb, InferenceCost decoderCost) = await _runtime.RunAsync(
            _decoderKeys!,
            a,
            b,
            (party, e, input) => _encrypted.DecodeAsync(e, input, party == Party.A ? cacheA : cacheB),
            CancellationToken.None).ConfigureAwait(false);
        float[] logits = SecretSharing.ReconstructToSingle(ya, yb);
        _key!.DecryptLogits("vocab", logits, logits);
        a.Dispose();
        b.Dispose();
        ya.Dispose();
        yb.Dispose();
        ea.Dispose();
        eb.Dispose();
        return (logits[0], encoderCost, decoderCost);
    }

    /// <summary>One encoder pass over 32 tokens and the first decoder step.</summary>
    /// <returns>A logit (keeps the work alive).</returns>
    [Benchmark]
    public async Task<float> EncodeAndFirstStep()
    {
        if (_runtime is not null)
        {
            (float logit, _, _) = await RunHss().ConfigureAwait(false);
            return logit;
        }

        await _session!.EncodeAsync(_tokens).ConfigureAwait(false);
        float[] logits = await _session.NextLogitsAsync(new[] { _config.DecoderStartTokenId }).ConfigureAwait(false);
        return logits[0];
    }

    /// <summary>Releases the session or runtime and the key.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _session?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _session = null;
        _runtime?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _runtime = null;
        _key?.Dispose();
        _key = null;
    }
}

/// <summary>
/// Random T5 weights with Hugging Face names and Hugging Face's initialisation scales (<c>T5PreTrainedModel._init_weights</c>):
/// embedding N(0, 1), q N(0, 1 / (d_model d_kv)), k and v N(0, 1 / d_model), o N(0, 1 / (heads d_kv)), wi N(0, 1 / d_model),
/// wo N(0, 1 / d_ff), relative-position bias N(0, 1 / d_model); norm gains 1 + 0.1 N(0, 1) so that folding them matters.
/// </summary>
internal static class RandomT5Weights
{
    public static InMemoryWeights Create(T5Config c, int seed)
    {
        var random = new Random(seed);
        var w = new InMemoryWeights();
        void Add(string name, int rows, int cols, double std, double mean = 0)
        {
            var data = new float[rows * cols];
            for (int i = 0; i < data.Length; i++)
            {
                double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
                data[i] = (float)(mean + (std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2)));
            }

            w.Add(name, cols == 1 ? [rows] : [rows, cols], data);
        }

        int d = c.ModelDimension, inner = c.InnerDimension, ff = c.FeedForwardDimension;
        void Attention(string p)
        {
            Add(p + "q.weight", inner, d, 1 / Math.Sqrt(d * (double)c.KeyValueDimension));
            Add(p + "k.weight", inner, d, 1 / Math.Sqrt(d));
            Add(p + "v.weight", inner, d, 1 / Math.Sqrt(d));
            Add(p + "o.weight", d, inner, 1 / Math.Sqrt(inner));
        }

        void FeedForward(string p)
        {
            if (c.FeedForward == T5FeedForwardKind.Relu)
            {
                Add(p + "wi.weight", ff, d, 1 / Math.Sqrt(d));
            }
            else
            {
                Add(p + "wi_0.weight", ff, d, 1 / Math.Sqrt(d));
                Add(p + "wi_1.weight", ff, d, 1 / Math.Sqrt(d));
            }

            Add(p + "wo.weight", d, ff, 1 / Math.Sqrt(ff));
        }

        Add("shared.weight", c.VocabSize, d, 1);
        for (int i = 0; i < c.EncoderLayers; i++)
        {
            string p = $"encoder.block.{i}.";
            Attention(p + "layer.0.SelfAttention.");
            if (i == 0)
            {
                Add(p + "layer.0.SelfAttention.relative_attention_bias.weight", c.RelativeAttentionBuckets, c.Heads, 1 / Math.Sqrt(d));
            }

            Add(p + "layer.0.layer_norm.weight", d, 1, 0.1, 1);
            FeedForward(p + "layer.1.DenseReluDense.");
            Add(p + "layer.1.layer_norm.weight", d, 1, 0.1, 1);
        }

        Add("encoder.final_layer_norm.weight", d, 1, 0.1, 1);
        for (int i = 0; i < c.DecoderLayers; i++)
        {
            string p = $"decoder.block.{i}.";
            Attention(p + "layer.0.SelfAttention.");
            if (i == 0)
            {
                Add(p + "layer.0.SelfAttention.relative_attention_bias.weight", c.RelativeAttentionBuckets, c.Heads, 1 / Math.Sqrt(d));
            }

            Add(p + "layer.0.layer_norm.weight", d, 1, 0.1, 1);
            Attention(p + "layer.1.EncDecAttention.");
            Add(p + "layer.1.layer_norm.weight", d, 1, 0.1, 1);
            FeedForward(p + "layer.2.DenseReluDense.");
            Add(p + "layer.2.layer_norm.weight", d, 1, 0.1, 1);
        }

        Add("decoder.final_layer_norm.weight", d, 1, 0.1, 1);
        if (!c.TieWordEmbeddings)
        {
            Add("lm_head.weight", c.VocabSize, d, 1 / Math.Sqrt(d));
        }

        return w;
    }
}
