using HssEe.Compute;
using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Models.Engine;

/// <summary>
/// A secret-shared tensor of the HSS-EE engine: its shape, the fractional bits it carries and, when
/// executing, this party's share (null while the engine only records the plan).
/// </summary>
internal sealed class SecretTensor
{
    public SecretTensor(TensorShape shape, int bits, Share? share)
    {
        if (share is not null && (share.Shape != shape || share.FractionalBits != bits))
        {
            throw new ArgumentException($"Share {share} does not match shape {shape} with {bits} fractional bits.", nameof(share));
        }

        Shape = shape;
        Bits = bits;
        Share = share;
    }

    public TensorShape Shape { get; }

    public int Bits { get; }

    public Share? Share { get; }

    public override string ToString() => $"SecretTensor{Shape} f={Bits}{(Share is null ? " (symbolic)" : string.Empty)}";
}

/// <summary>
/// The HSS-EE engine. Built with a <see cref="PlanBuilder"/> it records the FSS and Beaver steps a model
/// needs (shapes only, no data); built with a <see cref="PartySession"/> over the resulting plan it runs
/// them on this party's shares. The same code runs in both modes, so the step order always agrees with
/// the dealer's bundle.
/// </summary>
/// <remarks>
/// Fixed point: values are kept at f fractional bits. Products with public weights or constants add f
/// bits; the extra bits are removed lazily by one faithful truncation, rounding to nearest (one round), just before an
/// operation that needs scale f, so that e.g. a projection followed by RoPE costs one truncation. A
/// truncation is evaluated at <c>min(64, bits + 16)</c> bits: real values must stay below 2^15 = 32768.
/// </remarks>
internal sealed class HssEngine : Engine<SecretTensor>
{
    /// <summary>Bits of real magnitude allowed above the fractional bits in a truncation gate.</summary>
    public const int MagnitudeBits = 16;

    /// <summary>Gate width for ReLU, max and splines (|x| &lt; 2^(31 - f)).</summary>
    public const int ComparisonBits = 32;

    /// <summary>
    /// Input width of the table activations (GeLU, SiLU): f + 17 bits, |x| &lt; 2^16. In the models their inputs
    /// are linear layers' outputs and leave a truncation, whose input limit 2^15 already bounds them; a wider
    /// gate would only add AES levels and key bytes to the comparisons.
    /// </summary>
    public int ActivationBits => F + MagnitudeBits + 1;

    private readonly PlanBuilder? _builder;
    private readonly PartySession? _session;
    private readonly ComputeBackend _backend;
    private readonly CancellationToken _cancellationToken;

    private HssEngine(int fractionalBits, PlanBuilder? builder, PartySession? session, ComputeBackend? backend, CancellationToken cancellationToken)
    {
        F = fractionalBits;
        _builder = builder;
        _session = session;
        _backend = backend ?? ComputeBackend.Cpu;
        _cancellationToken = cancellationToken;
    }

    /// <summary>The fractional bits f of activations.</summary>
    public int F { get; }

    /// <summary>
    /// Fractional bits of public weights: f + 8. Weights quantised at f bits (2^-13 at f = 12) add a
    /// relative error of about 1e-3 per layer that accumulates through a deep model; 8 more bits make it
    /// negligible at the price of wider rescaling truncations after each linear layer.
    /// </summary>
    public int WeightBits => F + 8;

    /// <summary>True when only recording the plan.</summary>
    public bool Planning => _session is null;

    /// <summary>An engine that records steps into <paramref name="builder"/>.</summary>
    public static HssEngine ForPlanning(PlanBuilder builder) => new(builder.FractionalBits, builder, null, null, default);

    /// <summary>An engine that executes a plan with this party's session.</summary>
    public static HssEngine ForExecution(int fractionalBits, PartySession session, ComputeBackend? backend, CancellationToken cancellationToken) =>
        new(fractionalBits, null, session, backend, cancellationToken);

    /// <summary>A symbolic input (planning) of the given shape at f bits.</summary>
    public SecretTensor Symbolic(TensorShape shape) => new(shape, F, null);

    /// <summary>Wraps this party's share of an input (execution).</summary>
    public SecretTensor Input(Share share) => new(share.Shape, share.FractionalBits, share);

    private Party Party => _session!.Party;

    public override TensorShape ShapeOf(SecretTensor x) => x.Shape;

    public override SecretTensor Reshape(SecretTensor x, TensorShape shape) =>
        x.Share is null ? new SecretTensor(shape, x.Bits, null) : new SecretTensor(shape, x.Bits, new Share(x.Share.Party, x.Share.Value.Reshape(shape), x.Bits));

    public override async ValueTask<SecretTensor> LinearAsync(SecretTensor x, LinearLayer layer)
    {
        if (x.Shape[-1] != layer.In)
        {
            throw new ArgumentException($"{layer}: input has {x.Shape[-1]} features (shape {x.Shape}).", nameof(x));
        }

        x = await ToScaleAsync(x, layer.Name).ConfigureAwait(false);
        TensorShape shape = PlainEngine.WithLast(x.Shape, layer.Out);
        if (Planning)
        {
            return new SecretTensor(shape, F + WeightBits, null);
        }

        (RingTensor w, RingTensor? b) = layer.Encoded(WeightBits, F);
        Share y = x.Share!.MatMulPublic(w, WeightBits, _backend);
        if (b is not null && Party == Party.A)
        {
            Span<ulong> ys = y.Value.Span;
            ReadOnlySpan<ulong> bs = b.Span;
            for (int r = 0; r < ys.Length; r += layer.Out)
            {
                _backend.RingAdd(ys.Slice(r, layer.Out), bs, ys.Slice(r, layer.Out));
            }
        }

        return new SecretTensor(shape, F + WeightBits, y);
    }

    public override SecretTensor Add(SecretTensor a, SecretTensor b)
    {
        TensorShape.ThrowIfDifferent(a.Shape, b.Shape, nameof(b), "Add");
        int bits = Math.Max(a.Bits, b.Bits);
        if (Planning)
        {
            return new SecretTensor(a.Shape, bits, null);
        }

        var y = new RingTensor(a.Shape);
        ReadOnlySpan<ulong> xa = a.Share!.Value.Span, xb = b.Share!.Value.Span;
        int sa = bits - a.Bits, sb = bits - b.Bits;
        Span<ulong> ys = y.Span;
        for (int i = 0; i < ys.Length; i++)
        {
            ys[i] = (xa[i] << sa) + (xb[i] << sb);
        }

        return new SecretTensor(a.Shape, bits, new Share(Party, y, bits));
    }

    public override SecretTensor AddPublic(SecretTensor x, float[] constants)
    {
        CheckLength(x, constants);
        if (Planning)
        {
            return x;
        }

        RingTensor y = x.Share!.Value.Clone();
        if (Party == Party.A)
        {
            var encoded = new ulong[constants.Length];
            new FixedPointFormat(x.Bits).Encode(constants, encoded);
            _backend.RingAdd(y.Span, encoded, y.Span);
        }

        return new SecretTensor(x.Shape, x.Bits, new Share(Party, y, x.Bits));
    }

    public override SecretTensor MultiplyPublic(SecretTensor x, float[] constants)
    {
        CheckLength(x, constants);
        int bits = CheckBits(x.Bits + F, "MultiplyPublic");
        if (Planning)
        {
            return new SecretTensor(x.Shape, bits, null);
        }

        var encoded = new ulong[constants.Length];
        new FixedPointFormat(F).Encode(constants, encoded);
        var y = new RingTensor(x.Shape);
        _backend.RingMultiply(x.Share!.Value.Span, encoded, y.Span);
        return new SecretTensor(x.Shape, bits, new Share(Party, y, bits));
    }

    public override SecretTensor Scale(SecretTensor x, double factor)
    {
        int bits = CheckBits(x.Bits + F, "Scale");
        if (Planning)
        {
            return new SecretTensor(x.Shape, bits, null);
        }

        var y = new RingTensor(x.Shape);
        _backend.RingMultiplyScalar(x.Share!.Value.Span, new FixedPointFormat(F).Encode(factor), y.Span);
        return new SecretTensor(x.Shape, bits, new Share(Party, y, bits));
    }

    public override SecretTensor Gather(SecretTensor x, int[] index, TensorShape shape, float pad = 0)
    {
        PlainEngine.CheckIndex(index, shape, x.Shape.ElementCount);
        if (Planning)
        {
            return new SecretTensor(shape, x.Bits, null);
        }

        ulong padValue = Party == Party.A ? new FixedPointFormat(x.Bits).Encode(pad) : 0;
        ReadOnlySpan<ulong> src = x.Share!.Value.Span;
        var y = new RingTensor(shape);
        Span<ulong> ys = y.Span;
        for (int i = 0; i < ys.Length; i++)
        {
            int j = index[i];
            ys[i] = j >= 0 ? src[j] : padValue;
        }

        return new SecretTensor(shape, x.Bits, new Share(Party, y, x.Bits));
    }

    public override SecretTensor Concat(SecretTensor a, SecretTensor b, TensorShape shape)
    {
        if (a.Shape.ElementCount + b.Shape.ElementCount != shape.ElementCount)
        {
            throw new ArgumentException($"Concat of {a.Shape} and {b.Shape} cannot have shape {shape}.", nameof(shape));
        }

        if (a.Bits != b.Bits)
        {
            throw new ArgumentException($"Concat of tensors with {a.Bits} and {b.Bits} fractional bits.", nameof(b));
        }

        if (Planning)
        {
            return new SecretTensor(shape, a.Bits, null);
        }

        var y = new RingTensor(shape);
        a.Share!.Value.Span.CopyTo(y.Span);
        b.Share!.Value.Span.CopyTo(y.Span[a.Shape.ElementCount..]);
        return new SecretTensor(shape, a.Bits, new Share(Party, y, a.Bits));
    }

    public override SecretTensor SumLastAxis(SecretTensor x, TensorShape shape)
    {
        int k = x.Shape[-1], rows = x.Shape.ElementCount / k;
        PlainEngine.CheckRows(shape, rows);
        if (Planning)
        {
            return new SecretTensor(shape, x.Bits, null);
        }

        ReadOnlySpan<ulong> src = x.Share!.Value.Span;
        var y = new RingTensor(shape);
        Span<ulong> ys = y.Span;
        for (int r = 0; r < rows; r++)
        {
            ulong s = 0;
            foreach (ulong v in src.Slice(r * k, k))
            {
                s += v;
            }

            ys[r] = s;
        }

        return new SecretTensor(shape, x.Bits, new Share(Party, y, x.Bits));
    }

    public override async ValueTask<SecretTensor> ReluAsync(SecretTensor x, string label)
    {
        x = await ToScaleAsync(x, label).ConfigureAwait(false);
        if (Planning)
        {
            _builder!.Relu(x.Shape, ComparisonBits, label);
            return x;
        }

        return Wrap(await _session!.ReluAsync(x.Share!, _cancellationToken).ConfigureAwait(false));
    }

    // Activations: clipped table activations at f + 17 bits (|x| < 2^16), the table on
    // |x| < 8 (GeLU, 2^7 cells of 1/8) or |x| < 16 (SiLU, 2^8 cells of 1/8) with a parabola per cell, linear tails
    // beyond; two rounds, max error about 2e-4 (docs/PROTOCOLS.md). The output stays at the table's scale f + w
    // (w = 19): the gated products that consume it (SwiGLU, GeGLU) take it as it is, so its rescale merges into the
    // product's truncation instead of costing a truncation of its own.
    public override ValueTask<SecretTensor> SiluAsync(SecretTensor x, string label) => TableAsync(x, NonLinearFunctions.SiluReference, 8, 16, label);

    public override ValueTask<SecretTensor> GeluAsync(SecretTensor x, bool tanhApproximation, string label) =>
        TableAsync(x, tanhApproximation ? PlainEngine.GeluTanh : NonLinearFunctions.GeluReference, 7, 8, label);

    private async ValueTask<SecretTensor> TableAsync(SecretTensor x, Func<double, double> function, int tableBits, double range, string label)
    {
        x = await ToScaleAsync(x, label).ConfigureAwait(false);
        if (Planning)
        {
            _builder!.TableActivation(x.Shape, function, ActivationBits, tableBits, rescale: false, label: label, range: range, degree: 2);
            return new SecretTensor(x.Shape, TableActivationGate.OutputFractionalBits(_builder.Last, F), null);
        }

        return Wrap(await _session!.TableActivationAsync(x.Share!, _cancellationToken).ConfigureAwait(false));
    }

    public override async ValueTask<SecretTensor> MultiplyAsync(SecretTensor a, SecretTensor b, string label)
    {
        TensorShape.ThrowIfDifferent(a.Shape, b.Shape, nameof(b), label);

        // The product carries the sum of the operands' fractional bits. Rescale the wider operand (then the other)
        // only while that sum exceeds MaxBits: an activation at f + w times a rescaled linear output fits, and its
        // rescale becomes part of the product's truncation.
        if (a.Bits + b.Bits > MaxBits)
        {
            if (a.Bits >= b.Bits)
            {
                a = await ToScaleAsync(a, label).ConfigureAwait(false);
            }
            else
            {
                b = await ToScaleAsync(b, label).ConfigureAwait(false);
            }
        }

        if (a.Bits + b.Bits > MaxBits)
        {
            a = await ToScaleAsync(a, label).ConfigureAwait(false);
            b = await ToScaleAsync(b, label).ConfigureAwait(false);
        }

        if (Planning)
        {
            _builder!.Multiply(a.Shape, label);
            return new SecretTensor(a.Shape, a.Bits + b.Bits, null);
        }

        return Wrap(await _session!.MultiplyAsync(a.Share!, b.Share!, _cancellationToken).ConfigureAwait(false));
    }

    public override async ValueTask<SecretTensor> BatchMatMulAsync(SecretTensor a, SecretTensor b, string label)
    {
        (int batch, int m, int k, int n) = PlainEngine.CheckBatchMatMul(a.Shape, b.Shape, label);
        a = await ToScaleAsync(a, label).ConfigureAwait(false);
        b = await ToScaleAsync(b, label).ConfigureAwait(false);
        var shape = new TensorShape(batch, m, n);
        if (Planning)
        {
            _builder!.BatchMatMul(batch, m, k, n, label);
            return new SecretTensor(shape, 2 * F, null);
        }

        return Wrap(await _session!.MatMulAsync(a.Share!, b.Share!, _cancellationToken).ConfigureAwait(false));
    }

    public override async ValueTask<SecretTensor> SoftmaxAsync(SecretTensor x, bool causal, string label)
    {
        x = await ToScaleAsync(x, label).ConfigureAwait(false);
        if (Planning)
        {
            _builder!.Softmax(x.Shape, causal, label);
            return x;
        }

        return Wrap(await _session!.SoftmaxAsync(x.Share!, causal, _cancellationToken).ConfigureAwait(false));
    }

    public override async ValueTask<SecretTensor> RmsNormAsync(SecretTensor x, double epsilon, string label)
    {
        x = await ToScaleAsync(x, label).ConfigureAwait(false);
        if (Planning)
        {
            _builder!.RmsNorm(x.Shape, label);
            return x;
        }

        return Wrap(await _session!.RmsNormAsync(x.Share!, _cancellationToken).ConfigureAwait(false));
    }

    public override async ValueTask<SecretTensor> MaxLastAxisAsync(SecretTensor x, TensorShape shape, string label)
    {
        PlainEngine.CheckRows(shape, x.Shape.ElementCount / x.Shape[-1]);
        x = await ToScaleAsync(x, label).ConfigureAwait(false);
        if (Planning)
        {
            _builder!.MaxAlongLastAxis(x.Shape, ComparisonBits, label);
            return new SecretTensor(shape, F, null);
        }

        Share m = await _session!.MaxAlongLastAxisAsync(x.Share!, _cancellationToken).ConfigureAwait(false);
        return new SecretTensor(shape, F, new Share(Party, m.Value.Reshape(shape), m.FractionalBits));
    }

    public override ValueTask<SecretTensor> RescaleAsync(SecretTensor x, string label) => ToScaleAsync(x, label);

    /// <summary>Brings a value to f fractional bits: a local shift when below, one truncation step when above.</summary>
    public async ValueTask<SecretTensor> ToScaleAsync(SecretTensor x, string label)
    {
        if (x.Bits == F)
        {
            return x;
        }

        if (x.Bits < F)
        {
            if (Planning)
            {
                return new SecretTensor(x.Shape, F, null);
            }

            var y = new RingTensor(x.Shape);
            _backend.RingMultiplyScalar(x.Share!.Value.Span, 1UL << (F - x.Bits), y.Span);
            return new SecretTensor(x.Shape, F, new Share(Party, y, F));
        }

        if (Planning)
        {
            // The borrow compares the top 7 of the shifted-out bits (a key without AES levels below its leaf): the
            // result is rounded to nearest except that values within 2^-7 ulp below a half may round up.
            int bits = Math.Min(64, x.Bits + MagnitudeBits);
            _ = bits <= 63
                ? _builder!.TopBitsTruncate(x.Shape, x.Bits - F, bits, PlanBuilder.RescaleComparedBits, $"{label}.rescale")
                : _builder!.Truncate(x.Shape, x.Bits - F, bits, $"{label}.rescale");
            return new SecretTensor(x.Shape, F, null);
        }

        // Round to nearest (a floor would bias every element by -2^-(f+1), and the biases add up along
        // sums and the residual stream).
        return Wrap(await _session!.TruncateRoundedAsync(x.Share!, _cancellationToken).ConfigureAwait(false));
    }

    private static SecretTensor Wrap(Share s) => new(s.Shape, s.FractionalBits, s);

    /// <summary>Most fractional bits a value may carry: with real values below 2^15, it still fits 64 bits.</summary>
    private const int MaxBits = 48;

    private static int CheckBits(int bits, string what) =>
        bits <= MaxBits ? bits : throw new InvalidOperationException($"{what}: the value would carry {bits} fractional bits (more than {MaxBits}); rescale first.");

    private static void CheckLength(SecretTensor x, float[] constants)
    {
        if (constants.Length != x.Shape.ElementCount)
        {
            throw new ArgumentException($"{constants.Length} public constants for a tensor of shape {x.Shape}.", nameof(constants));
        }
    }
}
