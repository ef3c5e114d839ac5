using System.Diagnostics;
using HssEe.Randomness;

namespace HssEe.Protocols;

/// <summary>What the dealer produced for one plan.</summary>
/// <param name="KeyBytesA">Size of party A's bundle in bytes.</param>
/// <param name="KeyBytesB">Size of party B's bundle in bytes.</param>
/// <param name="Elapsed">Time spent generating keys.</param>
public readonly record struct DealerReport(long KeyBytesA, long KeyBytesB, TimeSpan Elapsed);

/// <summary>
/// The client acting as dealer: walks a <see cref="Plan"/> and writes one key bundle per server
/// with all correlated randomness (masks, FSS keys, Beaver triples), streamed step by step.
/// </summary>
/// <remarks>
/// Randomness comes from an <see cref="AesPrg"/> seeded by <see cref="System.Security.Cryptography.RandomNumberGenerator"/>.
/// Send each bundle only to its server (over a confidential channel): a server holding both
/// bundles learns every mask. Generate fresh bundles for every inference: keys are single-use.
/// </remarks>
public static class Dealer
{
    /// <summary>Writes party A's and party B's key bundles for <paramref name="plan"/>.</summary>
    /// <param name="plan">The plan both servers will run.</param>
    /// <param name="bundleForA">Destination of party A's bundle.</param>
    /// <param name="bundleForB">Destination of party B's bundle.</param>
    /// <param name="progress">Optional progress callback, given the number of steps done.</param>
    /// <param name="cancellationToken">Cancels generation between steps.</param>
    /// <returns>Bundle sizes and the time taken.</returns>
    public static DealerReport Generate(Plan plan, Stream bundleForA, Stream bundleForB, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        using AesPrg prg = AesPrg.Create();
        return Generate(plan, bundleForA, bundleForB, prg, progress, cancellationToken);
    }

    /// <summary>Generates with caller-supplied randomness (tests and benchmarks pass a deterministic PRG).</summary>
    internal static DealerReport Generate(Plan plan, Stream bundleForA, Stream bundleForB, AesPrg prg, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(bundleForA);
        ArgumentNullException.ThrowIfNull(bundleForB);
        var watch = Stopwatch.StartNew();
        byte[] bundleId = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
        using var writerA = new KeyBundleWriter(bundleForA, Party.A, plan, bundleId);
        using var writerB = new KeyBundleWriter(bundleForB, Party.B, plan, bundleId);
        using var keysA = new KeyMaterial();
        using var keysB = new KeyMaterial();
        foreach (PlanStep step in plan.Steps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            GateRegistry.For(step.Kind).Deal(step, prg, keysA, keysB);
            writerA.WriteStep(step, keysA.Written);
            writerB.WriteStep(step, keysB.Written);
            keysA.Reset();
            keysB.Reset();
            progress?.Report(step.Index + 1);
        }

        writerA.Complete();
        writerB.Complete();
        return new DealerReport(writerA.BytesWritten, writerB.BytesWritten, watch.Elapsed);
    }
}

/// <summary>Maps operation kinds to their protocols.</summary>
internal static class GateRegistry
{
    private static readonly Dictionary<OperationKind, IGateProtocol> Gates = new()
    {
        [OperationKind.Multiply] = MultiplyGate.Instance,
        [OperationKind.Square] = SquareGate.Instance,
        [OperationKind.MatMul] = MatMulGate.Instance,
        [OperationKind.Sign] = SignGate.Instance,
        [OperationKind.Relu] = ReluGate.Instance,
        [OperationKind.Truncate] = TruncateDispatch.Instance,
        [OperationKind.Lookup] = LookupGate.Instance,
        [OperationKind.Spline] = IntervalSelectGate.Instance,
        [OperationKind.TableActivation] = TableActivationGate.Instance,
        [OperationKind.Select] = SelectGate.Instance,
        [OperationKind.Interval] = IntervalGate.Instance,
    };

    public static IGateProtocol For(OperationKind kind) => Gates.TryGetValue(kind, out IGateProtocol? gate)
        ? gate
        : throw new NotSupportedException($"Operation {kind} has no two-party protocol in this version.");

    internal static void Register(OperationKind kind, IGateProtocol gate) => Gates[kind] = gate;
}
