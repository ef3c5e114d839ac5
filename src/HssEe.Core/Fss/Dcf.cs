using System.Runtime.Intrinsics;
using HssEe.Randomness;

namespace HssEe.Fss;

/// <summary>
/// Distributed comparison function (Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar, Rathee,
/// EUROCRYPT 2021, Fig. 3): keys for <c>f(x) = beta if x &lt; alpha else 0</c> on
/// <c>x, alpha in [0, 2^n)</c> with a payload <c>beta</c> of m elements of Z_2^ell; party A's and
/// party B's outputs add up (mod 2^ell) to <c>f(x)</c>, and either key alone is pseudorandom.
/// </summary>
/// <remarks>
/// <para><b>PRG.</b> Seeds are 128-bit blocks; bit 0 of a hashed block is the control bit t and
/// the other 127 bits the child seed. With H the fixed-key MMO hash (<c>FixedKeyAes</c>) and tweaks
/// XORed into the low 64 bits: left child <c>H(s ^ 0)</c>, right child <c>H(s ^ 1)</c>; payload words
/// <c>v</c>: when <c>m*ell &lt;= 64</c> ("packed") one block <c>H(s ^ 2)</c> carries both sides (left:
/// bits 0..63, right: bits 64..127, word j at bit offset <c>j*ell</c>); otherwise each side has
/// <c>B = ceil(m*ell/128)</c> blocks <c>H(s ^ (2 + side*B + j))</c>. The final conversion of the leaf
/// seed uses bits 64..127 of the seed itself (packed) or its left payload stream.</para>
/// <para><b>AES blocks.</b> Evaluation, per level: 1 block for the chosen child seed + 1 payload block
/// (packed) or B blocks: <c>2n</c> blocks in all when packed (128 at n = 64, 80 at n = 40, 32 at n = 16),
/// <c>n(1 + B) + B</c> otherwise. Key generation: <c>6n</c> blocks per key pair when packed
/// (3 per party per level), <c>n(4 + 4B) + 2B</c> otherwise. See <see cref="AesBlocksPerEvaluation"/>.</para>
/// <para><b>Key layout</b> (one key, little-endian): root seed s0 (16 bytes); for each level i = 0..n-1 the
/// seed correction word with the left t-correction in bit 0 (16 bytes); then a bit stream holding, tightly
/// packed, the n*m payload corrections V_cw (ell bits each, level-major), the m words of CW_{n+1} and the
/// n right t-corrections. <b>Size</b>: <c>16(n + 1) + ceil(((n + 1) m ell + n) / 8)</c> bytes, i.e.
/// <c>128(n + 1) + (n + 1) m ell + n</c> bits before byte rounding. The paper's bound with lambda = 128 is
/// <c>n(lambda + 2 + m ell) + lambda + m ell = 128(n + 1) + 2n + (n + 1) m ell</c> bits; this layout is n bits
/// smaller because each left t-correction rides in the unused bit 0 of its seed correction word
/// (seeds carry 127 random bits). Examples (ell = 64, m = 1): n = 64: 1 568 bytes; n = 40: 989 bytes; n = 16: 410 bytes.</para>
/// <para><b>Inputs.</b> Key generation rejects <c>alpha &gt;= 2^n</c>; <c>beta</c> words are reduced mod 2^ell.
/// Evaluation points are masked to their low n bits (they are masked openings reduced mod 2^n).</para>
/// </remarks>
public static class Dcf
{
    /// <summary>Bytes of one DCF key: <c>16(n + 1) + ceil(((n + 1) m ell + n) / 8)</c>.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <returns>The key size in bytes.</returns>
    public static int KeySize(FssKeyParameters parameters)
    {
        parameters.Validate(nameof(parameters));
        return new DcfKeyLayout(parameters).KeySize;
    }

    /// <summary>AES blocks hashed per evaluation: <c>2n</c> when <c>m ell &lt;= 64</c>, else <c>n(1 + B) + B</c> with <c>B = ceil(m ell / 128)</c>.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <returns>Blocks per evaluation.</returns>
    public static int AesBlocksPerEvaluation(FssKeyParameters parameters)
    {
        parameters.Validate(nameof(parameters));
        return new DcfKeyLayout(parameters).BlocksPerEvaluation;
    }

    /// <summary>AES blocks hashed to generate one key pair: <c>6n</c> when <c>m ell &lt;= 64</c>, else <c>n(4 + 4B) + 2B</c>.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <returns>Blocks per key pair.</returns>
    public static int AesBlocksPerKeyGeneration(FssKeyParameters parameters)
    {
        parameters.Validate(nameof(parameters));
        return new DcfKeyLayout(parameters).BlocksPerKeyPair;
    }

    /// <summary>Generates the two keys of one DCF <c>f(x) = beta if x &lt; alpha else 0</c>.</summary>
    /// <param name="parameters">n, ell, m.</param>
    /// <param name="alpha">The threshold, in [0, 2^n).</param>
    /// <param name="beta">The payload: m words (reduced mod 2^ell).</param>
    /// <param name="prg">The dealer's randomness (two 128-bit root seeds are drawn).</param>
    /// <returns>Party A's and party B's keys (collections of one key each).</returns>
    public static (DcfKeyCollection A, DcfKeyCollection B) Generate(FssKeyParameters parameters, ulong alpha, ReadOnlySpan<ulong> beta, AesPrg prg)
    {
        parameters.Validate(nameof(parameters));
        if (beta.Length != parameters.PayloadLength)
        {
            throw new ArgumentException($"beta has {beta.Length} words; the payload length m is {parameters.PayloadLength}.", nameof(beta));
        }

        return GenerateBatch(parameters, [alpha], beta, prg, 1);
    }

    /// <summary>
    /// Generates the keys of <c>alphas.Length</c> DCFs with the same parameters: function k has threshold
    /// <c>alphas[k]</c> and payload <c>betas[k*m .. k*m + m)</c>, or <c>betas[0 .. m)</c> for every k when
    /// <c>betas.Length == m</c>. Seeds come from <paramref name="prg"/>; the trees are built on up to
    /// <paramref name="maxDegreeOfParallelism"/> threads (the output does not depend on the thread count).
    /// </summary>
    /// <param name="parameters">n, ell, m.</param>
    /// <param name="alphas">Thresholds, each in [0, 2^n).</param>
    /// <param name="betas">Payloads: count*m words, or m words shared by every key (reduced mod 2^ell).</param>
    /// <param name="prg">The dealer's randomness (2 * count root seeds are drawn).</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    /// <returns>Party A's and party B's key collections, key k of each belonging to function k.</returns>
    public static (DcfKeyCollection A, DcfKeyCollection B) GenerateBatch(
        FssKeyParameters parameters, ReadOnlySpan<ulong> alphas, ReadOnlySpan<ulong> betas, AesPrg prg, int maxDegreeOfParallelism = -1)
    {
        parameters.Validate(nameof(parameters));
        ArgumentNullException.ThrowIfNull(prg);
        int degree = FssKeyBits.Degree(maxDegreeOfParallelism, nameof(maxDegreeOfParallelism));
        int betaStride = Dcf.CheckBetas(betas.Length, alphas.Length, parameters.PayloadLength, nameof(betas));
        Dcf.CheckAlphas(alphas, parameters, nameof(alphas));
        var lay = new DcfKeyLayout(parameters);
        int count = alphas.Length;
        byte[] keysA = FssKeyCollection.AllocateKeyData(count, lay.KeySize);
        byte[] keysB = FssKeyCollection.AllocateKeyData(count, lay.KeySize);
        GenerateInto(lay, alphas, betas, betaStride, prg, keysA, keysB, degree);
        return (new DcfKeyCollection(Party.A, parameters, count, keysA), new DcfKeyCollection(Party.B, parameters, count, keysB));
    }

    /// <summary>
    /// Like <see cref="GenerateBatch(FssKeyParameters, ReadOnlySpan{ulong}, ReadOnlySpan{ulong}, AesPrg, int)"/>, but writes
    /// the raw key material (the keys back to back, <see cref="KeySize"/> bytes each: the bytes a collection holds)
    /// straight into caller buffers, e.g. a key bundle, with no intermediate collection.
    /// <see cref="DcfKeyCollection.FromKeyMaterial"/> turns such bytes back into keys.
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
        var lay = new DcfKeyLayout(parameters);
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

    /// <summary>
    /// Evaluates key <paramref name="keyIndex"/> at every point of <paramref name="points"/> (each masked to n bits);
    /// the m output words of point i go to <c>outputs[i*m .. i*m + m)</c>.
    /// </summary>
    /// <param name="keys">This party's keys.</param>
    /// <param name="keyIndex">Which key.</param>
    /// <param name="points">Evaluation points.</param>
    /// <param name="outputs">points.Length * m words: this party's shares, reduced mod 2^ell.</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    public static void Evaluate(DcfKeyCollection keys, int keyIndex, ReadOnlySpan<ulong> points, Span<ulong> outputs, int maxDegreeOfParallelism = -1)
    {
        ArgumentNullException.ThrowIfNull(keys);
        keys.CheckKeys(keyIndex, 1, nameof(keyIndex));
        Run(keys, keyIndex, 0, points, outputs, maxDegreeOfParallelism);
    }

    /// <summary>Evaluates key i at <c>points[i]</c> for every key of the collection (the hot path).</summary>
    /// <param name="keys">This party's keys.</param>
    /// <param name="points">One point per key (<c>keys.Count</c>), each masked to n bits.</param>
    /// <param name="outputs"><c>keys.Count * m</c> words: this party's shares, reduced mod 2^ell.</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    public static void EvaluateBatch(DcfKeyCollection keys, ReadOnlySpan<ulong> points, Span<ulong> outputs, int maxDegreeOfParallelism = -1)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (points.Length != keys.Count)
        {
            throw new ArgumentException($"EvaluateBatch needs one point per key: {points.Length} points for {keys.Count} keys.", nameof(points));
        }

        EvaluateBatch(keys, 0, points, outputs, maxDegreeOfParallelism);
    }

    /// <summary>
    /// Evaluates key <c>firstKey + i</c> at <c>points[i]</c> for i in [0, points.Length): a batch over a range of the collection.
    /// Keys are interleaved 32 at a time (64 AES blocks per hash call on the m = 1 path) and chunks of keys run in parallel.
    /// </summary>
    /// <param name="keys">This party's keys.</param>
    /// <param name="firstKey">Key used for <c>points[0]</c>.</param>
    /// <param name="points">Evaluation points, each masked to n bits.</param>
    /// <param name="outputs"><c>points.Length * m</c> words: this party's shares, reduced mod 2^ell.</param>
    /// <param name="maxDegreeOfParallelism">-1 for all processors, else at least 1.</param>
    public static void EvaluateBatch(DcfKeyCollection keys, int firstKey, ReadOnlySpan<ulong> points, Span<ulong> outputs, int maxDegreeOfParallelism = -1)
    {
        ArgumentNullException.ThrowIfNull(keys);
        keys.CheckKeys(firstKey, points.Length, nameof(firstKey));
        Run(keys, firstKey, 1, points, outputs, maxDegreeOfParallelism);
    }

    private static unsafe void GenerateInto(DcfKeyLayout lay, ReadOnlySpan<ulong> alphas, ReadOnlySpan<ulong> betas, int betaStride, AesPrg prg, Span<byte> keysA, Span<byte> keysB, int degree)
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
                    DcfKernels.Generate(lay, (ulong*)alphaAddress, (ulong*)betaAddress, betaStride, seeds, (byte*)keyAddressA, (byte*)keyAddressB, start, length));
            }
        }
        finally
        {
            DcfKernels.Wipe(seeds);
        }
    }

    internal static int CheckBetas(int betaLength, int count, int m, string paramName)
    {
        if ((long)betaLength == (long)count * m)
        {
            return m;
        }

        if (betaLength == m)
        {
            return 0;
        }

        throw new ArgumentException($"betas has {betaLength} words: expected count * m = {(long)count * m} (one payload per key) or m = {m} (one payload for all keys).", paramName);
    }

    internal static void CheckAlphas(ReadOnlySpan<ulong> alphas, FssKeyParameters parameters, string paramName)
    {
        ulong limit = parameters.InputMask;
        for (int k = 0; k < alphas.Length; k++)
        {
            if (alphas[k] > limit)
            {
                throw new ArgumentOutOfRangeException(paramName, $"alpha[{k}] = {alphas[k]} is outside the domain [0, 2^{parameters.InputBits}).");
            }
        }
    }

    private static unsafe void Run(DcfKeyCollection keys, int firstKey, int keyStep, ReadOnlySpan<ulong> points, Span<ulong> outputs, int maxDegreeOfParallelism)
    {
        int degree = FssKeyBits.Degree(maxDegreeOfParallelism, nameof(maxDegreeOfParallelism));
        int m = keys.PayloadLength;
        if ((long)outputs.Length != (long)points.Length * m)
        {
            throw new ArgumentException($"outputs has {outputs.Length} words; {points.Length} points with m = {m} need {(long)points.Length * m}.", nameof(outputs));
        }

        byte[] data = keys.Data;
        DcfKeyLayout lay = keys.Layout;
        Party party = keys.Party;
        fixed (ulong* pp = points)
        fixed (ulong* po = outputs)
        {
            nint pointAddress = (nint)pp, outputAddress = (nint)po;
            FssKeyBits.ForChunks(points.Length, degree, 32, 256, (start, length) =>
                DcfKernels.Evaluate(lay, data, party, firstKey + (start * keyStep), keyStep, (ulong*)pointAddress + start, (ulong*)outputAddress + ((long)start * m), length));
        }
    }
}
