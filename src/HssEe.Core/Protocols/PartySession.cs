using System.Diagnostics;
using HssEe.Compute;
using HssEe.Ring;
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
    /// <param name="keyBundle">
    /// This server's key bundle from the dealer, positioned at its start. Any readable stream is read record by record
    /// into pooled buffers. A <see cref="MemoryStream"/> whose buffer is exposed (<see cref="MemoryStream.TryGetBuffer"/>,
    /// as in one the dealer wrote into) is used in place instead: each record is verified and then used where it lies,
    /// without a copy, and its key bytes in that buffer are zeroed once the step is done (the framing stays). A
    /// MemoryStream over an array of the caller's (<c>new MemoryStream(bytes)</c>) exposes nothing and is copied; the
    /// array is left as it was.
    /// </param>
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

    /// <summary>Product of shared matrices [m, k] x [k, n], or a batch [B, m, k] x [B, k, n] in one round (matrix Beaver triples). The result carries the sum of the scales.</summary>
    /// <param name="x">This party's share of the left matrix.</param>
    /// <param name="y">This party's share of the right matrix.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of x y.</returns>
    public Task<Share> MatMulAsync(Share x, Share y, CancellationToken cancellationToken = default) => RunAsync(OperationKind.MatMul, [x, y], cancellationToken);

    /// <summary>ReLU, exact, two rounds (FSS). The planned bit-width n requires |x| &lt; 2^(n-1).</summary>
    /// <param name="x">This party's share of x.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of max(x, 0), same scale.</returns>
    public Task<Share> ReluAsync(Share x, CancellationToken cancellationToken = default) => RunAsync(OperationKind.Relu, [x], cancellationToken);

    /// <summary>Sign bit, two rounds (FSS): shares of 1{x &gt;= 0} with scale 0.</summary>
    /// <param name="x">This party's share of x.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of the bit.</returns>
    public Task<Share> SignAsync(Share x, CancellationToken cancellationToken = default) => RunAsync(OperationKind.Sign, [x], cancellationToken);

    /// <summary>Select, one round: <c>bit ? ifOne : ifZero</c> for a shared bit (0 or 1 at scale 0).</summary>
    /// <param name="bit">This party's share of the bit (e.g. from <see cref="SignAsync"/>).</param>
    /// <param name="ifOne">This party's share of the value chosen where the bit is 1.</param>
    /// <param name="ifZero">This party's share of the value chosen where the bit is 0 (same scale).</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of the selection, at the choices' scale.</returns>
    public Task<Share> SelectAsync(Share bit, Share ifOne, Share ifZero, CancellationToken cancellationToken = default) => RunAsync(OperationKind.Select, [bit, ifOne, ifZero], cancellationToken);

    /// <summary>Interval containment, two rounds (FSS): shares of 1{lo &lt;= x &lt; hi} with scale 0, for the planned bounds.</summary>
    /// <param name="x">This party's share of x.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of the bit.</returns>
    public Task<Share> IntervalAsync(Share x, CancellationToken cancellationToken = default) => RunAsync(OperationKind.Interval, [x], cancellationToken);

    /// <summary>Faithful truncation (FSS): exactly floor(x / 2^shift) for the planned shift; two rounds up to 63 planned bits, one at 64.</summary>
    /// <param name="x">This party's share of x; its scale must be at least the shift.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of the shifted value, scale reduced by the shift.</returns>
    public Task<Share> TruncateAsync(Share x, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (_next < _plan.Steps.Length && _plan.Steps[_next].Kind == OperationKind.Truncate && x.FractionalBits < TruncateGate.Shift(_plan.Steps[_next]))
        {
            throw new ArgumentException($"{_plan.Steps[_next]}: the input carries {x.FractionalBits} fractional bits, fewer than the shift {TruncateGate.Shift(_plan.Steps[_next])}.", nameof(x));
        }

        return RunAsync(OperationKind.Truncate, [x], cancellationToken);
    }

    /// <summary>
    /// Maximum along the last axis, running the ReLU tree planned by
    /// <see cref="PlanBuilder.MaxAlongLastAxis"/>: ceil(log2 k) rounds.
    /// </summary>
    /// <param name="x">This party's share of x, shape [..., k].</param>
    /// <param name="cancellationToken">Cancels the steps.</param>
    /// <returns>This party's share of the maxima, shape [..., 1], same scale.</returns>
    public async Task<Share> MaxAlongLastAxisAsync(Share x, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Shape.Rank < 1 || x.Shape[-1] < 1)
        {
            throw new ArgumentException($"Max along the last axis needs a non-empty last axis; got shape {x.Shape}.", nameof(x));
        }

        int rows = x.Shape.ElementCount / x.Shape[-1];
        int k = x.Shape[-1];
        ulong[] current = x.Value.Span.ToArray();
        while (k > 1)
        {
            int pairs = k / 2, next = pairs + (k % 2);
            var diff = new RingTensor(new TensorShape(rows, pairs));
            for (int r = 0; r < rows; r++)
            {
                for (int j = 0; j < pairs; j++)
                {
                    diff.Span[(r * pairs) + j] = current[(r * k) + (2 * j)] - current[(r * k) + (2 * j) + 1];
                }
            }

            using Share relu = await RunAsync(OperationKind.Relu, [new Share(Party, diff, x.FractionalBits)], cancellationToken).ConfigureAwait(false);
            var reduced = new ulong[rows * next];
            for (int r = 0; r < rows; r++)
            {
                for (int j = 0; j < pairs; j++)
                {
                    reduced[(r * next) + j] = current[(r * k) + (2 * j) + 1] + relu.Value.Span[(r * pairs) + j];
                }

                if (k % 2 == 1)
                {
                    reduced[(r * next) + pairs] = current[(r * k) + k - 1];
                }
            }

            current = reduced;
            k = next;
        }

        int[] dims = x.Shape.Dimensions.ToArray();
        dims[^1] = 1;
        return new Share(Party, new RingTensor(current, new TensorShape(dims)), x.FractionalBits);
    }

    /// <summary>Look-up table gate, exact, one round: shares of table[x mod 2^k] for the planned table.</summary>
    /// <param name="x">This party's share of the index (its low k bits are used).</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of the table entry, at the table's scale.</returns>
    public Task<Share> LookupAsync(Share x, CancellationToken cancellationToken = default) => RunAsync(OperationKind.Lookup, [x], cancellationToken);

    /// <summary>
    /// Runs the steps planned by <see cref="PlanBuilder.Spline"/>: select the piece's coefficients, then for
    /// degree 1 multiply, add and truncate (four rounds), for degree 2 square x - m, multiply (q, s) by
    /// (d^2, d), add and truncate (five rounds).
    /// </summary>
    /// <param name="x">This party's share of x at the plan's scale f.</param>
    /// <param name="cancellationToken">Cancels the steps.</param>
    /// <returns>This party's share of the spline's value, scale f (plus the planned extra output bits).</returns>
    public async Task<Share> SplineAsync(Share x, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.FractionalBits != _plan.FractionalBits)
        {
            throw new ArgumentException($"The spline input carries {x.FractionalBits} fractional bits; the plan's scale is {_plan.FractionalBits}.", nameof(x));
        }

        int len = x.Shape.ElementCount, f = x.FractionalBits;
        using Share coefficients = await RunAsync(OperationKind.Spline, [x], cancellationToken).ConfigureAwait(false);
        int fc = coefficients.FractionalBits;
        RingTensor c = coefficients.Value;
        if (coefficients.Shape[0] == 2)
        {
            using var slope = new Share(Party, RingTensor.FromSpan(c.Span[..len], x.Shape), fc);
            using var intercept = new Share(Party, RingTensor.FromSpan(c.Span.Slice(len, len), x.Shape), fc + f);
            using Share product = await RunAsync(OperationKind.Multiply, [slope, x], cancellationToken).ConfigureAwait(false);
            using Share sum = product.Add(intercept);
            return await TruncateAsync(sum, cancellationToken).ConfigureAwait(false);
        }

        using var center = new Share(Party, RingTensor.FromSpan(c.Span[..len], x.Shape), f);
        using Share d = x.Subtract(center);
        using Share square = await RunAsync(OperationKind.Square, [d], cancellationToken).ConfigureAwait(false);

        // (q, s) at scale fc (s really at f + fc) times (d^2, d) at 2f (d really at f): both products at 2f + fc.
        var pairShape = new TensorShape([2, .. x.Shape.Dimensions]);
        var powers = new RingTensor(pairShape);
        square.Value.Span.CopyTo(powers.Span);
        d.Value.Span.CopyTo(powers.Span[len..]);
        using var left = new Share(Party, RingTensor.FromSpan(c.Span.Slice(len, 2 * len), pairShape), fc);
        using var right = new Share(Party, powers, 2 * f);
        using Share products = await RunAsync(OperationKind.Multiply, [left, right], cancellationToken).ConfigureAwait(false);
        RingTensor total = SumOfProducts(products.Value.Span, c.Span.Slice(3 * len, len), x.Shape);
        using var sum2 = new Share(Party, total, fc + (2 * f));
        return await TruncateAsync(sum2, cancellationToken).ConfigureAwait(false);
    }

    private static RingTensor SumOfProducts(ReadOnlySpan<ulong> products, ReadOnlySpan<ulong> constant, TensorShape shape)
    {
        int len = constant.Length;
        var total = new RingTensor(shape);
        Span<ulong> t = total.Span;
        for (int i = 0; i < len; i++)
        {
            t[i] = products[i] + products[len + i] + constant[i];
        }

        return total;
    }

    /// <summary>
    /// Runs the activation planned by <see cref="PlanBuilder.TableActivation"/>: the table step (two rounds)
    /// and, if planned, the truncation back to scale f (two rounds).
    /// </summary>
    /// <param name="x">This party's share of x at the plan's scale f.</param>
    /// <param name="cancellationToken">Cancels the steps.</param>
    /// <returns>This party's share of the activation (scale f when rescaled).</returns>
    public async Task<Share> TableActivationAsync(Share x, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.FractionalBits != _plan.FractionalBits)
        {
            throw new ArgumentException($"The activation input carries {x.FractionalBits} fractional bits; the plan's scale is {_plan.FractionalBits}.", nameof(x));
        }

        bool rescale = _next < _plan.Steps.Length && _plan.Steps[_next].Kind == OperationKind.TableActivation && _plan.Steps[_next].Parameters[1] != 0;
        Share value = await RunAsync(OperationKind.TableActivation, [x], cancellationToken).ConfigureAwait(false);
        if (!rescale)
        {
            return value;
        }

        using (value)
        {
            return await TruncateAsync(value, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs the softmax planned by <see cref="CompositeLayers.Softmax"/>.</summary>
    /// <param name="x">This party's share of the scores, scale f, shape [..., k].</param>
    /// <param name="causal">Must match the plan: apply the causal mask.</param>
    /// <param name="cancellationToken">Cancels the steps.</param>
    /// <returns>This party's share of the probabilities, scale f.</returns>
    public async Task<Share> SoftmaxAsync(Share x, bool causal = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        Share scores = x;
        if (causal)
        {
            // Party A pushes masked scores CausalMaskOffset below; their exp is exactly 0 (spline tail).
            int k = x.Shape[-1], q = x.Shape[-2], blocks = x.Shape.ElementCount / (q * k);
            var offset = new RingTensor(x.Shape);
            ulong minus = unchecked(0 - new FixedPointFormat(x.FractionalBits).Encode(CompositeLayers.CausalMaskOffset));
            for (int b = 0; b < blocks; b++)
            {
                for (int i = 0; i < q; i++)
                {
                    for (int j = i + k - q + 1; j < k; j++)
                    {
                        offset.Span[(((b * q) + i) * k) + j] = minus;
                    }
                }
            }

            scores = x.AddPublic(offset);
        }

        using Share max = await MaxAlongLastAxisAsync(scores, cancellationToken).ConfigureAwait(false);
        using Share maxWide = CompositeLayers.BroadcastRows(max, x.Shape);
        using Share shifted = scores.Subtract(maxWide);
        using Share exps = await SplineAsync(shifted, cancellationToken).ConfigureAwait(false);
        using Share sums = CompositeLayers.RowSums(exps);
        using Share inverse = await SplineAsync(sums, cancellationToken).ConfigureAwait(false);
        using Share inverseWide = CompositeLayers.BroadcastRows(inverse, x.Shape);
        using Share product = await MultiplyAsync(exps, inverseWide, cancellationToken).ConfigureAwait(false);
        if (!ReferenceEquals(scores, x))
        {
            scores.Dispose();
        }

        return await TruncateRoundedAsync(product, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs the LayerNorm planned by <see cref="CompositeLayers.LayerNorm"/> (no gain or bias).</summary>
    /// <param name="x">This party's share, scale f, shape [..., d].</param>
    /// <param name="cancellationToken">Cancels the steps.</param>
    /// <returns>This party's share of (x - mean) / sqrt(var), scale f.</returns>
    public async Task<Share> LayerNormAsync(Share x, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        int d = x.Shape[-1];
        using Share sums = CompositeLayers.RowSums(x);
        using Share scaled = sums.MultiplyPublic(1.0 / d, new FixedPointFormat(CompositeLayers.ConstantBits));
        using Share mean = await TruncateRoundedAsync(scaled, cancellationToken).ConfigureAwait(false);
        using Share meanWide = CompositeLayers.BroadcastRows(mean, x.Shape);
        using Share centred = x.Subtract(meanWide);
        return await NormTailAsync(centred, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs the RMSNorm planned by <see cref="CompositeLayers.RmsNorm"/> (no gain).</summary>
    /// <param name="x">This party's share, scale f, shape [..., d].</param>
    /// <param name="cancellationToken">Cancels the steps.</param>
    /// <returns>This party's share of x / sqrt(mean(x^2)), scale f.</returns>
    public Task<Share> RmsNormAsync(Share x, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        return NormTailAsync(x, cancellationToken);
    }

    private async Task<Share> NormTailAsync(Share x, CancellationToken cancellationToken)
    {
        int d = x.Shape[-1];
        using Share squares = await SquareAsync(x, cancellationToken).ConfigureAwait(false);
        using Share sums = CompositeLayers.RowSums(squares);
        using Share scaled = sums.MultiplyPublic(1.0 / d, new FixedPointFormat(CompositeLayers.ConstantBits));
        using Share variance = await TruncateRoundedAsync(scaled, cancellationToken).ConfigureAwait(false);
        using Share rs = await SplineAsync(variance, cancellationToken).ConfigureAwait(false);
        using Share rsWide = CompositeLayers.BroadcastRows(rs, x.Shape);
        using Share product = await MultiplyAsync(x, rsWide, cancellationToken).ConfigureAwait(false);
        return await TruncateRoundedAsync(product, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs the max pool planned by <see cref="CompositeLayers.MaxPool2d"/>.</summary>
    /// <param name="x">This party's share, shape [C, H, W].</param>
    /// <param name="kernel">Window size (as planned).</param>
    /// <param name="stride">Stride (as planned).</param>
    /// <param name="padding">Padding (as planned).</param>
    /// <param name="cancellationToken">Cancels the steps.</param>
    /// <returns>This party's share of the pooled tensor [C, OH, OW].</returns>
    public async Task<Share> MaxPool2dAsync(Share x, int kernel, int stride, int padding = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        (int c, int oh, int ow) = CompositeLayers.PoolOutput(x.Shape, kernel, stride, padding);
        ulong pad = new FixedPointFormat(x.FractionalBits).Encode(CompositeLayers.MaxPoolPadValue);
        using Share windows = CompositeLayers.GatherWindows(x, kernel, stride, padding, pad);
        using Share max = await MaxAlongLastAxisAsync(windows, cancellationToken).ConfigureAwait(false);
        return new Share(Party, max.Value.Clone().Reshape(new TensorShape(c, oh, ow)), x.FractionalBits);
    }

    /// <summary>Runs the average pool planned by <see cref="CompositeLayers.AvgPool2d"/>.</summary>
    /// <param name="x">This party's share, shape [C, H, W].</param>
    /// <param name="kernel">Window size (as planned).</param>
    /// <param name="stride">Stride (as planned).</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    /// <returns>This party's share of the pooled tensor [C, OH, OW], same scale.</returns>
    public async Task<Share> AvgPool2dAsync(Share x, int kernel, int stride, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        (int c, int oh, int ow) = CompositeLayers.PoolOutput(x.Shape, kernel, stride, 0);
        using Share windows = CompositeLayers.GatherWindows(x, kernel, stride, 0, 0);
        using Share sums = CompositeLayers.RowSums(windows);
        using Share scaled = sums.MultiplyPublic(1.0 / (kernel * kernel), new FixedPointFormat(CompositeLayers.ConstantBits));
        using var shaped = new Share(Party, scaled.Value.Clone().Reshape(new TensorShape(c, oh, ow)), scaled.FractionalBits);
        return await TruncateRoundedAsync(shaped, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The planned truncation, rounding to nearest: half of the dropped unit is added (by party A) first.</summary>
    internal async Task<Share> TruncateRoundedAsync(Share x, CancellationToken cancellationToken)
    {
        if (_next >= _plan.Steps.Length || _plan.Steps[_next].Kind != OperationKind.Truncate)
        {
            return await TruncateAsync(x, cancellationToken).ConfigureAwait(false);
        }

        int shift = TruncateGate.Shift(_plan.Steps[_next]);
        var half = new RingTensor(x.Shape);
        if (shift > 0)
        {
            half.Span.Fill(1UL << (shift - 1));
        }

        using Share rounded = x.AddPublic(half);
        return await TruncateAsync(rounded, cancellationToken).ConfigureAwait(false);
    }

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
