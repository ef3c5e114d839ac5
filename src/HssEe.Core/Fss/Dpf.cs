using System.Runtime.Intrinsics;
using HssEe.Randomness;

namespace HssEe.Fss;

/// <summary>
/// Distributed point function (Boyle, Gilboa, Ishai, CCS 2016, with early termination): keys for
/// <c>f(x) = beta if x == alpha else 0</c> on <c>x, alpha in [0, 2^n)</c> with a payload <c>beta</c> of m
/// elements of Z_2^ell; party A's and party B's outputs add up (mod 2^ell) to <c>f(x)</c>.
/// </summary>
/// <remarks>
/// <para><b>Early termination.</b> The tree stops d levels early, where d is the largest value
/// <c>&lt;= n</c> with <c>2^d m ell &lt;= 128</c> (d = 0 when <c>m ell &gt; 128</c>): a leaf seed then expands
/// to a vector of 2^d payload slots (slot = the last d input bits), m words of ell bits each, tightly
/// packed in <c>L = ceil(2^d m ell / 128)</c> blocks <c>H(s ^ (2 + j))</c>. Tree nodes use the same PRG as
/// <see cref="Dcf"/>: children <c>H(s ^ 0)</c>, <c>H(s ^ 1)</c>, bit 0 = t, bits 1..127 = seed.</para>
/// <para><b>AES blocks.</b> Evaluation: 1 block per level (the chosen child) + L: <c>(n - d) + L</c>.
/// Full-domain evaluation: <c>2^(n-d+1) - 2 + 2^(n-d) L</c> (2 per tree node, all nodes of a level in one
/// hash call). Key generation: <c>2(2(n - d) + L)</c> per key pair.</para>
/// <para><b>Key layout</b> (one key, little-endian): root seed (16 bytes); n - d seed correction words with the
/// left t-correction in bit 0 (16 bytes each); a bit stream with the leaf correction word (2^d m words of ell
/// bits, slot-major) followed by the n - d right t-corrections. <b>Size</b>:
/// <c>16(n - d + 1) + ceil((2^d m ell + n - d) / 8)</c> bytes. The paper's bound with lambda = 128 is
/// <c>lambda + (n - d)(lambda + 2) + 2^d m ell</c> bits; this layout is n - d bits smaller (left t-corrections
/// ride in bit 0 of the seed corrections). Examples (ell = 64, m = 1, d = 1): n = 16: 274 bytes; n = 64: 1 048 bytes.</para>
/// <para><b>Inputs.</b> Key generation rejects <c>alpha &gt;= 2^n</c>; <c>beta</c> words are reduced mod 2^ell.
/// Evaluation points are masked to their low n bits.</para>
/// </remarks>
public static class Dpf
{
    /// <summary>Largest n accepted by <see cref="EvaluateAll"/>.</summary>
    public const int MaxFullDomainInputBits = 20;

    /// <summary>Bytes of one DPF key: <c>16(n - d + 1) + ceil((2^d m ell + n - d) / 8)</c>.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <returns>The key size in bytes.</returns>
    public static int KeySize(FssKeyParameters parameters)
    {
        parameters.Validate(nameof(parameters));
        return new DpfKeyLayout(parameters).KeySize;
    }

    /// <summary>The early-termination depth d: the largest <c>d &lt;= n</c> with <c>2^d m ell &lt;= 128</c> (0 if none).</summary>
    /// <param name="parameters">The parameters.</param>
    /// <returns>d.</returns>
    public static int EarlyTerminationLevels(FssKeyParameters parameters)
    {
        parameters.Validate(nameof(parameters));
        return new DpfKeyLayout(parameters).LeafBits;
    }

    /// <summary>AES blocks hashed per evaluation: <c>(n - d) + ceil(2^d m ell / 128)</c>.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <returns>Blocks per evaluation.</returns>
    public static int AesBlocksPerEvaluation(FssKeyParameters parameters)
    {
        parameters.Validate(nameof(parameters));
        return new DpfKeyLayout(parameters).BlocksPerEvaluation;
    }

    /// <summary>Generates the two keys of one DPF <c>f(x) = beta if x == alpha else 0</c>.</summary>
    /// <param name="parameters">n, ell, m.</param>
    /// <param name="alpha">The special point, in [0, 2^n).</param>
    /// <param name="beta">The payload: m words (reduced mod 2^ell).</param>
    /// <param name="prg">The dealer's randomness.</param>
    /// <returns>Party A's and party B's keys (collections of one key each).</returns>
    public static (DpfKeyCollection A, DpfKeyCollection B) Generate(FssKeyParameters parameters, ulong alpha, ReadOnlySpan<ulong> beta, AesPrg prg)
    {
        parameters.Validate(nameof(parameters));
        if (beta.Length != parameters.PayloadLength)
        {
            throw new ArgumentException($"beta has {beta.Length} words; the payload length m is {parameters.PayloadLength}.", nameof(beta));
        }

        return GenerateBatch(parameters, [alpha], beta, prg, 1);
    }

    /// <summary>
    /// Generates the keys of <c>alphas.Length</c> DPFs with the same parameters: function k has point
    /// <c>alphas[k]</c> and payload <c>betas[k*m .. k*m + m)</c>, or <c>betas[0 .. m)</c> for every k when
    /// <c>betas.Length == m</c>.
    /// </summary>
    /// <param name="parameters">n, ell, m.</param>
    /// <param name="alphas">Special points, each in [0, 2^n).</param>
    /// <param name="betas">Payloads: count*m words, or m words shared by every key (reduced mod 2^ell).</param>
    /// <param name="prg">The dealer's randomness (2 * count root seeds are drawn).</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    /// <returns>Party A's and party B's key collections.</returns>
    public static (DpfKeyCollection A, DpfKeyCollection B) GenerateBatch(
        FssKeyParameters parameters, ReadOnlySpan<ulong> alphas, ReadOnlySpan<ulong> betas, AesPrg prg, int maxDegreeOfParallelism = -1)
    {
        parameters.Validate(nameof(parameters));
        ArgumentNullException.ThrowIfNull(prg);
        int degree = FssKeyBits.Degree(maxDegreeOfParallelism, nameof(maxDegreeOfParallelism));
        int betaStride = Dcf.CheckBetas(betas.Length, alphas.Length, parameters.PayloadLength, nameof(betas));
        Dcf.CheckAlphas(alphas, parameters, nameof(alphas));
        var lay = new DpfKeyLayout(parameters);
        int count = alphas.Length;
        byte[] keysA = FssKeyCollection.AllocateKeyData(count, lay.KeySize);
        byte[] keysB = FssKeyCollection.AllocateKeyData(count, lay.KeySize);
        GenerateInto(lay, alphas, betas, betaStride, prg, keysA, keysB, degree);
        return (new DpfKeyCollection(Party.A, parameters, count, keysA), new DpfKeyCollection(Party.B, parameters, count, keysB));
    }

    /// <summary>
    /// Like <see cref="GenerateBatch(FssKeyParameters, ReadOnlySpan{ulong}, ReadOnlySpan{ulong}, AesPrg, int)"/>, but writes
    /// the raw key material (the keys back to back, <see cref="KeySize"/> bytes each: the bytes a collection holds)
    /// straight into caller buffers, e.g. a key bundle, with no intermediate collection.
    /// <see cref="DpfKeyCollection.FromKeyMaterial"/> turns such bytes back into keys.
    /// </summary>
    /// <param name="parameters">n, ell, m.</param>
    /// <param name="alphas">One point per key, each in [0, 2^n).</param>
    /// <param name="betas">Payloads: count*m words, or m words shared by every key (reduced mod 2^ell).</param>
    /// <param name="prg">The dealer's randomness (2 * count root seeds are drawn).</param>
    /// <param name="keysA">Party A's key material: exactly <c>count * KeySize(parameters)</c> bytes (overwritten).</param>
    /// <param name="keysB">Party B's key material, same length, not overlapping <paramref name="keysA"/>.</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    public static void GenerateBatch(
        FssKeyParameters parameters, ReadOnlySpan<ulong> alphas, ReadOnlySpan<ulong> betas, AesPrg prg, Span<byte> keysA, Span<byte> keysB, int maxDegreeOfParallelism = -1)
    {
        parameters.Validate(nameof(parameters));
        ArgumentNullException.ThrowIfNull(prg);
        int degree = FssKeyBits.Degree(maxDegreeOfParallelism, nameof(maxDegreeOfParallelism));
        int betaStride = Dcf.CheckBetas(betas.Length, alphas.Length, parameters.PayloadLength, nameof(betas));
        Dcf.CheckAlphas(alphas, parameters, nameof(alphas));
        var lay = new DpfKeyLayout(parameters);
        long needed = (long)alphas.Length * lay.KeySize;
        if (keysA.Length != needed || keysB.Length != needed)
        {
            throw new ArgumentException($"Key buffers hold {keysA.Length} and {keysB.Length} bytes; {alphas.Length} keys of {lay.KeySize} bytes need {needed} each.", nameof(keysA));
        }

        if (keysA.Overlaps(keysB))
        {
            throw new ArgumentException("The key buffers of party A and party B overlap.", nameof(keysB));
        }

        keysA.Clear();
        keysB.Clear();
        GenerateInto(lay, alphas, betas, betaStride, prg, keysA, keysB, degree);
    }

    /// <summary>Evaluates key <paramref name="keyIndex"/> at every point (masked to n bits); m words per point.</summary>
    /// <param name="keys">This party's keys.</param>
    /// <param name="keyIndex">Which key.</param>
    /// <param name="points">Evaluation points.</param>
    /// <param name="outputs">points.Length * m words: this party's shares, reduced mod 2^ell.</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    public static void Evaluate(DpfKeyCollection keys, int keyIndex, ReadOnlySpan<ulong> points, Span<ulong> outputs, int maxDegreeOfParallelism = -1)
    {
        ArgumentNullException.ThrowIfNull(keys);
        keys.CheckKeys(keyIndex, 1, nameof(keyIndex));
        Run(keys, keyIndex, 0, points, outputs, maxDegreeOfParallelism);
    }

    /// <summary>Evaluates key i at <c>points[i]</c> for every key of the collection.</summary>
    /// <param name="keys">This party's keys.</param>
    /// <param name="points">One point per key, each masked to n bits.</param>
    /// <param name="outputs"><c>keys.Count * m</c> words: this party's shares, reduced mod 2^ell.</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    public static void EvaluateBatch(DpfKeyCollection keys, ReadOnlySpan<ulong> points, Span<ulong> outputs, int maxDegreeOfParallelism = -1)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (points.Length != keys.Count)
        {
            throw new ArgumentException($"EvaluateBatch needs one point per key: {points.Length} points for {keys.Count} keys.", nameof(points));
        }

        EvaluateBatch(keys, 0, points, outputs, maxDegreeOfParallelism);
    }

    /// <summary>Evaluates key <c>firstKey + i</c> at <c>points[i]</c>; keys interleaved 32 at a time per hash call, chunks in parallel.</summary>
    /// <param name="keys">This party's keys.</param>
    /// <param name="firstKey">Key used for <c>points[0]</c>.</param>
    /// <param name="points">Evaluation points, each masked to n bits.</param>
    /// <param name="outputs"><c>points.Length * m</c> words: this party's shares, reduced mod 2^ell.</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    public static void EvaluateBatch(DpfKeyCollection keys, int firstKey, ReadOnlySpan<ulong> points, Span<ulong> outputs, int maxDegreeOfParallelism = -1)
    {
        ArgumentNullException.ThrowIfNull(keys);
        keys.CheckKeys(firstKey, points.Length, nameof(firstKey));
        Run(keys, firstKey, 1, points, outputs, maxDegreeOfParallelism);
    }

    /// <summary>
    /// Full-domain evaluation of one key (n &lt;= <see cref="MaxFullDomainInputBits"/>): <c>outputs[x*m + j]</c> is this
    /// party's share of word j of <c>f(x)</c> for every x in [0, 2^n).
    /// </summary>
    /// <param name="keys">This party's keys.</param>
    /// <param name="keyIndex">Which key.</param>
    /// <param name="outputs"><c>2^n * m</c> words.</param>
    public static unsafe void EvaluateAll(DpfKeyCollection keys, int keyIndex, Span<ulong> outputs)
    {
        ArgumentNullException.ThrowIfNull(keys);
        keys.CheckKeys(keyIndex, 1, nameof(keyIndex));
        CheckFullDomain(keys, 1, outputs.Length);
        fixed (ulong* po = outputs)
        {
            DpfKernels.EvaluateAll(keys.Layout, keys.Data, keys.Party, keyIndex, po);
        }
    }

    /// <summary>Full-domain evaluation of every key: key k's table is <c>outputs[k * 2^n * m ..]</c>; keys run in parallel.</summary>
    /// <param name="keys">This party's keys (n &lt;= <see cref="MaxFullDomainInputBits"/>).</param>
    /// <param name="outputs"><c>keys.Count * 2^n * m</c> words.</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    public static unsafe void EvaluateAllBatch(DpfKeyCollection keys, Span<ulong> outputs, int maxDegreeOfParallelism = -1)
    {
        ArgumentNullException.ThrowIfNull(keys);
        int degree = FssKeyBits.Degree(maxDegreeOfParallelism, nameof(maxDegreeOfParallelism));
        long perKey = CheckFullDomain(keys, keys.Count, outputs.Length);
        byte[] data = keys.Data;
        DpfKeyLayout lay = keys.Layout;
        Party party = keys.Party;
        fixed (ulong* po = outputs)
        {
            nint address = (nint)po;
            FssKeyBits.ForChunks(keys.Count, degree, 1, 1, (start, length) =>
            {
                for (int k = start; k < start + length; k++)
                {
                    DpfKernels.EvaluateAll(lay, data, party, k, (ulong*)address + (k * perKey));
                }
            });
        }
    }

    private static unsafe void GenerateInto(DpfKeyLayout lay, ReadOnlySpan<ulong> alphas, ReadOnlySpan<ulong> betas, int betaStride, AesPrg prg, Span<byte> keysA, Span<byte> keysB, int degree)
    {
        int count = alphas.Length;
        Vector128<byte>[] seeds = DcfKernels.DrawSeeds(prg, count);
        try
        {
            fixed (ulong* pa = alphas)
            fixed (ulong* pb = betas)
            fixed (byte* ka = keysA)
            fixed (byte* kb = keysB)
            {
                nint alphaAddress = (nint)pa, betaAddress = (nint)pb, keyAddressA = (nint)ka, keyAddressB = (nint)kb;
                FssKeyBits.ForChunks(count, degree, 1, 64, (start, length) =>
                    DpfKernels.Generate(lay, (ulong*)alphaAddress, (ulong*)betaAddress, betaStride, seeds, (byte*)keyAddressA, (byte*)keyAddressB, start, length));
            }
        }
        finally
        {
            DcfKernels.Wipe(seeds);
        }
    }

    private static long CheckFullDomain(DpfKeyCollection keys, int count, int outputLength)
    {
        if (keys.InputBits > MaxFullDomainInputBits)
        {
            throw new ArgumentException($"Full-domain evaluation supports n <= {MaxFullDomainInputBits}; these keys have n = {keys.InputBits}.", nameof(keys));
        }

        long perKey = (1L << keys.InputBits) * keys.PayloadLength;
        if (outputLength != perKey * count)
        {
            throw new ArgumentException($"outputs has {outputLength} words; {count} key(s) over 2^{keys.InputBits} points with m = {keys.PayloadLength} need {perKey * count}.", "outputs");
        }

        return perKey;
    }

    private static unsafe void Run(DpfKeyCollection keys, int firstKey, int keyStep, ReadOnlySpan<ulong> points, Span<ulong> outputs, int maxDegreeOfParallelism)
    {
        int degree = FssKeyBits.Degree(maxDegreeOfParallelism, nameof(maxDegreeOfParallelism));
        int m = keys.PayloadLength;
        if ((long)outputs.Length != (long)points.Length * m)
        {
            throw new ArgumentException($"outputs has {outputs.Length} words; {points.Length} points with m = {m} need {(long)points.Length * m}.", nameof(outputs));
        }

        byte[] data = keys.Data;
        DpfKeyLayout lay = keys.Layout;
        Party party = keys.Party;
        fixed (ulong* pp = points)
        fixed (ulong* po = outputs)
        {
            nint pointAddress = (nint)pp, outputAddress = (nint)po;
            FssKeyBits.ForChunks(points.Length, degree, 32, 512, (start, length) =>
                DpfKernels.Evaluate(lay, data, party, firstKey + (start * keyStep), keyStep, (ulong*)pointAddress + start, (ulong*)outputAddress + ((long)start * m), length));
        }
    }
}
