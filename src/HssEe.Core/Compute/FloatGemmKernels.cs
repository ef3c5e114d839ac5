using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace HssEe.Compute;

/// <summary>
/// Float32 GEMM <c>C[m, n] = sum_k A[m, k] * W[n, k]</c>: the blocked driver with the
/// widest accelerated micro-kernel, and a row-dot path for very few rows of A (GEMV).
/// </summary>
internal static unsafe class FloatGemmKernels
{
    /// <summary>Below this many rows of A the row-dot path runs (W is streamed once, unpacked).</summary>
    public const int SmallM = 4;

    /// <summary>Runs the GEMM on validated arguments.</summary>
    /// <param name="a">A, <c>m x k</c>.</param>
    /// <param name="w">W, <c>n x k</c>.</param>
    /// <param name="c">C, <c>m x n</c>.</param>
    /// <param name="m">Rows of A.</param>
    /// <param name="k">Depth.</param>
    /// <param name="n">Rows of W.</param>
    /// <param name="threads">Most threads.</param>
    public static void Run(ReadOnlySpan<float> a, ReadOnlySpan<float> w, Span<float> c, int m, int k, int n, int threads)
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        if (k == 0)
        {
            c.Clear();
            return;
        }

        fixed (float* pa = a)
        fixed (float* pw = w)
        fixed (float* pc = c)
        {
            if (m < SmallM)
            {
                RowDot(pa, pw, pc, m, k, n, threads);
                return;
            }

            switch (GemmDispatch.Current)
            {
                case GemmIsa.Vector512:
                    BlockedGemm<float, FloatKernel512>.Run(pa, pw, pc, m, k, n, threads);
                    break;
                case GemmIsa.Vector256:
                    BlockedGemm<float, FloatKernel256>.Run(pa, pw, pc, m, k, n, threads);
                    break;
                default:
                    BlockedGemm<float, FloatKernelScalar>.Run(pa, pw, pc, m, k, n, threads);
                    break;
            }
        }
    }

    /// <summary>GEMV-like path: every output is a dot product of a row of A and a row of W, four rows of W at a time.</summary>
    private static void RowDot(float* a, float* w, float* c, int m, int k, int n, int threads)
    {
        int groups = (n + 3) / 4;
        if (threads == 1 || (long)m * n * k < GemmDispatch.ParallelThreshold)
        {
            RowDotRange(a, w, c, m, k, n, 0, groups);
            return;
        }

        RowDotParallel((nint)a, (nint)w, (nint)c, m, k, n, groups, threads);
    }

    /// <summary>The row-dot path split into about four chunks of W rows per thread (a separate method, so the one-thread path allocates no closure).</summary>
    private static void RowDotParallel(nint a, nint w, nint c, int m, int k, int n, int groups, int threads)
    {
        int chunks = Math.Min(groups, 4 * threads);
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, chunk =>
            RowDotRange((float*)a, (float*)w, (float*)c, m, k, n, (int)((long)groups * chunk / chunks), (int)((long)groups * (chunk + 1) / chunks)));
    }

    private static void RowDotRange(float* a, float* w, float* c, int m, int k, int n, int group0, int group1)
    {
        float* sums = stackalloc float[4];
        for (int g = group0; g < group1; g++)
        {
            int j = g * 4;
            int rows = Math.Min(4, n - j);
            float* wRow = w + ((nint)j * k);
            for (int i = 0; i < m; i++)
            {
                float* aRow = a + ((nint)i * k);
                if (rows == 4)
                {
                    Dot4(aRow, wRow, k, k, sums);
                }
                else
                {
                    for (int r = 0; r < rows; r++)
                    {
                        sums[r] = Dot1(aRow, wRow + ((nint)r * k), k);
                    }
                }

                float* cRow = c + ((nint)i * n) + j;
                for (int r = 0; r < rows; r++)
                {
                    cRow[r] = sums[r];
                }
            }
        }
    }

    /// <summary>Four dot products of <paramref name="x"/> with consecutive rows of W.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4(float* x, float* w, nint ldw, int k, float* result)
    {
        float* w0 = w;
        float* w1 = w + ldw;
        float* w2 = w + (2 * ldw);
        float* w3 = w + (3 * ldw);
        nint p = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> v0 = Vector512<float>.Zero, v1 = Vector512<float>.Zero, v2 = Vector512<float>.Zero, v3 = Vector512<float>.Zero;
            for (; p <= k - 16; p += 16)
            {
                Vector512<float> xv = Vector512.Load(x + p);
                v0 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w0 + p), v0);
                v1 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w1 + p), v1);
                v2 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w2 + p), v2);
                v3 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w3 + p), v3);
            }

            s0 = Vector512.Sum(v0);
            s1 = Vector512.Sum(v1);
            s2 = Vector512.Sum(v2);
            s3 = Vector512.Sum(v3);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> v0 = Vector256<float>.Zero, v1 = Vector256<float>.Zero, v2 = Vector256<float>.Zero, v3 = Vector256<float>.Zero;
            for (; p <= k - 8; p += 8)
            {
                Vector256<float> xv = Vector256.Load(x + p);
                v0 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w0 + p), v0);
                v1 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w1 + p), v1);
                v2 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w2 + p), v2);
                v3 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w3 + p), v3);
            }

            s0 = Vector256.Sum(v0);
            s1 = Vector256.Sum(v1);
            s2 = Vector256.Sum(v2);
            s3 = Vector256.Sum(v3);
        }

        for (; p < k; p++)
        {
            float xs = x[p];
            s0 += xs * w0[p];
            s1 += xs * w1[p];
            s2 += xs * w2[p];
            s3 += xs * w3[p];
        }

        result[0] = s0;
        result[1] = s1;
        result[2] = s2;
        result[3] = s3;
    }

    /// <summary>One dot product.</summary>
    private static float Dot1(float* x, float* y, int k)
    {
        nint p = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> v = Vector512<float>.Zero;
            for (; p <= k - 16; p += 16)
            {
                v = Vector512.FusedMultiplyAdd(Vector512.Load(x + p), Vector512.Load(y + p), v);
            }

            s = Vector512.Sum(v);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> v = Vector256<float>.Zero;
            for (; p <= k - 8; p += 8)
            {
                v = Vector256.FusedMultiplyAdd(Vector256.Load(x + p), Vector256.Load(y + p), v);
            }

            s = Vector256.Sum(v);
        }

        for (; p < k; p++)
        {
            s += x[p] * y[p];
        }

        return s;
    }
}

/// <summary>Float32 micro-kernel, 8 x 48 (3 x Vector512 columns, 24 FMA accumulators).</summary>
internal unsafe struct FloatKernel512 : IGemmKernel<float>
{
    /// <inheritdoc />
    public static int MR => 8;

    /// <inheritdoc />
    public static int NR => 48;

    /// <inheritdoc />
    public static int KC => 512;

    /// <inheritdoc />
    public static int NC => 240;

    /// <inheritdoc />
    public static int MC => 128;

    /// <summary>Computes one 8 x 48 tile over <paramref name="kc"/> packed depth steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(nint kc, float* a, float* b, float* c, nint ldc, bool accumulate)
    {
        Vector512<float> c00 = Vector512<float>.Zero, c01 = Vector512<float>.Zero, c02 = Vector512<float>.Zero;
        Vector512<float> c10 = Vector512<float>.Zero, c11 = Vector512<float>.Zero, c12 = Vector512<float>.Zero;
        Vector512<float> c20 = Vector512<float>.Zero, c21 = Vector512<float>.Zero, c22 = Vector512<float>.Zero;
        Vector512<float> c30 = Vector512<float>.Zero, c31 = Vector512<float>.Zero, c32 = Vector512<float>.Zero;
        Vector512<float> c40 = Vector512<float>.Zero, c41 = Vector512<float>.Zero, c42 = Vector512<float>.Zero;
        Vector512<float> c50 = Vector512<float>.Zero, c51 = Vector512<float>.Zero, c52 = Vector512<float>.Zero;
        Vector512<float> c60 = Vector512<float>.Zero, c61 = Vector512<float>.Zero, c62 = Vector512<float>.Zero;
        Vector512<float> c70 = Vector512<float>.Zero, c71 = Vector512<float>.Zero, c72 = Vector512<float>.Zero;
        for (; kc > 0; kc--)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> b2 = Vector512.Load(b + 32);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(a0, b2, c02);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(a1, b2, c12);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(a2, b2, c22);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(a3, b2, c32);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            c42 = Vector512.FusedMultiplyAdd(a4, b2, c42);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            c52 = Vector512.FusedMultiplyAdd(a5, b2, c52);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(a6, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(a6, b1, c61);
            c62 = Vector512.FusedMultiplyAdd(a6, b2, c62);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(a7, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(a7, b1, c71);
            c72 = Vector512.FusedMultiplyAdd(a7, b2, c72);
            a += 8;
            b += 48;
        }

        if (accumulate)
        {
            float* r0 = c;
            Vector512.Store(Vector512.Load(r0 + 0) + c00, r0 + 0);
            Vector512.Store(Vector512.Load(r0 + 16) + c01, r0 + 16);
            Vector512.Store(Vector512.Load(r0 + 32) + c02, r0 + 32);
            float* r1 = c + ldc;
            Vector512.Store(Vector512.Load(r1 + 0) + c10, r1 + 0);
            Vector512.Store(Vector512.Load(r1 + 16) + c11, r1 + 16);
            Vector512.Store(Vector512.Load(r1 + 32) + c12, r1 + 32);
            float* r2 = c + 2 * ldc;
            Vector512.Store(Vector512.Load(r2 + 0) + c20, r2 + 0);
            Vector512.Store(Vector512.Load(r2 + 16) + c21, r2 + 16);
            Vector512.Store(Vector512.Load(r2 + 32) + c22, r2 + 32);
            float* r3 = c + 3 * ldc;
            Vector512.Store(Vector512.Load(r3 + 0) + c30, r3 + 0);
            Vector512.Store(Vector512.Load(r3 + 16) + c31, r3 + 16);
            Vector512.Store(Vector512.Load(r3 + 32) + c32, r3 + 32);
            float* r4 = c + 4 * ldc;
            Vector512.Store(Vector512.Load(r4 + 0) + c40, r4 + 0);
            Vector512.Store(Vector512.Load(r4 + 16) + c41, r4 + 16);
            Vector512.Store(Vector512.Load(r4 + 32) + c42, r4 + 32);
            float* r5 = c + 5 * ldc;
            Vector512.Store(Vector512.Load(r5 + 0) + c50, r5 + 0);
            Vector512.Store(Vector512.Load(r5 + 16) + c51, r5 + 16);
            Vector512.Store(Vector512.Load(r5 + 32) + c52, r5 + 32);
            float* r6 = c + 6 * ldc;
            Vector512.Store(Vector512.Load(r6 + 0) + c60, r6 + 0);
            Vector512.Store(Vector512.Load(r6 + 16) + c61, r6 + 16);
            Vector512.Store(Vector512.Load(r6 + 32) + c62, r6 + 32);
            float* r7 = c + 7 * ldc;
            Vector512.Store(Vector512.Load(r7 + 0) + c70, r7 + 0);
            Vector512.Store(Vector512.Load(r7 + 16) + c71, r7 + 16);
            Vector512.Store(Vector512.Load(r7 + 32) + c72, r7 + 32);
        }
        else
        {
            float* r0 = c;
            Vector512.Store(c00, r0 + 0);
            Vector512.Store(c01, r0 + 16);
            Vector512.Store(c02, r0 + 32);
            float* r1 = c + ldc;
            Vector512.Store(c10, r1 + 0);
            Vector512.Store(c11, r1 + 16);
            Vector512.Store(c12, r1 + 32);
            float* r2 = c + 2 * ldc;
            Vector512.Store(c20, r2 + 0);
            Vector512.Store(c21, r2 + 16);
            Vector512.Store(c22, r2 + 32);
            float* r3 = c + 3 * ldc;
            Vector512.Store(c30, r3 + 0);
            Vector512.Store(c31, r3 + 16);
            Vector512.Store(c32, r3 + 32);
            float* r4 = c + 4 * ldc;
            Vector512.Store(c40, r4 + 0);
            Vector512.Store(c41, r4 + 16);
            Vector512.Store(c42, r4 + 32);
            float* r5 = c + 5 * ldc;
            Vector512.Store(c50, r5 + 0);
            Vector512.Store(c51, r5 + 16);
            Vector512.Store(c52, r5 + 32);
            float* r6 = c + 6 * ldc;
            Vector512.Store(c60, r6 + 0);
            Vector512.Store(c61, r6 + 16);
            Vector512.Store(c62, r6 + 32);
            float* r7 = c + 7 * ldc;
            Vector512.Store(c70, r7 + 0);
            Vector512.Store(c71, r7 + 16);
            Vector512.Store(c72, r7 + 32);
        }
    }

    /// <inheritdoc />
    public static void PackB(float* w, nint ldw, int rows, int kc, float* destination)
        => GemmPacking.PackBFloat8x(w, ldw, rows, kc, 48, destination);
}


/// <summary>Float32 micro-kernel, 6 x 16 (2 x Vector256 columns, 12 accumulators: fits 16 registers).</summary>
internal unsafe struct FloatKernel256 : IGemmKernel<float>
{
    /// <inheritdoc />
    public static int MR => 6;

    /// <inheritdoc />
    public static int NR => 16;

    /// <inheritdoc />
    public static int KC => 256;

    /// <inheritdoc />
    public static int NC => 480;

    /// <inheritdoc />
    public static int MC => 120;

    /// <summary>Computes one 6 x 16 tile over <paramref name="kc"/> packed depth steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(nint kc, float* a, float* b, float* c, nint ldc, bool accumulate)
    {
        Vector256<float> c00 = Vector256<float>.Zero, c01 = Vector256<float>.Zero;
        Vector256<float> c10 = Vector256<float>.Zero, c11 = Vector256<float>.Zero;
        Vector256<float> c20 = Vector256<float>.Zero, c21 = Vector256<float>.Zero;
        Vector256<float> c30 = Vector256<float>.Zero, c31 = Vector256<float>.Zero;
        Vector256<float> c40 = Vector256<float>.Zero, c41 = Vector256<float>.Zero;
        Vector256<float> c50 = Vector256<float>.Zero, c51 = Vector256<float>.Zero;
        for (; kc > 0; kc--)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
            Vector256<float> a4 = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(a4, b1, c41);
            Vector256<float> a5 = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(a5, b1, c51);
            a += 6;
            b += 16;
        }

        if (accumulate)
        {
            float* r0 = c;
            Vector256.Store(Vector256.Load(r0 + 0) + c00, r0 + 0);
            Vector256.Store(Vector256.Load(r0 + 8) + c01, r0 + 8);
            float* r1 = c + ldc;
            Vector256.Store(Vector256.Load(r1 + 0) + c10, r1 + 0);
            Vector256.Store(Vector256.Load(r1 + 8) + c11, r1 + 8);
            float* r2 = c + 2 * ldc;
            Vector256.Store(Vector256.Load(r2 + 0) + c20, r2 + 0);
            Vector256.Store(Vector256.Load(r2 + 8) + c21, r2 + 8);
            float* r3 = c + 3 * ldc;
            Vector256.Store(Vector256.Load(r3 + 0) + c30, r3 + 0);
            Vector256.Store(Vector256.Load(r3 + 8) + c31, r3 + 8);
            float* r4 = c + 4 * ldc;
            Vector256.Store(Vector256.Load(r4 + 0) + c40, r4 + 0);
            Vector256.Store(Vector256.Load(r4 + 8) + c41, r4 + 8);
            float* r5 = c + 5 * ldc;
            Vector256.Store(Vector256.Load(r5 + 0) + c50, r5 + 0);
            Vector256.Store(Vector256.Load(r5 + 8) + c51, r5 + 8);
        }
        else
        {
            float* r0 = c;
            Vector256.Store(c00, r0 + 0);
            Vector256.Store(c01, r0 + 8);
            float* r1 = c + ldc;
            Vector256.Store(c10, r1 + 0);
            Vector256.Store(c11, r1 + 8);
            float* r2 = c + 2 * ldc;
            Vector256.Store(c20, r2 + 0);
            Vector256.Store(c21, r2 + 8);
            float* r3 = c + 3 * ldc;
            Vector256.Store(c30, r3 + 0);
            Vector256.Store(c31, r3 + 8);
            float* r4 = c + 4 * ldc;
            Vector256.Store(c40, r4 + 0);
            Vector256.Store(c41, r4 + 8);
            float* r5 = c + 5 * ldc;
            Vector256.Store(c50, r5 + 0);
            Vector256.Store(c51, r5 + 8);
        }
    }

    /// <inheritdoc />
    public static void PackB(float* w, nint ldw, int rows, int kc, float* destination)
        => GemmPacking.PackB(w, ldw, rows, kc, 16, destination);
}


/// <summary>Float32 scalar micro-kernel, 4 x 4.</summary>
internal unsafe struct FloatKernelScalar : IGemmKernel<float>
{
    /// <inheritdoc />
    public static int MR => 4;

    /// <inheritdoc />
    public static int NR => 4;

    /// <inheritdoc />
    public static int KC => 256;

    /// <inheritdoc />
    public static int NC => 256;

    /// <inheritdoc />
    public static int MC => 128;

    /// <summary>Computes one 4 x 4 tile over <paramref name="kc"/> packed depth steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(nint kc, float* a, float* b, float* c, nint ldc, bool accumulate)
    {
        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f;
        float c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
        float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f;
        float c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;
        for (; kc > 0; kc--)
        {
            float b0 = b[0];
            float b1 = b[1];
            float b2 = b[2];
            float b3 = b[3];
            float a0 = a[0];
            c00 += a0 * b0;
            c01 += a0 * b1;
            c02 += a0 * b2;
            c03 += a0 * b3;
            float a1 = a[1];
            c10 += a1 * b0;
            c11 += a1 * b1;
            c12 += a1 * b2;
            c13 += a1 * b3;
            float a2 = a[2];
            c20 += a2 * b0;
            c21 += a2 * b1;
            c22 += a2 * b2;
            c23 += a2 * b3;
            float a3 = a[3];
            c30 += a3 * b0;
            c31 += a3 * b1;
            c32 += a3 * b2;
            c33 += a3 * b3;
            a += 4;
            b += 4;
        }

        if (accumulate)
        {
            float* r0 = c;
            r0[0] += c00;
            r0[1] += c01;
            r0[2] += c02;
            r0[3] += c03;
            float* r1 = c + ldc;
            r1[0] += c10;
            r1[1] += c11;
            r1[2] += c12;
            r1[3] += c13;
            float* r2 = c + 2 * ldc;
            r2[0] += c20;
            r2[1] += c21;
            r2[2] += c22;
            r2[3] += c23;
            float* r3 = c + 3 * ldc;
            r3[0] += c30;
            r3[1] += c31;
            r3[2] += c32;
            r3[3] += c33;
        }
        else
        {
            float* r0 = c;
            r0[0] = c00;
            r0[1] = c01;
            r0[2] = c02;
            r0[3] = c03;
            float* r1 = c + ldc;
            r1[0] = c10;
            r1[1] = c11;
            r1[2] = c12;
            r1[3] = c13;
            float* r2 = c + 2 * ldc;
            r2[0] = c20;
            r2[1] = c21;
            r2[2] = c22;
            r2[3] = c23;
            float* r3 = c + 3 * ldc;
            r3[0] = c30;
            r3[1] = c31;
            r3[2] = c32;
            r3[3] = c33;
        }
    }

    /// <inheritdoc />
    public static void PackB(float* w, nint ldw, int rows, int kc, float* destination)
        => GemmPacking.PackB(w, ldw, rows, kc, 4, destination);
}

