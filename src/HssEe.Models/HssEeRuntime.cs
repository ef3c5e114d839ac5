using System.Diagnostics;
using HssEe.Models.Engine;
using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Runtime;
using HssEe.Sharing;

namespace HssEe.Models;

/// <summary>The cost of one private inference step (or a sum of steps).</summary>
/// <param name="Elapsed">Wall-clock time of the two servers' online phase.</param>
/// <param name="OnlineBytes">Payload bytes the two servers sent each other.</param>
/// <param name="Rounds">Communication rounds (message depth).</param>
/// <param name="KeyBytes">Bytes of FSS keys and Beaver material the client dealt to both servers.</param>
/// <param name="KeyGeneration">Time the client spent dealing those keys (offline).</param>
public readonly record struct InferenceCost(TimeSpan Elapsed, long OnlineBytes, int Rounds, long KeyBytes, TimeSpan KeyGeneration)
{
    /// <summary>Adds two costs.</summary>
    /// <param name="a">First.</param>
    /// <param name="b">Second.</param>
    /// <returns>The sum.</returns>
    public static InferenceCost operator +(InferenceCost a, InferenceCost b) =>
        new(a.Elapsed + b.Elapsed, a.OnlineBytes + b.OnlineBytes, a.Rounds + b.Rounds, a.KeyBytes + b.KeyBytes, a.KeyGeneration + b.KeyGeneration);

    /// <summary>Adds two costs.</summary>
    /// <param name="other">The other cost.</param>
    /// <returns>The sum.</returns>
    public InferenceCost Add(InferenceCost other) => this + other;

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Elapsed.TotalMilliseconds:F1} ms online, {CostReport.FormatBytes(OnlineBytes)} online, {Rounds} rounds, {CostReport.FormatBytes(KeyBytes)} keys ({KeyGeneration.TotalMilliseconds:F0} ms to deal)";
}

/// <summary>Key bundles the client dealt for one plan (single use).</summary>
internal sealed class DealtKeys
{
    private byte[]? _a;
    private byte[]? _b;

    public DealtKeys(Plan plan, byte[] a, byte[] b, TimeSpan elapsed)
    {
        Plan = plan;
        _a = a;
        _b = b;
        KeyBytes = a.LongLength + b.LongLength;
        Elapsed = elapsed;
    }

    public Plan Plan { get; }

    public long KeyBytes { get; }

    public TimeSpan Elapsed { get; }

    public static DealtKeys Deal(Plan plan, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var sw = Stopwatch.StartNew();
        using var a = new MemoryStream();
        using var b = new MemoryStream();
        Dealer.Generate(plan, a, b, progress, cancellationToken);
        return new DealtKeys(plan, a.ToArray(), b.ToArray(), sw.Elapsed);
    }

    /// <summary>Hands both bundles out once; the second call throws.</summary>
    public (byte[] A, byte[] B) Take()
    {
        byte[]? a = Interlocked.Exchange(ref _a, null), b = Interlocked.Exchange(ref _b, null);
        return a is null || b is null ? throw new InvalidOperationException("These key bundles were already used; every step needs fresh keys.") : (a, b);
    }
}

/// <summary>
/// Two in-process servers joined by a <see cref="PartyChannel"/> pair that persists across steps (the
/// servers keep state, e.g. a KV cache, between steps). Each step: both servers open a
/// <see cref="PartySession"/> on their bundle, run the model definition on an <see cref="HssEngine"/>,
/// and return their share of the output. A failing server aborts the channel so that its peer fails
/// fast instead of waiting for its timeout.
/// </summary>
internal sealed class HssEeRuntime : IAsyncDisposable
{
    private readonly PartyChannel _a;
    private readonly PartyChannel _b;
    private readonly Compute.ComputeBackend? _backend;

    public HssEeRuntime(int fractionalBits, TimeSpan? receiveTimeout = null, Compute.ComputeBackend? backend = null)
    {
        FractionalBits = fractionalBits;
        (InProcessChannel linkA, InProcessChannel linkB) = InProcessChannel.CreatePair();
        _a = new PartyChannel(Party.A, linkA, receiveTimeout);
        _b = new PartyChannel(Party.B, linkB, receiveTimeout);
        _backend = backend;
    }

    public int FractionalBits { get; }

    /// <summary>Records a plan by running <paramref name="forward"/> on symbolic values.</summary>
    public Plan BuildPlan(TensorShape inputShape, Func<HssEngine, SecretTensor, ValueTask<SecretTensor>> forward)
    {
        var builder = new PlanBuilder(FractionalBits);
        HssEngine engine = HssEngine.ForPlanning(builder);
        ValueTask<SecretTensor> run = forward(engine, engine.Symbolic(inputShape));
        if (!run.IsCompleted)
        {
            throw new InvalidOperationException("Planning must complete synchronously.");
        }

        _ = run.Result;
        return builder.Build();
    }

    /// <summary>Runs one step on both servers and returns both output shares with the step's cost.</summary>
    public async Task<(Share A, Share B, InferenceCost Cost)> RunAsync(
        DealtKeys keys,
        Share inputA,
        Share inputB,
        Func<Party, HssEngine, SecretTensor, ValueTask<SecretTensor>> forward,
        CancellationToken cancellationToken)
    {
        (byte[] bundleA, byte[] bundleB) = keys.Take();
        ChannelStatistics beforeA = _a.Statistics, beforeB = _b.Statistics;
        var sw = Stopwatch.StartNew();
        Task<Share> a = ServeAsync(_a, keys.Plan, bundleA, inputA, forward, cancellationToken);
        Task<Share> b = ServeAsync(_b, keys.Plan, bundleB, inputB, forward, cancellationToken);
        try
        {
            await Task.WhenAll(a, b).ConfigureAwait(false);
        }
        catch (Exception) when (a.IsFaulted || b.IsFaulted)
        {
            // Report the root cause (the server that failed first), not the peer's "aborted" echo.
            Exception root = (a.IsFaulted && a.Exception!.InnerException is not PeerFailedException ? a.Exception : b.Exception ?? a.Exception)!.InnerException!;
            throw new TwoPartyException($"Private inference step failed ({keys.Plan}): {root.Message}", root);
        }

        sw.Stop();
        ChannelStatistics afterA = _a.Statistics, afterB = _b.Statistics;
        long online = afterA.BytesSent - beforeA.BytesSent + afterB.BytesSent - beforeB.BytesSent;
        int rounds = Math.Max(afterA.Rounds - beforeA.Rounds, afterB.Rounds - beforeB.Rounds);
        return (a.Result, b.Result, new InferenceCost(sw.Elapsed, online, rounds, keys.KeyBytes, keys.Elapsed));
    }

    private async Task<Share> ServeAsync(
        PartyChannel channel,
        Plan plan,
        byte[] bundle,
        Share input,
        Func<Party, HssEngine, SecretTensor, ValueTask<SecretTensor>> forward,
        CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            using var stream = new MemoryStream(bundle, writable: false);
            using var session = new PartySession(plan, channel.Party, stream, channel, _backend);
            HssEngine engine = HssEngine.ForExecution(FractionalBits, session, _backend, cancellationToken);
            SecretTensor y = await forward(channel.Party, engine, engine.Input(input)).ConfigureAwait(false);
            session.Complete();
            return y.Share ?? throw new InvalidOperationException("The model returned a symbolic value while executing.");
        }
        catch (Exception ex) when (ex is not PeerFailedException)
        {
            await channel.AbortAsync(ex).ConfigureAwait(false);
            throw;
        }
        finally
        {
            Array.Clear(bundle);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _a.DisposeAsync().ConfigureAwait(false);
        await _b.DisposeAsync().ConfigureAwait(false);
    }
}
