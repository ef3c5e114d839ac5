using BenchmarkDotNet.Attributes;
using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Runtime;
using HssEe.Sharing;

namespace HssEe.Benchmarks;

/// <summary>
/// Two-party gates on 2^18 elements, both servers in one process over the in-process channel
/// (the online phase only: a fresh dealer bundle is made before every iteration, outside the
/// timing, because keys are single-use). Online bytes, rounds and key bytes of each case are
/// printed at setup (lines starting with <c>COST</c>). 2^18 rather than 10^6 elements: at 10^6 a
/// ReLU bundle at n = 64 is 2 GB per party, and re-dealing it every iteration exhausts memory.
/// The cases marked (10^6) run the target size: ReLU at n = 16 and 32, and the table activations
/// (GeLU at n = 16, |x| &lt; 8; SiLU at n = 17, |x| &lt; 16; 2^9 cells unless m says otherwise), with the output
/// left at scale f + u for the next layer's truncation, or rescaled to f by a truncation step; and clipped
/// tables at n = 32, where two comparisons switch to the linear tails outside |x| &lt; 8 (GeLU) or 16 (SiLU).
/// The "quadratic" cases use a parabola per cell (degree 2) on 2^7 (GeLU) or 2^8 (SiLU) cells, as the models do;
/// their rescale compares the top 7 of the shifted-out bits (a depth-7 key). The models' clipped activations run at
/// n = f + 17 = 29 (their inputs leave a truncation whose input limit is 2^15), unrescaled: the gated product that
/// follows them truncates once for both; n = 32 and the rescaled n = 29 cases are kept for comparison.
/// </summary>
[Config(typeof(Config))]
public class GateBenchmarks
{
    private const int Elements = 1 << 18;
    private Plan _plan = null!;
    private Share _a = null!;
    private Share _b = null!;
    private readonly MemoryStream _keysA = new();
    private readonly MemoryStream _keysB = new();

    /// <summary>Gate and bit-width.</summary>
    [Params("Relu n=16 (10^6)", "Relu n=32 (10^6)", "GeLU table n=16 (10^6)", "GeLU table n=16 m=8 (10^6)", "GeLU table n=16 rescaled (10^6)", "SiLU table n=17 (10^6)", "SiLU table n=17 rescaled (10^6)", "GeLU table n=32 clipped (10^6)", "SiLU table n=32 clipped (10^6)", "GeLU quadratic n=16 m=7 rescaled (10^6)", "GeLU quadratic n=32 clipped m=7 (10^6)", "SiLU quadratic n=32 clipped m=8 (10^6)", "GeLU quadratic n=29 clipped m=7 (10^6)", "SiLU quadratic n=29 clipped m=8 (10^6)", "GeLU quadratic n=29 clipped m=7 rescaled (10^6)", "SiLU quadratic n=29 clipped m=8 rescaled (10^6)", "Relu n=16", "Relu n=32", "Relu n=64", "Sign n=32", "Truncate f=12 n=48", "Multiply", "GeLU spline", "Softmax 256x128", "LayerNorm 16x4096")]
    public string Case { get; set; } = "Relu n=32";

    /// <summary>Builds the plan and the input shares, and prints the costs once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var shape = Case switch
        {
            "Softmax 256x128" => new TensorShape(256, 128),
            "LayerNorm 16x4096" => new TensorShape(16, 4096),
            _ when Case.EndsWith("(10^6)", StringComparison.Ordinal) => new TensorShape(1_000_000),
            _ => new TensorShape(Elements),
        };
        var builder = new PlanBuilder(12);
        _plan = Case switch
        {
            "Relu n=16" or "Relu n=16 (10^6)" => builder.Relu(shape, 16).Build(),
            "Relu n=32" or "Relu n=32 (10^6)" => builder.Relu(shape, 32).Build(),
            "GeLU spline" => builder.Spline(shape, NonLinearFunctions.Gelu(), label: "gelu").Build(),
            "GeLU table n=16 (10^6)" => builder.TableActivation(shape, NonLinearFunctions.GeluReference, 16, rescale: false, label: "gelu").Build(),
            "GeLU table n=16 rescaled (10^6)" => builder.TableActivation(shape, NonLinearFunctions.GeluReference, 16, label: "gelu").Build(),
            "GeLU table n=16 m=8 (10^6)" => builder.TableActivation(shape, NonLinearFunctions.GeluReference, 16, tableBits: 8, rescale: false, label: "gelu").Build(),
            "SiLU table n=17 rescaled (10^6)" => builder.TableActivation(shape, NonLinearFunctions.SiluReference, 17, label: "silu").Build(),
            "GeLU table n=32 clipped (10^6)" => builder.TableActivation(shape, NonLinearFunctions.GeluReference, 32, rescale: false, label: "gelu", range: 8).Build(),
            "SiLU table n=32 clipped (10^6)" => builder.TableActivation(shape, NonLinearFunctions.SiluReference, 32, tableBits: 10, rescale: false, label: "silu", range: 16).Build(),
            "GeLU quadratic n=16 m=7 rescaled (10^6)" => builder.TableActivation(shape, NonLinearFunctions.GeluReference, 16, tableBits: 7, label: "gelu", degree: 2).Build(),
            "GeLU quadratic n=32 clipped m=7 (10^6)" => builder.TableActivation(shape, NonLinearFunctions.GeluReference, 32, tableBits: 7, rescale: false, label: "gelu", range: 8, degree: 2).Build(),
            "SiLU quadratic n=32 clipped m=8 (10^6)" => builder.TableActivation(shape, NonLinearFunctions.SiluReference, 32, tableBits: 8, rescale: false, label: "silu", range: 16, degree: 2).Build(),
            "GeLU quadratic n=29 clipped m=7 (10^6)" => builder.TableActivation(shape, NonLinearFunctions.GeluReference, 29, tableBits: 7, rescale: false, label: "gelu", range: 8, degree: 2).Build(),
            "SiLU quadratic n=29 clipped m=8 (10^6)" => builder.TableActivation(shape, NonLinearFunctions.SiluReference, 29, tableBits: 8, rescale: false, label: "silu", range: 16, degree: 2).Build(),
            "GeLU quadratic n=29 clipped m=7 rescaled (10^6)" => builder.TableActivation(shape, NonLinearFunctions.GeluReference, 29, tableBits: 7, label: "gelu", range: 8, degree: 2).Build(),
            "SiLU quadratic n=29 clipped m=8 rescaled (10^6)" => builder.TableActivation(shape, NonLinearFunctions.SiluReference, 29, tableBits: 8, label: "silu", range: 16, degree: 2).Build(),
            "SiLU table n=17 (10^6)" => builder.TableActivation(shape, NonLinearFunctions.SiluReference, 17, rescale: false, label: "silu").Build(),
            "Softmax 256x128" => builder.Softmax(shape).Build(),
            "LayerNorm 16x4096" => builder.LayerNorm(shape).Build(),
            "Relu n=64" => builder.Relu(shape, 64).Build(),
            "Sign n=32" => builder.Sign(shape, 32).Build(),
            "Truncate f=12 n=48" => builder.Truncate(shape, 12, 48).Build(),
            "Multiply" => builder.Multiply(shape).Build(),
            _ => throw new InvalidOperationException(Case),
        };
        var values = new float[shape.ElementCount];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Case.Contains("table", StringComparison.Ordinal) || Case.Contains("quadratic", StringComparison.Ordinal) ? ((i % 1501) - 750) / 100f : ((i % 2001) - 1000) / 100f;
        }

        (_a, _b) = SecretSharing.Split(values, shape, new FixedPointFormat(_plan.Steps[0].Kind == OperationKind.Truncate && Case.StartsWith("Truncate", StringComparison.Ordinal) ? 24 : 12));
        Deal();
        var cost = Run().GetAwaiter().GetResult();
        int count = shape.ElementCount;
        Console.WriteLine($"COST {Case}: online {cost.Online} B ({cost.Online / (double)count:F1} B/element, both directions), rounds {cost.Rounds}, key bytes A {_dealt.KeyBytesA} + B {_dealt.KeyBytesB} ({(_dealt.KeyBytesA + _dealt.KeyBytesB) / (double)count:F1} B/element), keygen {_dealt.Elapsed.TotalMilliseconds:F0} ms");
    }

    private DealerReport _dealt;

    /// <summary>Deals fresh key bundles (not timed).</summary>
    [IterationSetup]
    public void Deal()
    {
        // The streams are reused (their capacity stays mapped), so the timed phase does not depend on how the
        // GC returned the previous iteration's 10^8-byte bundles to the OS.
        _keysA.SetLength(0);
        _keysB.SetLength(0);
        GC.Collect();
        _dealt = Dealer.Generate(_plan, _keysA, _keysB);
        _keysA.Position = 0;
        _keysB.Position = 0;
    }

    /// <summary>The online phase of both parties.</summary>
    /// <returns>Online bytes and rounds.</returns>
    [Benchmark]
    public async Task<(long Online, int Rounds)> Online()
    {
        (long, int) result = await Run().ConfigureAwait(false);
        return result;
    }

    private async Task<(long Online, int Rounds)> Run()
    {
        var run = await TwoPartySimulation.RunAsync(async (channel, ct) =>
        {
            using var session = new PartySession(_plan, channel.Party, channel.Party == Party.A ? _keysA : _keysB, channel);
            Share mine = channel.Party == Party.A ? _a : _b;
            Share output = Case switch
            {
                "Softmax 256x128" => await session.SoftmaxAsync(mine, false, ct).ConfigureAwait(false),
                "LayerNorm 16x4096" => await session.LayerNormAsync(mine, ct).ConfigureAwait(false),
                _ => await RunSingle(session, mine, ct).ConfigureAwait(false),
            };
            session.Complete();
            return output;
        }).ConfigureAwait(false);
        return (run.Cost.OnlineBytes, run.Cost.Rounds);
    }

    private async Task<Share> RunSingle(PartySession session, Share mine, CancellationToken ct)
    {
        return _plan.Steps[0].Kind switch
        {
            OperationKind.Relu => await session.ReluAsync(mine, ct).ConfigureAwait(false),
            OperationKind.Sign => await session.SignAsync(mine, ct).ConfigureAwait(false),
            OperationKind.Truncate => await session.TruncateAsync(mine, ct).ConfigureAwait(false),
            OperationKind.Spline => await session.SplineAsync(mine, ct).ConfigureAwait(false),
            OperationKind.TableActivation => await session.TableActivationAsync(mine, ct).ConfigureAwait(false),
            _ => await session.MultiplyAsync(mine, mine, ct).ConfigureAwait(false),
        };
    }
}
