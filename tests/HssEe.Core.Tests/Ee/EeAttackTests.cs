using HssEe.Ee;
using HssEe.Randomness;
using MathNet.Numerics.LinearAlgebra;
using static HssEe.Core.Tests.Ee.EeTestUtil;

namespace HssEe.Core.Tests.Ee;

/// <summary>
/// Key-recovery attacks on EE when the attacker knows the original (public) model weights.
/// </summary>
/// <remarks>
/// This is the documented limitation of EE (DESIGN.md section 2), not a bug: EE hides activations
/// only from servers that do not know the plain model. W' = P_out W P_in^-1 lets anyone holding W
/// recover both permutations by matching rows and columns, and a permuted embedding table is matched
/// row by row (even under a rotation of the hidden space, whose Gram matrix is invariant). The tests
/// show the recovered key decrypting real traffic.
/// </remarks>
public class EeAttackTests
{
    [Fact]
    public void Permutations_of_a_public_linear_layer_are_recovered_by_matching_rows_and_columns()
    {
        const int dIn = 16;
        const int dOut = 24;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("in", EeTransformKind.Permutation, dIn),
            new EeBoundary("out", EeTransformKind.Permutation, dOut)));
        using AesPrg prg = DataPrg(seed);
        float[] w = GaussianF(prg, dOut * dIn); // public weights, distinct entries
        float[] wEnc = (float[])w.Clone();
        key.EncryptWeight(wEnc, "out", "in"); // what the servers see

        // W'[i, j] = W[out(i), in(j)]: a row of W' holds the same multiset as one row of W.
        int[] outSource = MatchBySortedValues(wEnc, w, dOut, dIn, rows: true);
        int[] inSource = MatchBySortedValues(wEnc, w, dOut, dIn, rows: false);
        Assert.True(outSource.SequenceEqual(key.GetTransform<Permutation>("out").CopySourceIndices()), $"output permutation (seed {hex})");
        Assert.True(inSource.SequenceEqual(key.GetTransform<Permutation>("in").CopySourceIndices()), $"input permutation (seed {hex})");

        // The recovered key decrypts the client's encrypted input and the server's output exactly.
        using Permutation recoveredIn = Permutation.FromIndices(inSource);
        using Permutation recoveredOut = Permutation.FromIndices(outSource);
        float[] x = GaussianF(prg, 3 * dIn);
        float[] xEnc = new float[x.Length];
        key.Encrypt("in", x, xEnc);
        float[] stolen = new float[x.Length];
        recoveredIn.ApplyInverse(xEnc, stolen);
        Assert.Equal(x, stolen);

        float[] yEnc = Array.ConvertAll(Linear(ToDouble(xEnc), ToDouble(wEnc), null, 3, dIn, dOut), v => (float)v);
        float[] yStolen = new float[yEnc.Length];
        recoveredOut.ApplyInverse(yEnc, yStolen);
        float[] yClient = new float[yEnc.Length];
        key.Decrypt("out", yEnc, yClient);
        Assert.Equal(yClient, yStolen);
    }

    [Fact]
    public void Vocabulary_permutation_is_recovered_from_a_public_embedding_table()
    {
        const int vocab = 64;
        const int d = 16;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("vocab", EeTransformKind.Permutation, vocab),
            new EeBoundary("hidden", EeTransformKind.Permutation, d)));
        using AesPrg prg = DataPrg(seed);
        float[] table = GaussianF(prg, vocab * d);
        float[] enc = (float[])table.Clone();
        key.EncryptEmbeddingTable(enc, "vocab", "hidden");

        // Row i of the encrypted table is a permutation of row vocab(i) of the public table.
        int[] vocabSource = MatchBySortedValues(enc, table, vocab, d, rows: true);
        Assert.True(vocabSource.SequenceEqual(key.GetTransform<Permutation>("vocab").CopySourceIndices()), $"vocabulary permutation (seed {hex})");

        // The attacker now reads the client's (encrypted) token ids.
        int[] tokens = [5, 17, 42, 0, 63];
        int[] encTokens = new int[tokens.Length];
        key.EncryptTokens("vocab", tokens, encTokens);
        int[] stolen = encTokens.Select(t => vocabSource[t]).ToArray();
        Assert.Equal(tokens, stolen);
    }

    [Fact]
    public void Vocabulary_permutation_and_hidden_rotation_are_recovered_from_a_public_embedding_table()
    {
        // A rotation of the hidden space does not help: it preserves the Gram matrix E E^T, whose sorted
        // rows identify tokens, and then least squares recovers the rotation itself.
        const int vocab = 64;
        const int d = 16;
        var (seed, hex) = FreshSeed();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("vocab", EeTransformKind.Permutation, vocab),
            new EeBoundary("hidden", EeTransformKind.Orthogonal, d)));
        using AesPrg prg = DataPrg(seed);
        float[] table = GaussianF(prg, vocab * d);
        float[] enc = (float[])table.Clone();
        key.EncryptEmbeddingTable(enc, "vocab", "hidden");

        Matrix<double> e = Matrix<double>.Build.DenseOfRowMajor(vocab, d, ToDouble(table));
        Matrix<double> ee = Matrix<double>.Build.DenseOfRowMajor(vocab, d, ToDouble(enc));
        Matrix<double> g = e * e.Transpose();
        Matrix<double> ge = ee * ee.Transpose();
        double[][] sortedG = Enumerable.Range(0, vocab).Select(r => g.Row(r).OrderBy(v => v).ToArray()).ToArray();
        int[] vocabSource = new int[vocab];
        for (int i = 0; i < vocab; i++)
        {
            double[] row = ge.Row(i).OrderBy(v => v).ToArray();
            double[] dist = sortedG.Select(s => s.Zip(row, (a, b) => Math.Abs(a - b)).Max()).ToArray();
            int best = Array.IndexOf(dist, dist.Min());
            double second = dist.Where((_, r) => r != best).Min();
            Assert.True(dist[best] < 1e-3 && second > 100 * dist[best], $"row {i}: best {dist[best]:E2}, second {second:E2} (seed {hex})");
            vocabSource[i] = best;
        }

        Assert.True(vocabSource.SequenceEqual(key.GetTransform<Permutation>("vocab").CopySourceIndices()), $"vocabulary permutation (seed {hex})");

        // Un-permute the rows and solve E Q^T = E' for Q^T by least squares.
        Matrix<double> aligned = Matrix<double>.Build.Dense(vocab, d, (r, c) => ee[Array.IndexOf(vocabSource, r), c]);
        Matrix<double> qT = e.QR().Solve(aligned);
        double[] q = DenseMatrix(key.GetTransform("hidden"));
        double err = MaxAbsDiff(qT.Transpose().ToRowMajorArray(), q);
        Assert.True(err < 1e-5, $"recovered rotation error {err:E2} (seed {hex})");

        // The recovered rotation decrypts an encrypted hidden state.
        float[] h = GaussianF(prg, d);
        float[] he = new float[d];
        key.Encrypt("hidden", h, he);
        double[] stolen = (qT * Vector<double>.Build.DenseOfArray(ToDouble(he))).ToArray();
        AssertClose(ToDouble(h), stolen, 1e-5, $"stolen hidden state (seed {hex})");
    }

    /// <summary>
    /// For every row (or column) of <paramref name="enc"/>, the row (column) of <paramref name="plain"/>
    /// holding the same multiset of values. Both are [rows x cols] row-major.
    /// </summary>
    private static int[] MatchBySortedValues(float[] enc, float[] plain, int nRows, int nCols, bool rows)
    {
        int n = rows ? nRows : nCols;
        int len = rows ? nCols : nRows;
        float[] Line(float[] m, int i) =>
            Enumerable.Range(0, len).Select(t => rows ? m[(i * nCols) + t] : m[(t * nCols) + i]).OrderBy(v => v).ToArray();
        var index = new Dictionary<string, int>();
        for (int i = 0; i < n; i++)
        {
            index.Add(string.Join(",", Line(plain, i).Select(v => BitConverter.SingleToInt32Bits(v))), i);
        }

        int[] source = new int[n];
        for (int i = 0; i < n; i++)
        {
            source[i] = index[string.Join(",", Line(enc, i).Select(v => BitConverter.SingleToInt32Bits(v)))];
        }

        return source;
    }
}
