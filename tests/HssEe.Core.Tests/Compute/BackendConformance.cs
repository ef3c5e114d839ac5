using System.Security.Cryptography;
using HssEe.Compute;

namespace HssEe.Core.Tests.Compute;

/// <summary>
/// The checks every <see cref="ComputeBackend"/> must pass: ring GEMM bit-identical to the
/// naive loop, float GEMM within the summation-order error bound, element-wise ring operations
/// equal to the scalar definition for every length (every vector tail), in place or not.
/// Inputs are fresh random values every run; the seed is in every failure message.
/// </summary>
public static class BackendConformance
{
    /// <summary>Odd sizes: below, around and above the vector widths and the register tiles.</summary>
    public static readonly int[] OddSizes = [1, 7, 63, 65, 257];

    /// <summary>Extra shapes: the few-rows (row-dot) path, exact tiles, and shapes that cross every cache block (MC, KC, NC).</summary>
    public static readonly (int M, int K, int N)[] ExtraShapes =
    [
        (2, 33, 5), (3, 17, 9), (3, 1, 4), (4, 16, 48), (8, 16, 24), (16, 32, 96), (5, 300, 3),
        (130, 520, 1000),
    ];

    /// <summary>Degenerate shapes: a zero dimension (k = 0 must give zeros).</summary>
    public static readonly (int M, int K, int N)[] EmptyShapes =
    [
        (0, 0, 0), (0, 5, 7), (5, 0, 7), (5, 7, 0), (0, 0, 3), (3, 0, 0), (1, 0, 1), (65, 0, 63),
    ];

    /// <summary>Every shape the GEMM checks run.</summary>
    public static IEnumerable<(int M, int K, int N)> GemmShapes()
    {
        foreach (int m in OddSizes)
        {
            foreach (int k in OddSizes)
            {
                foreach (int n in OddSizes)
                {
                    yield return (m, k, n);
                }
            }
        }

        foreach (var shape in ExtraShapes)
        {
            yield return shape;
        }

        foreach (var shape in EmptyShapes)
        {
            yield return shape;
        }
    }

    /// <summary>Ring GEMM equals the naive wrap-around loop bit for bit on every shape.</summary>
    /// <param name="backends">Backends to check against one reference.</param>
    public static void RingGemmMatchesNaive(params ComputeBackend[] backends)
    {
        int seed = NewSeed();
        var random = new Random(seed);
        foreach ((int m, int k, int n) in GemmShapes())
        {
            ulong[] a = RandomRing(random, m * k);
            ulong[] w = RandomRing(random, n * k);
            ulong[] expected = NaiveRingGemm(a, w, m, k, n);
            foreach (ComputeBackend backend in backends)
            {
                ulong[] c = RandomRing(random, m * n); // garbage: every element must be overwritten
                backend.RingGemm(a, w, c, m, k, n);
                for (int i = 0; i < c.Length; i++)
                {
                    if (c[i] != expected[i])
                    {
                        Assert.Fail($"{backend.Name}: ring GEMM m={m} k={k} n={n} differs at [{i / n}, {i % n}]: {c[i]:X16} != {expected[i]:X16} (seed {seed})");
                    }
                }
            }
        }
    }

    /// <summary>Float GEMM is within <c>2 k u sum |a w|</c> of a double-precision reference on every shape.</summary>
    /// <param name="backends">Backends to check.</param>
    public static void FloatGemmMatchesNaive(params ComputeBackend[] backends)
    {
        int seed = NewSeed();
        var random = new Random(seed);
        foreach ((int m, int k, int n) in GemmShapes())
        {
            float[] a = RandomFloats(random, m * k);
            float[] w = RandomFloats(random, n * k);
            (double[] expected, double[] magnitude) = NaiveFloatGemm(a, w, m, k, n);
            double unitRoundoff = Math.ScaleB(1, -24);
            foreach (ComputeBackend backend in backends)
            {
                float[] c = new float[m * n];
                c.AsSpan().Fill(float.NaN);
                backend.FloatGemm(a, w, c, m, k, n);
                for (int i = 0; i < c.Length; i++)
                {
                    double tolerance = (2.0 * (k + 1) * unitRoundoff * magnitude[i]) + 1e-30;
                    double error = Math.Abs(c[i] - expected[i]);
                    if (!(error <= tolerance))
                    {
                        Assert.Fail($"{backend.Name}: float GEMM m={m} k={k} n={n} at [{i / n}, {i % n}]: {c[i]} vs {expected[i]} (error {error:E2} > {tolerance:E2}, seed {seed})");
                    }
                }
            }
        }
    }

    /// <summary>
    /// Add, subtract, multiply, scalar multiply and negate equal the scalar definition for
    /// every length 0..256, out of place and in place (destination = x, destination = y).
    /// </summary>
    /// <param name="backend">The backend.</param>
    public static void ElementwiseMatchesScalar(ComputeBackend backend)
    {
        foreach (string op in ElementwiseOperations)
        {
            ElementwiseMatchesScalar(backend, op);
        }
    }

    /// <summary>The element-wise operation names.</summary>
    public static readonly string[] ElementwiseOperations = ["Add", "Subtract", "Multiply", "MultiplyScalar", "Negate"];

    /// <summary>One element-wise operation for every length 0..256, out of place and in place.</summary>
    /// <param name="backend">The backend.</param>
    /// <param name="op">One of <see cref="ElementwiseOperations"/>.</param>
    public static void ElementwiseMatchesScalar(ComputeBackend backend, string op)
    {
        int seed = NewSeed();
        var random = new Random(seed);
        ulong[] scalars = [0, 1, ulong.MaxValue, 1UL << 63, 0x9E3779B97F4A7C15];
        for (int length = 0; length <= 256; length++)
        {
            ulong[] x = RandomRing(random, length);
            ulong[] y = RandomRing(random, length);
            ulong scalar = (length % 7 < scalars.Length) ? scalars[length % 7] : (ulong)random.NextInt64() ^ ((ulong)random.Next() << 33);
            ulong[] expected = new ulong[length];
            for (int i = 0; i < length; i++)
            {
                expected[i] = Reference(op, x[i], y[i], scalar);
            }

            string where = $"{backend.Name}: {op} length {length} (seed {seed})";

            ulong[] xCopy = (ulong[])x.Clone();
            ulong[] yCopy = (ulong[])y.Clone();
            ulong[] destination = RandomRing(random, length);
            Apply(backend, op, x, y, scalar, destination);
            Assert.True(expected.AsSpan().SequenceEqual(destination), $"{where}, out of place");
            Assert.True(x.AsSpan().SequenceEqual(xCopy) && y.AsSpan().SequenceEqual(yCopy), $"{where}, inputs changed");

            ulong[] inPlaceX = (ulong[])x.Clone();
            Apply(backend, op, inPlaceX, y, scalar, inPlaceX);
            Assert.True(expected.AsSpan().SequenceEqual(inPlaceX), $"{where}, destination = x");

            if (op is "Add" or "Subtract" or "Multiply")
            {
                ulong[] inPlaceY = (ulong[])y.Clone();
                Apply(backend, op, x, inPlaceY, scalar, inPlaceY);
                Assert.True(expected.AsSpan().SequenceEqual(inPlaceY), $"{where}, destination = y");

                ulong[] both = (ulong[])x.Clone();
                Apply(backend, op, both, both, scalar, both);
                for (int i = 0; i < length; i++)
                {
                    Assert.True(Reference(op, x[i], x[i], scalar) == both[i], $"{where}, x = y = destination, index {i}");
                }
            }

        }
    }

    /// <summary>The scalar definition of an element-wise operation (wrap-around).</summary>
    /// <param name="op">Operation name.</param>
    /// <param name="x">First operand.</param>
    /// <param name="y">Second operand.</param>
    /// <param name="scalar">Scalar for MultiplyScalar.</param>
    /// <returns>The result mod 2^64.</returns>
    public static ulong Reference(string op, ulong x, ulong y, ulong scalar) => op switch
    {
        "Add" => unchecked(x + y),
        "Subtract" => unchecked(x - y),
        "Multiply" => unchecked(x * y),
        "MultiplyScalar" => unchecked(x * scalar),
        "Negate" => unchecked(0UL - x),
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    /// <summary>Runs the named operation on the backend.</summary>
    /// <param name="backend">The backend.</param>
    /// <param name="op">Operation name.</param>
    /// <param name="x">First operand.</param>
    /// <param name="y">Second operand (ignored by unary operations).</param>
    /// <param name="scalar">Scalar for MultiplyScalar.</param>
    /// <param name="destination">Result.</param>
    public static void Apply(ComputeBackend backend, string op, ulong[] x, ulong[] y, ulong scalar, ulong[] destination)
    {
        switch (op)
        {
            case "Add":
                backend.RingAdd(x, y, destination);
                break;
            case "Subtract":
                backend.RingSubtract(x, y, destination);
                break;
            case "Multiply":
                backend.RingMultiply(x, y, destination);
                break;
            case "MultiplyScalar":
                backend.RingMultiplyScalar(x, scalar, destination);
                break;
            case "Negate":
                backend.RingNegate(x, destination);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(op));
        }
    }

    /// <summary>The naive ring GEMM.</summary>
    /// <param name="a">A, <c>m x k</c>.</param>
    /// <param name="w">W, <c>n x k</c>.</param>
    /// <param name="m">Rows of A.</param>
    /// <param name="k">Depth.</param>
    /// <param name="n">Rows of W.</param>
    /// <returns>C, <c>m x n</c>.</returns>
    public static ulong[] NaiveRingGemm(ulong[] a, ulong[] w, int m, int k, int n)
    {
        var c = new ulong[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                ulong sum = 0;
                for (int p = 0; p < k; p++)
                {
                    sum = unchecked(sum + (a[(i * k) + p] * w[(j * k) + p]));
                }

                c[(i * n) + j] = sum;
            }
        }

        return c;
    }

    /// <summary>The float GEMM in double precision, with <c>sum |a w|</c> per output for the error bound.</summary>
    /// <param name="a">A, <c>m x k</c>.</param>
    /// <param name="w">W, <c>n x k</c>.</param>
    /// <param name="m">Rows of A.</param>
    /// <param name="k">Depth.</param>
    /// <param name="n">Rows of W.</param>
    /// <returns>The reference and the magnitudes.</returns>
    public static (double[] Value, double[] Magnitude) NaiveFloatGemm(float[] a, float[] w, int m, int k, int n)
    {
        var c = new double[m * n];
        var magnitude = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                double abs = 0;
                for (int p = 0; p < k; p++)
                {
                    double product = (double)a[(i * k) + p] * w[(j * k) + p];
                    sum += product;
                    abs += Math.Abs(product);
                }

                c[(i * n) + j] = sum;
                magnitude[(i * n) + j] = abs;
            }
        }

        return (c, magnitude);
    }

    /// <summary>Uniform 64-bit ring elements.</summary>
    /// <param name="random">Source.</param>
    /// <param name="length">Count.</param>
    /// <returns>The elements.</returns>
    public static ulong[] RandomRing(Random random, int length)
    {
        var values = new ulong[length];
        random.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    /// <summary>Floats uniform in [-1, 1).</summary>
    /// <param name="random">Source.</param>
    /// <param name="length">Count.</param>
    /// <returns>The values.</returns>
    public static float[] RandomFloats(Random random, int length)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++)
        {
            values[i] = (random.NextSingle() * 2) - 1;
        }

        return values;
    }

    /// <summary>A fresh seed for this run.</summary>
    /// <returns>The seed.</returns>
    public static int NewSeed() => RandomNumberGenerator.GetInt32(int.MaxValue);
}
