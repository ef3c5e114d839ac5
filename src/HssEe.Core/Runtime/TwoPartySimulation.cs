using System.Diagnostics;

namespace HssEe.Runtime;

/// <summary>Options of an in-process two-party run.</summary>
public sealed class TwoPartyOptions
{
    /// <summary>Receive timeout of both parties' channels (default 30 s).</summary>
    public TimeSpan ReceiveTimeout { get; init; } = PartyChannel.DefaultReceiveTimeout;
}

/// <summary>The results of both parties and the cost of a two-party run.</summary>
/// <typeparam name="TA">Party A's result type.</typeparam>
/// <typeparam name="TB">Party B's result type.</typeparam>
/// <param name="A">Party A's result.</param>
/// <param name="B">Party B's result.</param>
/// <param name="Cost">Bytes, messages and rounds of both parties.</param>
/// <param name="Elapsed">Wall-clock time of the run.</param>
public sealed record TwoPartyResult<TA, TB>(TA A, TB B, CostReport Cost, TimeSpan Elapsed);

/// <summary>
/// Runs party A's and party B's code concurrently in one process over an
/// <see cref="InProcessChannel"/> pair: the way to test two-party code (ours and our users')
/// without a network.
/// </summary>
/// <remarks>
/// If one party's code throws, its channel sends an abort to the peer, whose pending receive
/// then fails with <see cref="PeerFailedException"/> at once; the run throws
/// <see cref="TwoPartyException"/> naming the party that failed first. A party that stops
/// talking makes the other time out with <see cref="ChannelTimeoutException"/>. The run never hangs.
/// </remarks>
public static class TwoPartySimulation
{
    /// <summary>Runs both parties and returns their results with the cost.</summary>
    /// <typeparam name="TA">Party A's result type.</typeparam>
    /// <typeparam name="TB">Party B's result type.</typeparam>
    /// <param name="partyA">Party A's code, given its channel end.</param>
    /// <param name="partyB">Party B's code, given its channel end.</param>
    /// <param name="options">Timeouts; defaults when null.</param>
    /// <param name="cancellationToken">Cancels both parties.</param>
    /// <returns>Both results, the cost report and the elapsed time.</returns>
    public static async Task<TwoPartyResult<TA, TB>> RunAsync<TA, TB>(
        Func<PartyChannel, CancellationToken, Task<TA>> partyA,
        Func<PartyChannel, CancellationToken, Task<TB>> partyB,
        TwoPartyOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(partyA);
        ArgumentNullException.ThrowIfNull(partyB);
        options ??= new TwoPartyOptions();
        (InProcessChannel linkA, InProcessChannel linkB) = InProcessChannel.CreatePair();
        await using var channelA = new PartyChannel(Party.A, linkA, options.ReceiveTimeout);
        await using var channelB = new PartyChannel(Party.B, linkB, options.ReceiveTimeout);

        var stopwatch = Stopwatch.StartNew();
        // Each party starts on the thread pool, whatever the caller's synchronization context (a UI or test
        // framework's context would otherwise run both parties' synchronous work on its own threads).
        Task<TA> taskA = Task.Run(() => RunPartyAsync(partyA, channelA, cancellationToken), CancellationToken.None);
        Task<TB> taskB = Task.Run(() => RunPartyAsync(partyB, channelB, cancellationToken), CancellationToken.None);
        try
        {
            await Task.WhenAll(taskA, taskB).ConfigureAwait(false);
        }
        catch (Exception) when (taskA.IsFaulted || taskB.IsFaulted || taskA.IsCanceled || taskB.IsCanceled)
        {
            throw Describe(taskA, taskB, cancellationToken);
        }

        stopwatch.Stop();
        var cost = new CostReport(channelA.Statistics, channelB.Statistics);
        return new TwoPartyResult<TA, TB>(taskA.Result, taskB.Result, cost, stopwatch.Elapsed);
    }

    /// <summary>Runs both parties (same result type) and returns their results with the cost.</summary>
    /// <typeparam name="T">Result type of both parties.</typeparam>
    /// <param name="party">Code run by both parties; it reads <see cref="PartyChannel.Party"/> to know which it is.</param>
    /// <param name="options">Timeouts; defaults when null.</param>
    /// <param name="cancellationToken">Cancels both parties.</param>
    /// <returns>Both results, the cost report and the elapsed time.</returns>
    public static Task<TwoPartyResult<T, T>> RunAsync<T>(
        Func<PartyChannel, CancellationToken, Task<T>> party,
        TwoPartyOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(party);
        return RunAsync(party, party, options, cancellationToken);
    }

    private static async Task<T> RunPartyAsync<T>(Func<PartyChannel, CancellationToken, Task<T>> code, PartyChannel channel, CancellationToken cancellationToken)
    {
        try
        {
            return await code(channel, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not PeerFailedException)
        {
            await channel.AbortAsync(ex).ConfigureAwait(false);
            throw;
        }
    }

    private static Exception Describe(Task taskA, Task taskB, CancellationToken cancellationToken)
    {
        Exception? a = Unwrap(taskA);
        Exception? b = Unwrap(taskB);
        if (a is null && b is null)
        {
            return new OperationCanceledException("The two-party run was cancelled.", cancellationToken);
        }

        // The root cause is the failure that is not a reaction to the peer's abort.
        if (a is not null && a is not PeerFailedException)
        {
            return new TwoPartyException(Party.A, a, b);
        }

        if (b is not null && b is not PeerFailedException)
        {
            return new TwoPartyException(Party.B, b, a);
        }

        return a is not null ? new TwoPartyException(Party.A, a, b) : new TwoPartyException(Party.B, b!, a);
    }

    private static Exception? Unwrap(Task task) => task.IsFaulted
        ? (task.Exception!.InnerExceptions.Count == 1 ? task.Exception.InnerExceptions[0] : task.Exception)
        : task.IsCanceled ? new OperationCanceledException("Cancelled.") : null;
}
