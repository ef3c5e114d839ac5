using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace HssEe.Compute;

/// <summary>
/// Ring GEMM <c>C[m, n] = sum_k A[m, k] * W[n, k] mod 2^64</c>: the blocked driver with the
/// widest accelerated micro-kernel, and a row-dot path for very few rows of A (GEMV).
/// </summary>
internal static unsafe class RingGemmKernels
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
    public static void Run(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> w, Span<ulong> c, int m, int k, int n, int threads)
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

        fixed (ulong* pa = a)
        fixed (ulong* pw = w)
        fixed (ulong* pc = c)
        {
            if (m < SmallM)
            {
                RowDot(pa, pw, pc, m, k, n, threads);
                return;
            }

            switch (GemmDispatch.Current)
            {
                case GemmIsa.Vector512:
                    BlockedGemm<ulong, RingKernel512>.Run(pa, pw, pc, m, k, n, threads);
                    break;
                case GemmIsa.Vector256:
                    BlockedGemm<ulong, RingKernel256>.Run(pa, pw, pc, m, k, n, threads);
                    break;
                default:
                    BlockedGemm<ulong, RingKernelScalar>.Run(pa, pw, pc, m, k, n, threads);
                    break;
            }
        }
    }

    /// <summary>GEMV-like path: every output is a dot product of a row of A and a row of W, four rows of W at a time.</summary>
    private static void RowDot(ulong* a, ulong* w, ulong* c, int m, int k, int n, int threads)
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
            RowDotRange((ulong*)a, (ulong*)w, (ulong*)c, m, k, n, (int)((long)groups * chunk / chunks), (int)((long)groups * (chunk + 1) / chunks)));
    }

    private static void RowDotRange(ulong* a, ulong* w, ulong* c, int m, int k, int n, int group0, int group1)
    {
        ulong* sums = stackalloc ulong[4];
        for (int g = group0; g < group1; g++)
        {
            int j = g * 4;
            int rows = Math.Min(4, n - j);
            ulong* wRow = w + ((nint)j * k);
            for (int i = 0; i < m; i++)
            {
                ulong* aRow = a + ((nint)i * k);
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

                ulong* cRow = c + ((nint)i * n) + j;
                for (int r = 0; r < rows; r++)
                {
                    cRow[r] = sums[r];
                }
            }
        }
    }

    /// <summary>Four dot products of <paramref name="x"/> with consecutive rows of W.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4(ulong* x, ulong* w, nint ldw, int k, ulong* result)
    {
        ulong* w0 = w;
        ulong* w1 = w + ldw;
        ulong* w2 = w + (2 * ldw);
        ulong* w3 = w + (3 * ldw);
        nint p = 0;
        ulong s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<ulong> v0 = Vector512<ulong>.Zero, v1 = Vector512<ulong>.Zero, v2 = Vector512<ulong>.Zero, v3 = Vector512<ulong>.Zero;
            for (; p <= k - 8; p += 8)
            {
                Vector512<ulong> xv = Vector512.Load(x + p);
                v0 += xv * Vector512.Load(w0 + p);
                v1 += xv * Vector512.Load(w1 + p);
                v2 += xv * Vector512.Load(w2 + p);
                v3 += xv * Vector512.Load(w3 + p);
            }

            s0 = Vector512.Sum(v0);
            s1 = Vector512.Sum(v1);
            s2 = Vector512.Sum(v2);
            s3 = Vector512.Sum(v3);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<ulong> v0 = Vector256<ulong>.Zero, v1 = Vector256<ulong>.Zero, v2 = Vector256<ulong>.Zero, v3 = Vector256<ulong>.Zero;
            for (; p <= k - 4; p += 4)
            {
                Vector256<ulong> xv = Vector256.Load(x + p);
                v0 += xv * Vector256.Load(w0 + p);
                v1 += xv * Vector256.Load(w1 + p);
                v2 += xv * Vector256.Load(w2 + p);
                v3 += xv * Vector256.Load(w3 + p);
            }

            s0 = Vector256.Sum(v0);
            s1 = Vector256.Sum(v1);
            s2 = Vector256.Sum(v2);
            s3 = Vector256.Sum(v3);
        }

        for (; p < k; p++)
        {
            ulong xs = x[p];
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
    private static ulong Dot1(ulong* x, ulong* y, int k)
    {
        nint p = 0;
        ulong s = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<ulong> v = Vector512<ulong>.Zero;
            for (; p <= k - 8; p += 8)
            {
                v += Vector512.Load(x + p) * Vector512.Load(y + p);
            }

            s = Vector512.Sum(v);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<ulong> v = Vector256<ulong>.Zero;
            for (; p <= k - 4; p += 4)
            {
                v += Vector256.Load(x + p) * Vector256.Load(y + p);
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

/// <summary>Ring micro-kernel, 8 x 24 (3 x Vector512 columns, 24 accumulators; vpmullq + vpaddq).</summary>
internal unsafe struct RingKernel512 : IGemmKernel<ulong>
{
    /// <inheritdoc />
    public static int MR => 8;

    /// <inheritdoc />
    public static int NR => 24;

    /// <inheritdoc />
    public static int KC => 512;

    /// <inheritdoc />
    public static int NC => 240;

    /// <inheritdoc />
    public static int MC => 128;

    /// <summary>Computes one 8 x 24 tile over <paramref name="kc"/> packed depth steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(nint kc, ulong* a, ulong* b, ulong* c, nint ldc, bool accumulate)
    {
        Vector512<ulong> c00 = Vector512<ulong>.Zero, c01 = Vector512<ulong>.Zero, c02 = Vector512<ulong>.Zero;
        Vector512<ulong> c10 = Vector512<ulong>.Zero, c11 = Vector512<ulong>.Zero, c12 = Vector512<ulong>.Zero;
        Vector512<ulong> c20 = Vector512<ulong>.Zero, c21 = Vector512<ulong>.Zero, c22 = Vector512<ulong>.Zero;
        Vector512<ulong> c30 = Vector512<ulong>.Zero, c31 = Vector512<ulong>.Zero, c32 = Vector512<ulong>.Zero;
        Vector512<ulong> c40 = Vector512<ulong>.Zero, c41 = Vector512<ulong>.Zero, c42 = Vector512<ulong>.Zero;
        Vector512<ulong> c50 = Vector512<ulong>.Zero, c51 = Vector512<ulong>.Zero, c52 = Vector512<ulong>.Zero;
        Vector512<ulong> c60 = Vector512<ulong>.Zero, c61 = Vector512<ulong>.Zero, c62 = Vector512<ulong>.Zero;
        Vector512<ulong> c70 = Vector512<ulong>.Zero, c71 = Vector512<ulong>.Zero, c72 = Vector512<ulong>.Zero;
        for (; kc > 0; kc--)
        {
            Vector512<ulong> b0 = Vector512.Load(b + 0);
            Vector512<ulong> b1 = Vector512.Load(b + 8);
            Vector512<ulong> b2 = Vector512.Load(b + 16);
            Vector512<ulong> a0 = Vector512.Create(a[0]);
            c00 += a0 * b0;
            c01 += a0 * b1;
            c02 += a0 * b2;
            Vector512<ulong> a1 = Vector512.Create(a[1]);
            c10 += a1 * b0;
            c11 += a1 * b1;
            c12 += a1 * b2;
            Vector512<ulong> a2 = Vector512.Create(a[2]);
            c20 += a2 * b0;
            c21 += a2 * b1;
            c22 += a2 * b2;
            Vector512<ulong> a3 = Vector512.Create(a[3]);
            c30 += a3 * b0;
            c31 += a3 * b1;
            c32 += a3 * b2;
            Vector512<ulong> a4 = Vector512.Create(a[4]);
            c40 += a4 * b0;
            c41 += a4 * b1;
            c42 += a4 * b2;
            Vector512<ulong> a5 = Vector512.Create(a[5]);
            c50 += a5 * b0;
            c51 += a5 * b1;
            c52 += a5 * b2;
            Vector512<ulong> a6 = Vector512.Create(a[6]);
            c60 += a6 * b0;
            c61 += a6 * b1;
            c62 += a6 * b2;
            Vector512<ulong> a7 = Vector512.Create(a[7]);
            c70 += a7 * b0;
            c71 += a7 * b1;
            c72 += a7 * b2;
            a += 8;
            b += 24;
        }

        if (accumulate)
        {
            ulong* r0 = c;
            Vector512.Store(Vector512.Load(r0 + 0) + c00, r0 + 0);
            Vector512.Store(Vector512.Load(r0 + 8) + c01, r0 + 8);
            Vector512.Store(Vector512.Load(r0 + 16) + c02, r0 + 16);
            ulong* r1 = c + ldc;
            Vector512.Store(Vector512.Load(r1 + 0) + c10, r1 + 0);
            Vector512.Store(Vector512.Load(r1 + 8) + c11, r1 + 8);
            Vector512.Store(Vector512.Load(r1 + 16) + c12, r1 + 16);
            ulong* r2 = c + 2 * ldc;
            Vector512.Store(Vector512.Load(r2 + 0) + c20, r2 + 0);
            Vector512.Store(Vector512.Load(r2 + 8) + c21, r2 + 8);
            Vector512.Store(Vector512.Load(r2 + 16) + c22, r2 + 16);
            ulong* r3 = c + 3 * ldc;
            Vector512.Store(Vector512.Load(r3 + 0) + c30, r3 + 0);
            Vector512.Store(Vector512.Load(r3 + 8) + c31, r3 + 8);
            Vector512.Store(Vector512.Load(r3 + 16) + c32, r3 + 16);
            ulong* r4 = c + 4 * ldc;
            Vector512.Store(Vector512.Load(r4 + 0) + c40, r4 + 0);
            Vector512.Store(Vector512.Load(r4 + 8) + c41, r4 + 8);
            Vector512.Store(Vector512.Load(r4 + 16) + c42, r4 + 16);
            ulong* r5 = c + 5 * ldc;
            Vector512.Store(Vector512.Load(r5 + 0) + c50, r5 + 0);
            Vector512.Store(Vector512.Load(r5 + 8) + c51, r5 + 8);
            Vector512.Store(Vector512.Load(r5 + 16) + c52, r5 + 16);
            ulong* r6 = c + 6 * ldc;
            Vector512.Store(Vector512.Load(r6 + 0) + c60, r6 + 0);
            Vector512.Store(Vector512.Load(r6 + 8) + c61, r6 + 8);
            Vector512.Store(Vector512.Load(r6 + 16) + c62, r6 + 16);
            ulong* r7 = c + 7 * ldc;
            Vector512.Store(Vector512.Load(r7 + 0) + c70, r7 + 0);
            Vector512.Store(Vector512.Load(r7 + 8) + c71, r7 + 8);
            Vector512.Store(Vector512.Load(r7 + 16) + c72, r7 + 16);
        }
        else
        {
            ulong* r0 = c;
            Vector512.Store(c00, r0 + 0);
            Vector512.Store(c01, r0 + 8);
            Vector512.Store(c02, r0 + 16);
            ulong* r1 = c + ldc;
            Vector512.Store(c10, r1 + 0);
            Vector512.Store(c11, r1 + 8);
            Vector512.Store(c12, r1 + 16);
            ulong* r2 = c + 2 * ldc;
            Vector512.Store(c20, r2 + 0);
            Vector512.Store(c21, r2 + 8);
            Vector512.Store(c22, r2 + 16);
            ulong* r3 = c + 3 * ldc;
            Vector512.Store(c30, r3 + 0);
            Vector512.Store(c31, r3 + 8);
            Vector512.Store(c32, r3 + 16);
            ulong* r4 = c + 4 * ldc;
            Vector512.Store(c40, r4 + 0);
            Vector512.Store(c41, r4 + 8);
            Vector512.Store(c42, r4 + 16);
            ulong* r5 = c + 5 * ldc;
            Vector512.Store(c50, r5 + 0);
            Vector512.Store(c51, r5 + 8);
            Vector512.Store(c52, r5 + 16);
            ulong* r6 = c + 6 * ldc;
            Vector512.Store(c60, r6 + 0);
            Vector512.Store(c61, r6 + 8);
            Vector512.Store(c62, r6 + 16);
            ulong* r7 = c + 7 * ldc;
            Vector512.Store(c70, r7 + 0);
            Vector512.Store(c71, r7 + 8);
            Vector512.Store(c72, r7 + 16);
        }
    }

    /// <inheritdoc />
    public static void PackB(ulong* w, nint ldw, int rows, int kc, ulong* destination)
        => GemmPacking.PackBUInt648x(w, ldw, rows, kc, 24, destination);
}


/// <summary>Ring micro-kernel, 4 x 12 (3 x Vector256 columns, 12 accumulators).</summary>
internal unsafe struct RingKernel256 : IGemmKernel<ulong>
{
    /// <inheritdoc />
    public static int MR => 4;

    /// <inheritdoc />
    public static int NR => 12;

    /// <inheritdoc />
    public static int KC => 256;

    /// <inheritdoc />
    public static int NC => 240;

    /// <inheritdoc />
    public static int MC => 128;

    /// <summary>Computes one 4 x 12 tile over <paramref name="kc"/> packed depth steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(nint kc, ulong* a, ulong* b, ulong* c, nint ldc, bool accumulate)
    {
        Vector256<ulong> c00 = Vector256<ulong>.Zero, c01 = Vector256<ulong>.Zero, c02 = Vector256<ulong>.Zero;
        Vector256<ulong> c10 = Vector256<ulong>.Zero, c11 = Vector256<ulong>.Zero, c12 = Vector256<ulong>.Zero;
        Vector256<ulong> c20 = Vector256<ulong>.Zero, c21 = Vector256<ulong>.Zero, c22 = Vector256<ulong>.Zero;
        Vector256<ulong> c30 = Vector256<ulong>.Zero, c31 = Vector256<ulong>.Zero, c32 = Vector256<ulong>.Zero;
        for (; kc > 0; kc--)
        {
            Vector256<ulong> b0 = Vector256.Load(b + 0);
            Vector256<ulong> b1 = Vector256.Load(b + 4);
            Vector256<ulong> b2 = Vector256.Load(b + 8);
            Vector256<ulong> a0 = Vector256.Create(a[0]);
            c00 += a0 * b0;
            c01 += a0 * b1;
            c02 += a0 * b2;
            Vector256<ulong> a1 = Vector256.Create(a[1]);
            c10 += a1 * b0;
            c11 += a1 * b1;
            c12 += a1 * b2;
            Vector256<ulong> a2 = Vector256.Create(a[2]);
            c20 += a2 * b0;
            c21 += a2 * b1;
            c22 += a2 * b2;
            Vector256<ulong> a3 = Vector256.Create(a[3]);
            c30 += a3 * b0;
            c31 += a3 * b1;
            c32 += a3 * b2;
            a += 4;
            b += 12;
        }

        if (accumulate)
        {
            ulong* r0 = c;
            Vector256.Store(Vector256.Load(r0 + 0) + c00, r0 + 0);
            Vector256.Store(Vector256.Load(r0 + 4) + c01, r0 + 4);
            Vector256.Store(Vector256.Load(r0 + 8) + c02, r0 + 8);
            ulong* r1 = c + ldc;
            Vector256.Store(Vector256.Load(r1 + 0) + c10, r1 + 0);
            Vector256.Store(Vector256.Load(r1 + 4) + c11, r1 + 4);
            Vector256.Store(Vector256.Load(r1 + 8) + c12, r1 + 8);
            ulong* r2 = c + 2 * ldc;
            Vector256.Store(Vector256.Load(r2 + 0) + c20, r2 + 0);
            Vector256.Store(Vector256.Load(r2 + 4) + c21, r2 + 4);
            Vector256.Store(Vector256.Load(r2 + 8) + c22, r2 + 8);
            ulong* r3 = c + 3 * ldc;
            Vector256.Store(Vector256.Load(r3 + 0) + c30, r3 + 0);
            Vector256.Store(Vector256.Load(r3 + 4) + c31, r3 + 4);
            Vector256.Store(Vector256.Load(r3 + 8) + c32, r3 + 8);
        }
        else
        {
            ulong* r0 = c;
            Vector256.Store(c00, r0 + 0);
            Vector256.Store(c01, r0 + 4);
            Vector256.Store(c02, r0 + 8);
            ulong* r1 = c + ldc;
            Vector256.Store(c10, r1 + 0);
            Vector256.Store(c11, r1 + 4);
            Vector256.Store(c12, r1 + 8);
            ulong* r2 = c + 2 * ldc;
            Vector256.Store(c20, r2 + 0);
            Vector256.Store(c21, r2 + 4);
            Vector256.Store(c22, r2 + 8);
            ulong* r3 = c + 3 * ldc;
            Vector256.Store(c30, r3 + 0);
            Vector256.Store(c31, r3 + 4);
            Vector256.Store(c32, r3 + 8);
        }
    }

    /// <inheritdoc />
    public static void PackB(ulong* w, nint ldw, int rows, int kc, ulong* destination)
        => GemmPacking.PackB(w, ldw, rows, kc, 12, destination);
}


/// <summary>Ring scalar micro-kernel, 4 x 4.</summary>
internal unsafe struct RingKernelScalar : IGemmKernel<ulong>
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
    public static void Run(nint kc, ulong* a, ulong* b, ulong* c, nint ldc, bool accumulate)
    {
        ulong c00 = 0UL, c01 = 0UL, c02 = 0UL, c03 = 0UL;
        ulong c10 = 0UL, c11 = 0UL, c12 = 0UL, c13 = 0UL;
        ulong c20 = 0UL, c21 = 0UL, c22 = 0UL, c23 = 0UL;
        ulong c30 = 0UL, c31 = 0UL, c32 = 0UL, c33 = 0UL;
        for (; kc > 0; kc--)
        {
            ulong b0 = b[0];
            ulong b1 = b[1];
            ulong b2 = b[2];
            ulong b3 = b[3];
            ulong a0 = a[0];
            c00 += a0 * b0;
            c01 += a0 * b1;
            c02 += a0 * b2;
            c03 += a0 * b3;
            ulong a1 = a[1];
            c10 += a1 * b0;
            c11 += a1 * b1;
            c12 += a1 * b2;
            c13 += a1 * b3;
            ulong a2 = a[2];
            c20 += a2 * b0;
            c21 += a2 * b1;
            c22 += a2 * b2;
            c23 += a2 * b3;
            ulong a3 = a[3];
            c30 += a3 * b0;
            c31 += a3 * b1;
            c32 += a3 * b2;
            c33 += a3 * b3;
            a += 4;
            b += 4;
        }

        if (accumulate)
        {
            ulong* r0 = c;
            r0[0] += c00;
            r0[1] += c01;
            r0[2] += c02;
            r0[3] += c03;
            ulong* r1 = c + ldc;
            r1[0] += c10;
            r1[1] += c11;
            r1[2] += c12;
            r1[3] += c13;
            ulong* r2 = c + 2 * ldc;
            r2[0] += c20;
            r2[1] += c21;
            r2[2] += c22;
            r2[3] += c23;
            ulong* r3 = c + 3 * ldc;
            r3[0] += c30;
            r3[1] += c31;
            r3[2] += c32;
            r3[3] += c33;
        }
        else
        {
            ulong* r0 = c;
            r0[0] = c00;
            r0[1] = c01;
            r0[2] = c02;
            r0[3] = c03;
            ulong* r1 = c + ldc;
            r1[0] = c10;
            r1[1] = c11;
            r1[2] = c12;
            r1[3] = c13;
            ulong* r2 = c + 2 * ldc;
            r2[0] = c20;
            r2[1] = c21;
            r2[2] = c22;
            r2[3] = c23;
            ulong* r3 = c + 3 * ldc;
            r3[0] = c30;
            r3[1] = c31;
            r3[2] = c32;
            r3[3] = c33;
        }
    }

    /// <inheritdoc />
    public static void PackB(ulong* w, nint ldw, int rows, int kc, ulong* destination)
        => GemmPacking.PackB(w, ldw, rows, kc, 4, destination);
}

