using System.Diagnostics;
using HssEe.Compute;
using HssEe.Runtime;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>The cost of one executed plan step on one party.</summary>
/// <param name="StepIndex">Index of the step in the plan.</param>
/// <param name="Kind">Operation kind.</param>
/// <param name="Label">The step's label.</param>
/// <param name="OnlineBytesSent">Payload bytes this party sent.</param>
/// <param name="OnlineBytesReceived">Payload bytes this party received.</param>
/// <param name="Rounds">Communication rounds the step added to this party's critical path.</param>
/// <param name="KeyBytes">Bytes of this party's key material the step consumed (record framing included).</param>
/// <param name="Elapsed">Wall-clock time of the step on this party.</param>
public readonly record struct StepCost(int StepIndex, OperationKind Kind, string Label, long OnlineBytesSent, long OnlineBytesReceived, int Rounds, long KeyBytes, TimeSpan Elapsed);

/// <summary>
/// One server's execution of a <see cref="Plan"/>: consumes its key bundle in plan order and
/// runs each two-party operation over its <see cref="PartyChannel"/>.
/// </summary>
/// <remarks>
/// Every call must be the plan's next step with the planned shapes; anything else (another
/// kind, another shape, the other party's share, a step after the end) throws before any key
/// is touched. Each step's keys are read once, verified, used, and wiped: reuse is impossible.
/// </remarks>
public sealed class PartySession : IDisposable
{
    private readonly Plan _plan;
    private readonly KeyBundleReader _bundle;
    private readonly GateContext _context;
    private readonly List<StepCost> _costs = [];
    private int _next;
    private bool _completed;

    /// <summary>Opens a session: reads and checks the bundle header (party, version, plan hash).</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="party">This server's party.</param>
    /// <param name="keyBundle">This server's key bundle from the dealer, positioned at its start.</param>
    /// <param name="channel">The link to the other server (its party must equal <paramref name="party"/>).</param>
    /// <param name="backend">Compute backend; <see cref="ComputeBackend.Cpu"/> when null.</param>
    public PartySession(Plan plan, Party party, Stream keyBundle, PartyChannel channel, ComputeBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(keyBundle);
        ArgumentNullException.ThrowIfNull(channel);
        party.Validate(nameof(party));
        if (channel.Party != party)
        {
            throw new ArgumentException($"The channel belongs to party {channel.Party}, the session to party {party}.", nameof(channel));
        }

        _plan = plan;
        _bundle = new KeyBundleReader(keyBundle, party, plan);
        _context = new GateContext(party, channel, backend ?? ComputeBackend.Cpu);
    }

    /// <summary>This server's party.</summary>
    public Party Party => _context.Party;

    /// <summary>Index of the next step to run.</summary>
    public int NextStep => _next;

    /// <summary>Costs of the steps run so far.</summary>
    public IReadOnlyList<StepCost> Costs => _costs;

    /// <summary>Element-wise product of two shared tensors (Beaver). The result carries the sum of the scales.</summary>
    /// <param name="x">This party's share of x.</param>
    /// <param name="y">This party's share of y.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of x * y.</returns>
    public Task<Share> MultiplyAsync(Share x, Share y, CancellationToken cancellationToken = default) => RunAsync(OperationKind.Multiply, [x, y], cancellationToken);

    /// <summary>Element-wise square (Beaver square pair). The result carries twice the scale.</summary>
    /// <param name="x">This party's share of x.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of x^2.</returns>
    public Task<Share> SquareAsync(Share x, CancellationToken cancellationToken = default) => RunAsync(OperationKind.Square, [x], cancellationToken);

    /// <summary>Product of shared matrices [m, k] x [k, n] (matrix Beaver triple). The result carries the sum of the scales.</summary>
    /// <param name="x">This party's share of the left matrix.</param>
    /// <param name="y">This party's share of the right matrix.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of x y.</returns>
    public Task<Share> MatMulAsync(Share x, Share y, CancellationToken cancellationToken = default) => RunAsync(OperationKind.MatMul, [x, y], cancellationToken);

    /// <summary>Checks that the whole plan ran and the bundle ends where it should.</summary>
    public void Complete()
    {
        if (_next != _plan.Steps.Length)
        {
            throw new InvalidOperationException($"Party {Party} completed after {_next} of {_plan.Steps.Length} plan steps.");
        }

        _bundle.ReadEnd();
        _completed = true;
    }

    /// <summary>Totals over the steps run so far.</summary>
    /// <returns>Online bytes sent, rounds and key bytes.</returns>
    public (long OnlineBytesSent, int Rounds, long KeyBytes) Totals() =>
        (_costs.Sum(c => c.OnlineBytesSent), _costs.Sum(c => c.Rounds), _bundle.KeyBytes);

    /// <summary>Marks the session finished; a session that did not complete cannot be resumed.</summary>
    public void Dispose() => _next = _completed ? _next : int.MaxValue;

    internal async Task<Share> RunAsync(OperationKind kind, Share[] inputs, CancellationToken cancellationToken)
    {
        PlanStep step = Expect(kind, inputs);
        ChannelStatistics before = _context.Channel.Statistics;
        long keyBytesBefore = _bundle.KeyBytes;
        var watch = Stopwatch.StartNew();
        using StepKeys keys = _bundle.ReadStep(step);
        _next++;
        Share result = await GateRegistry.For(kind).EvaluateAsync(_context, step, keys, inputs, cancellationToken).ConfigureAwait(false);
        keys.EnsureConsumed();
        ChannelStatistics after = _context.Channel.Statistics;
        _costs.Add(new StepCost(step.Index, kind, step.Label, after.BytesSent - before.BytesSent, after.BytesReceived - before.BytesReceived, after.Rounds - before.Rounds, _bundle.KeyBytes - keyBytesBefore, watch.Elapsed));
        return result;
    }

    private PlanStep Expect(OperationKind kind, Share[] inputs)
    {
        if (_next == int.MaxValue)
        {
            throw new ObjectDisposedException(nameof(PartySession));
        }

        if (_next >= _plan.Steps.Length)
        {
            throw new InvalidOperationException($"Party {Party} asked for {kind} after the last of the plan's {_plan.Steps.Length} steps.");
        }

        PlanStep step = _plan.Steps[_next];
        if (step.Kind != kind)
        {
            throw new InvalidOperationException($"Plan mismatch at {step}: party {Party} called {kind}.");
        }

        if (inputs.Length != step.Inputs.Length)
        {
            throw new ArgumentException($"{step} takes {step.Inputs.Length} inputs, got {inputs.Length}.", nameof(inputs));
        }

        for (int i = 0; i < inputs.Length; i++)
        {
            ArgumentNullException.ThrowIfNull(inputs[i], nameof(inputs));
            if (inputs[i].Party != Party)
            {
                throw new ArgumentException($"{step}: input {i} is party {inputs[i].Party}'s share, but this is party {Party}'s session.", nameof(inputs));
            }

            if (inputs[i].Shape != step.Inputs[i])
            {
                throw new ArgumentException($"{step}: input {i} has shape {inputs[i].Shape}, the plan expects {step.Inputs[i]}.", nameof(inputs));
            }
        }

        return step;
    }
}
