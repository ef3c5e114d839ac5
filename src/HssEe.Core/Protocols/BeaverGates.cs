using HssEe.Randomness;
using HssEe.Ring;
using HssEe.Sharing;

namespace HssEe.Protocols;

/// <summary>
/// Share-by-share products with dealer-made Beaver triples (Beaver, CRYPTO 1991).
/// Party A's triple shares are expanded from a 16-byte seed in its key; party B's key holds its
/// shares explicitly, so the key sizes are 16 bytes (A) and 3L x 8 bytes (B) for L products.
/// Online: one round, each party sends 2L ring elements (16 bytes per product each way).
/// </summary>
internal sealed class MultiplyGate : IGateProtocol
{
    public static readonly MultiplyGate Instance = new();

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int len = step.Inputs[0].ElementCount;
        var sharesA = new ulong[3 * len];
        a.WriteBytes(GateMath.SeededShares(prg, sharesA));
        var sharesB = new ulong[3 * len];
        prg.Fill(sharesB.AsSpan(0, 2 * len));
        for (int i = 0; i < len; i++)
        {
            ulong x = sharesA[i] + sharesB[i];
            ulong y = sharesA[len + i] + sharesB[len + i];
            sharesB[(2 * len) + i] = (x * y) - sharesA[(2 * len) + i];
        }

        b.WriteRing(sharesB);
        Array.Clear(sharesA);
        Array.Clear(sharesB);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        Share x = inputs[0], y = inputs[1];
        int len = x.Shape.ElementCount;
        var triple = new ulong[3 * len];
        GateMath.ReadDealerShares(context, keys, triple);
        var mine = new ulong[2 * len];
        ReadOnlySpan<ulong> xs = x.Value.Span, ys = y.Value.Span;
        for (int i = 0; i < len; i++)
        {
            mine[i] = xs[i] - triple[i];
            mine[len + i] = ys[i] - triple[len + i];
        }

        ulong[] de = await GateMath.OpenAsync(context, mine, 64, cancellationToken).ConfigureAwait(false);
        var z = new RingTensor(x.Shape);
        Span<ulong> zs = z.Span;
        bool isA = context.IsA;
        for (int i = 0; i < len; i++)
        {
            ulong d = de[i], e = de[len + i];
            ulong v = triple[(2 * len) + i] + (d * triple[len + i]) + (e * triple[i]);
            zs[i] = isA ? v + (d * e) : v;
        }

        Array.Clear(triple);
        return new Share(context.Party, z, x.FractionalBits + y.FractionalBits);
    }
}

/// <summary>
/// Element-wise squares with dealer-made pairs (a, a^2). Keys: 16 bytes (A) and 2L x 8 bytes (B);
/// online: one round, L ring elements each way.
/// </summary>
internal sealed class SquareGate : IGateProtocol
{
    public static readonly SquareGate Instance = new();

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        int len = step.Inputs[0].ElementCount;
        var sharesA = new ulong[2 * len];
        a.WriteBytes(GateMath.SeededShares(prg, sharesA));
        var sharesB = new ulong[2 * len];
        prg.Fill(sharesB.AsSpan(0, len));
        for (int i = 0; i < len; i++)
        {
            ulong x = sharesA[i] + sharesB[i];
            sharesB[len + i] = (x * x) - sharesA[len + i];
        }

        b.WriteRing(sharesB);
        Array.Clear(sharesA);
        Array.Clear(sharesB);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        Share x = inputs[0];
        int len = x.Shape.ElementCount;
        var pair = new ulong[2 * len];
        GateMath.ReadDealerShares(context, keys, pair);
        var mine = new ulong[len];
        ReadOnlySpan<ulong> xs = x.Value.Span;
        for (int i = 0; i < len; i++)
        {
            mine[i] = xs[i] - pair[i];
        }

        ulong[] d = await GateMath.OpenAsync(context, mine, 64, cancellationToken).ConfigureAwait(false);
        var z = new RingTensor(x.Shape);
        Span<ulong> zs = z.Span;
        bool isA = context.IsA;
        for (int i = 0; i < len; i++)
        {
            ulong v = pair[len + i] + (2 * d[i] * pair[i]);
            zs[i] = isA ? v + (d[i] * d[i]) : v;
        }

        Array.Clear(pair);
        return new Share(context.Party, z, 2 * x.FractionalBits);
    }
}

/// <summary>
/// Products of shared matrices X [m, k] and Y [k, n] (or batches [B, m, k] x [B, k, n], one
/// round for the whole batch) with a matrix Beaver triple (A0, B0, C0 = A0 B0 per batch entry).
/// Keys: 16 bytes (A) and B (mk + kn + mn) x 8 bytes (B); online: one round, B (mk + kn) ring
/// elements each way. Local work: three ring GEMMs per batch entry.
/// </summary>
internal sealed class MatMulGate : IGateProtocol
{
    public static readonly MatMulGate Instance = new();

    public void Deal(PlanStep step, AesPrg prg, KeyMaterial a, KeyMaterial b)
    {
        (int batch, int m, int k, int n) = Dims(step);
        int sizeA = batch * m * k, sizeB = batch * k * n, sizeC = batch * m * n;
        var sharesA = new ulong[sizeA + sizeB + sizeC];
        a.WriteBytes(GateMath.SeededShares(prg, sharesA));
        var sharesB = new ulong[sizeA + sizeB + sizeC];
        prg.Fill(sharesB.AsSpan(0, sizeA + sizeB));
        var a0 = new ulong[sizeA];
        var b0T = new ulong[k * n];
        var c0 = new ulong[sizeC];
        for (int i = 0; i < sizeA; i++)
        {
            a0[i] = sharesA[i] + sharesB[i];
        }

        for (int t = 0; t < batch; t++)
        {
            int offB = sizeA + (t * k * n);
            for (int r = 0; r < k; r++)
            {
                for (int c = 0; c < n; c++)
                {
                    b0T[(c * k) + r] = sharesA[offB + (r * n) + c] + sharesB[offB + (r * n) + c];
                }
            }

            Compute.ComputeBackend.Cpu.RingGemm(a0.AsSpan(t * m * k, m * k), b0T, c0.AsSpan(t * m * n, m * n), m, k, n);
        }

        for (int i = 0; i < sizeC; i++)
        {
            sharesB[sizeA + sizeB + i] = c0[i] - sharesA[sizeA + sizeB + i];
        }

        b.WriteRing(sharesB);
        Array.Clear(sharesA);
        Array.Clear(sharesB);
        Array.Clear(a0);
        Array.Clear(b0T);
        Array.Clear(c0);
    }

    public async Task<Share> EvaluateAsync(GateContext context, PlanStep step, StepKeys keys, Share[] inputs, CancellationToken cancellationToken)
    {
        (int batch, int m, int k, int n) = Dims(step);
        int sizeA = batch * m * k, sizeB = batch * k * n, sizeC = batch * m * n;
        var triple = new ulong[sizeA + sizeB + sizeC];
        GateMath.ReadDealerShares(context, keys, triple);
        var mine = new ulong[sizeA + sizeB];
        ReadOnlySpan<ulong> xs = inputs[0].Value.Span, ys = inputs[1].Value.Span;
        for (int i = 0; i < sizeA; i++)
        {
            mine[i] = xs[i] - triple[i];
        }

        for (int i = 0; i < sizeB; i++)
        {
            mine[sizeA + i] = ys[i] - triple[sizeA + i];
        }

        ulong[] de = await GateMath.OpenAsync(context, mine, 64, cancellationToken).ConfigureAwait(false);

        // Per batch entry: Z_p = C0_p + D B0_p + A0_p E (+ D E for party A), each product as GEMM against a transposed right side.
        var z = new RingTensor(step.Output);
        triple.AsSpan(sizeA + sizeB, sizeC).CopyTo(z.Span);
        var tmp = new ulong[m * n];
        for (int t = 0; t < batch; t++)
        {
            ReadOnlySpan<ulong> d = de.AsSpan(t * m * k, m * k);
            ulong[] eT = Transpose(de.AsSpan(sizeA + (t * k * n), k * n), k, n);
            ulong[] b0T = Transpose(triple.AsSpan(sizeA + (t * k * n), k * n), k, n);
            Span<ulong> zt = z.Span.Slice(t * m * n, m * n);
            context.Backend.RingGemm(d, b0T, tmp, m, k, n);
            context.Backend.RingAdd(zt, tmp, zt);
            context.Backend.RingGemm(triple.AsSpan(t * m * k, m * k), eT, tmp, m, k, n);
            context.Backend.RingAdd(zt, tmp, zt);
            if (context.IsA)
            {
                context.Backend.RingGemm(d, eT, tmp, m, k, n);
                context.Backend.RingAdd(zt, tmp, zt);
            }

            Array.Clear(b0T);
        }

        Array.Clear(triple);
        return new Share(context.Party, z, inputs[0].FractionalBits + inputs[1].FractionalBits);
    }

    /// <summary>(batch, m, k, n) of a [m, k] x [k, n] or [B, m, k] x [B, k, n] step.</summary>
    private static (int Batch, int M, int K, int N) Dims(PlanStep step) => step.Inputs[0].Rank == 3
        ? (step.Inputs[0][0], step.Inputs[0][1], step.Inputs[0][2], step.Inputs[1][2])
        : (1, step.Inputs[0][0], step.Inputs[0][1], step.Inputs[1][1]);

    private static ulong[] Transpose(ReadOnlySpan<ulong> matrix, int rows, int cols)
    {
        var t = new ulong[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                t[(c * rows) + r] = matrix[(r * cols) + c];
            }
        }

        return t;
    }
}
