using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace HssEe.Compute;

/// <summary>
/// Packs rows of W (<c>[n, k]</c>, PyTorch layout) into k-major B micro-panels
/// <c>[kc][NR]</c>: a transpose. The AVX-512 paths transpose 8 x 16 float or 8 x 8 ulong
/// blocks in registers; the rest is scalar.
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>Scalar packing of <paramref name="rows"/> rows into a <c>[kc][nr]</c> panel, zero-filling the missing columns.</summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <param name="w">First element of the first row.</param>
    /// <param name="ldw">Row stride in elements.</param>
    /// <param name="rows">Rows present (1..nr).</param>
    /// <param name="kc">Depth.</param>
    /// <param name="nr">Panel width.</param>
    /// <param name="destination">The panel.</param>
    public static void PackB<T>(T* w, nint ldw, int rows, int kc, int nr, T* destination)
        where T : unmanaged
    {
        PackBColumns(w, ldw, 0, rows, 0, kc, nr, destination);
        if (rows < nr)
        {
            for (int p = 0; p < kc; p++)
            {
                new Span<T>(destination + ((nint)p * nr) + rows, nr - rows).Clear();
            }
        }
    }

    /// <summary>
    /// Float packing for panels whose width is a multiple of 8: full 8-row groups go through
    /// an AVX-512 8 x 16 transpose, everything else through the scalar loop. (Eight rows at a
    /// time, not sixteen: rows of W a power of two apart map to one L1 set, and sixteen such
    /// streams thrash it.)
    /// </summary>
    /// <param name="w">First element of the first row.</param>
    /// <param name="ldw">Row stride in elements.</param>
    /// <param name="rows">Rows present (1..nr).</param>
    /// <param name="kc">Depth.</param>
    /// <param name="nr">Panel width, a multiple of 8.</param>
    /// <param name="destination">The panel.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackBFloat8x(float* w, nint ldw, int rows, int kc, int nr, float* destination)
    {
        if (!Avx512F.IsSupported || kc < 16)
        {
            PackB(w, ldw, rows, kc, nr, destination);
            return;
        }

        int fullGroups = rows / 8;
        int kVec = kc & ~15;
        for (int g = 0; g < fullGroups; g++)
        {
            float* src = w + ((nint)g * 8 * ldw);
            float* dst = destination + (g * 8);
            for (int p = 0; p < kVec; p += 16)
            {
                Transpose8x16(src + p, ldw, dst + ((nint)p * nr), nr);
            }
        }

        int done = fullGroups * 8;
        if (kVec < kc)
        {
            PackBColumns(w, ldw, 0, done, kVec, kc, nr, destination);
        }

        if (done < rows)
        {
            PackBColumns(w, ldw, done, rows, 0, kc, nr, destination);
        }

        if (rows < nr)
        {
            for (int p = 0; p < kc; p++)
            {
                new Span<float>(destination + ((nint)p * nr) + rows, nr - rows).Clear();
            }
        }
    }

    /// <summary>
    /// Ring packing for panels whose width is a multiple of 8: full 8-row groups go through
    /// an AVX-512 8 x 8 transpose, everything else through the scalar loop.
    /// </summary>
    /// <param name="w">First element of the first row.</param>
    /// <param name="ldw">Row stride in elements.</param>
    /// <param name="rows">Rows present (1..nr).</param>
    /// <param name="kc">Depth.</param>
    /// <param name="nr">Panel width, a multiple of 8.</param>
    /// <param name="destination">The panel.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackBUInt648x(ulong* w, nint ldw, int rows, int kc, int nr, ulong* destination)
    {
        if (!Avx512F.IsSupported || kc < 8)
        {
            PackB(w, ldw, rows, kc, nr, destination);
            return;
        }

        int fullGroups = rows / 8;
        int kVec = kc & ~7;
        for (int g = 0; g < fullGroups; g++)
        {
            ulong* src = w + ((nint)g * 8 * ldw);
            ulong* dst = destination + (g * 8);
            for (int p = 0; p < kVec; p += 8)
            {
                Transpose8x8(src + p, ldw, dst + ((nint)p * nr), nr);
            }
        }

        int done = fullGroups * 8;
        if (kVec < kc)
        {
            PackBColumns(w, ldw, 0, done, kVec, kc, nr, destination);
        }

        if (done < rows)
        {
            PackBColumns(w, ldw, done, rows, 0, kc, nr, destination);
        }

        if (rows < nr)
        {
            for (int p = 0; p < kc; p++)
            {
                new Span<ulong>(destination + ((nint)p * nr) + rows, nr - rows).Clear();
            }
        }
    }

    private static void PackBColumns<T>(T* w, nint ldw, int row0, int row1, int p0, int p1, int nr, T* destination)
        where T : unmanaged
    {
        for (int r = row0; r < row1; r++)
        {
            T* src = w + ((nint)r * ldw);
            T* dst = destination + r;
            for (int p = p0; p < p1; p++)
            {
                dst[(nint)p * nr] = src[p];
            }
        }
    }

    /// <summary>
    /// Transposes the 8 x 16 block at <paramref name="src"/> (8 rows, row stride
    /// <paramref name="lds"/>) into 16 rows of 8 at <paramref name="dst"/> (row stride <paramref name="ldd"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x16(float* src, nint lds, float* dst, nint ldd)
    {
        if (Sse.IsSupported)
        {
            // Rows of one panel are short streams (KC elements); ask for lines ahead.
            const int Ahead = 128;
            Sse.Prefetch0(src + Ahead);
            Sse.Prefetch0(src + lds + Ahead);
            Sse.Prefetch0(src + (2 * lds) + Ahead);
            Sse.Prefetch0(src + (3 * lds) + Ahead);
            Sse.Prefetch0(src + (4 * lds) + Ahead);
            Sse.Prefetch0(src + (5 * lds) + Ahead);
            Sse.Prefetch0(src + (6 * lds) + Ahead);
            Sse.Prefetch0(src + (7 * lds) + Ahead);
        }

        Vector512<float> r0 = Vector512.Load(src);
        Vector512<float> r1 = Vector512.Load(src + lds);
        Vector512<float> r2 = Vector512.Load(src + (2 * lds));
        Vector512<float> r3 = Vector512.Load(src + (3 * lds));
        Vector512<float> r4 = Vector512.Load(src + (4 * lds));
        Vector512<float> r5 = Vector512.Load(src + (5 * lds));
        Vector512<float> r6 = Vector512.Load(src + (6 * lds));
        Vector512<float> r7 = Vector512.Load(src + (7 * lds));

        // Stage 1: interleave 32-bit pairs of rows (within 128-bit lanes).
        Vector512<double> t0 = Avx512F.UnpackLow(r0, r1).AsDouble();
        Vector512<double> t1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        Vector512<double> t2 = Avx512F.UnpackLow(r2, r3).AsDouble();
        Vector512<double> t3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        Vector512<double> t4 = Avx512F.UnpackLow(r4, r5).AsDouble();
        Vector512<double> t5 = Avx512F.UnpackHigh(r4, r5).AsDouble();
        Vector512<double> t6 = Avx512F.UnpackLow(r6, r7).AsDouble();
        Vector512<double> t7 = Avx512F.UnpackHigh(r6, r7).AsDouble();

        // Stage 2: u[4g + e] holds, in 128-bit lane L, rows 4g..4g+3 of element 4L + e.
        Transpose8x16Finish(Avx512F.UnpackLow(t0, t2).AsSingle(), Avx512F.UnpackLow(t4, t6).AsSingle(), dst, ldd);
        Transpose8x16Finish(Avx512F.UnpackHigh(t0, t2).AsSingle(), Avx512F.UnpackHigh(t4, t6).AsSingle(), dst + ldd, ldd);
        Transpose8x16Finish(Avx512F.UnpackLow(t1, t3).AsSingle(), Avx512F.UnpackLow(t5, t7).AsSingle(), dst + (2 * ldd), ldd);
        Transpose8x16Finish(Avx512F.UnpackHigh(t1, t3).AsSingle(), Avx512F.UnpackHigh(t5, t7).AsSingle(), dst + (3 * ldd), ldd);
    }

    /// <summary>Writes output rows e, e + 4, e + 8 and e + 12 (8 floats each) from the two stage-2 vectors of element e.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x16Finish(Vector512<float> low, Vector512<float> high, float* dst, nint ldd)
    {
        // x02 = [low[0], high[0], low[2], high[2]], x13 = [low[1], high[1], low[3], high[3]] (128-bit lanes).
        Vector512<float> even = Avx512F.Shuffle4x128(low, high, 0x88);
        Vector512<float> odd = Avx512F.Shuffle4x128(low, high, 0xDD);
        Vector512<float> x02 = Avx512F.Shuffle4x128(even, even, 0xD8);
        Vector512<float> x13 = Avx512F.Shuffle4x128(odd, odd, 0xD8);
        Vector256.Store(x02.GetLower(), dst);
        Vector256.Store(x13.GetLower(), dst + (4 * ldd));
        Vector256.Store(x02.GetUpper(), dst + (8 * ldd));
        Vector256.Store(x13.GetUpper(), dst + (12 * ldd));
    }

    /// <summary>Transposes the 8 x 8 block at <paramref name="src"/> (row stride <paramref name="lds"/>) into <paramref name="dst"/> (row stride <paramref name="ldd"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(ulong* src, nint lds, ulong* dst, nint ldd)
    {
        Vector512<ulong> r0 = Vector512.Load(src);
        Vector512<ulong> r1 = Vector512.Load(src + lds);
        Vector512<ulong> r2 = Vector512.Load(src + (2 * lds));
        Vector512<ulong> r3 = Vector512.Load(src + (3 * lds));
        Vector512<ulong> r4 = Vector512.Load(src + (4 * lds));
        Vector512<ulong> r5 = Vector512.Load(src + (5 * lds));
        Vector512<ulong> r6 = Vector512.Load(src + (6 * lds));
        Vector512<ulong> r7 = Vector512.Load(src + (7 * lds));

        // Stage 1: t[2j + h] holds, in lane L, rows 2j and 2j + 1 of element 2L + h.
        Vector512<ulong> t0 = Avx512F.UnpackLow(r0, r1);
        Vector512<ulong> t1 = Avx512F.UnpackHigh(r0, r1);
        Vector512<ulong> t2 = Avx512F.UnpackLow(r2, r3);
        Vector512<ulong> t3 = Avx512F.UnpackHigh(r2, r3);
        Vector512<ulong> t4 = Avx512F.UnpackLow(r4, r5);
        Vector512<ulong> t5 = Avx512F.UnpackHigh(r4, r5);
        Vector512<ulong> t6 = Avx512F.UnpackLow(r6, r7);
        Vector512<ulong> t7 = Avx512F.UnpackHigh(r6, r7);

        Transpose8Finish(t0, t2, t4, t6, dst, ldd);
        Transpose8Finish(t1, t3, t5, t7, dst + ldd, ldd);
    }

    /// <summary>Writes output rows h, h + 2, h + 4 and h + 6 from the four stage-1 vectors of parity h.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8Finish(Vector512<ulong> a, Vector512<ulong> b, Vector512<ulong> c, Vector512<ulong> d, ulong* dst, nint ldd)
    {
        Vector512<ulong> x0 = Avx512F.Shuffle4x128(a, b, 0x88);
        Vector512<ulong> x1 = Avx512F.Shuffle4x128(a, b, 0xDD);
        Vector512<ulong> y0 = Avx512F.Shuffle4x128(c, d, 0x88);
        Vector512<ulong> y1 = Avx512F.Shuffle4x128(c, d, 0xDD);
        Vector512.Store(Avx512F.Shuffle4x128(x0, y0, 0x88), dst);
        Vector512.Store(Avx512F.Shuffle4x128(x1, y1, 0x88), dst + (2 * ldd));
        Vector512.Store(Avx512F.Shuffle4x128(x0, y0, 0xDD), dst + (4 * ldd));
        Vector512.Store(Avx512F.Shuffle4x128(x1, y1, 0xDD), dst + (6 * ldd));
    }
}
