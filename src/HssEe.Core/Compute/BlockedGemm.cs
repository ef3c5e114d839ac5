using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace HssEe.Compute;

/// <summary>The vector width the GEMM kernels of this process run with.</summary>
internal enum GemmIsa
{
    /// <summary>Scalar kernels.</summary>
    Scalar,

    /// <summary>256-bit vector kernels.</summary>
    Vector256,

    /// <summary>512-bit vector kernels.</summary>
    Vector512,
}

/// <summary>Picks the GEMM kernel width from what the JIT accelerates.</summary>
internal static class GemmDispatch
{
    /// <summary>The widest accelerated vector width, which the GEMM kernels use.</summary>
    public static GemmIsa Current =>
        Vector512.IsHardwareAccelerated ? GemmIsa.Vector512
        : Vector256.IsHardwareAccelerated ? GemmIsa.Vector256
        : GemmIsa.Scalar;

    /// <summary>
    /// Below this many multiply-adds a GEMM runs on the calling thread: the cost of waking
    /// workers would dominate.
    /// </summary>
    public const long ParallelThreshold = 1L << 18;
}

/// <summary>
/// A register-blocked micro-kernel: computes an <c>MR x NR</c> tile of C from a packed A
/// micro-panel (<c>[kc][MR]</c>) and a packed B micro-panel (<c>[kc][NR]</c>).
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
internal unsafe interface IGemmKernel<T>
    where T : unmanaged
{
    /// <summary>Rows of the register tile.</summary>
    static abstract int MR { get; }

    /// <summary>Columns of the register tile.</summary>
    static abstract int NR { get; }

    /// <summary>Depth of one packed block (the B micro-panel <c>KC x NR</c> should stay in L1).</summary>
    static abstract int KC { get; }

    /// <summary>Columns of one packed B block (a multiple of NR; the block should stay in L2).</summary>
    static abstract int NC { get; }

    /// <summary>Rows of A processed per B micro-panel sweep (a multiple of MR; the A block should stay in L2).</summary>
    static abstract int MC { get; }

    /// <summary>
    /// Computes the tile: <c>c[i, j] (+)= sum_p a[p * MR + i] * b[p * NR + j]</c>; with
    /// <paramref name="accumulate"/> the tile is added to C, otherwise it overwrites C.
    /// </summary>
    /// <param name="kc">Depth, at least 1.</param>
    /// <param name="a">Packed A micro-panel.</param>
    /// <param name="b">Packed B micro-panel.</param>
    /// <param name="c">Top-left element of the C tile.</param>
    /// <param name="ldc">Row stride of C in elements.</param>
    /// <param name="accumulate">Add to C instead of overwriting it.</param>
    static abstract void Run(nint kc, T* a, T* b, T* c, nint ldc, bool accumulate);

    /// <summary>
    /// Packs <paramref name="rows"/> (at most NR) rows of W, each <paramref name="kc"/> long,
    /// into a B micro-panel <c>[kc][NR]</c>, zero-filling the columns past <paramref name="rows"/>.
    /// </summary>
    /// <param name="w">First element of the first row.</param>
    /// <param name="ldw">Row stride of W in elements.</param>
    /// <param name="rows">Rows to pack (1..NR).</param>
    /// <param name="kc">Depth.</param>
    /// <param name="destination">The micro-panel, <c>kc * NR</c> elements.</param>
    static abstract void PackB(T* w, nint ldw, int rows, int kc, T* destination);
}

/// <summary>
/// The cache-blocked GEMM driver (the BLIS loop nest): <c>C[m, n] = A[m, k] * W[n, k]^T</c>.
/// A is packed once into MR-row micro-panels; every worker packs its own KC x NC blocks of
/// W^T into NR-column micro-panels and sweeps the register kernel over them.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
/// <typeparam name="TKernel">The micro-kernel.</typeparam>
internal static unsafe class BlockedGemm<T, TKernel>
    where T : unmanaged, IAdditionOperators<T, T, T>
    where TKernel : IGemmKernel<T>
{
    /// <summary>Runs the GEMM; <paramref name="m"/>, <paramref name="k"/> and <paramref name="n"/> must be positive.</summary>
    /// <param name="a">A, <c>m x k</c> row-major.</param>
    /// <param name="w">W, <c>n x k</c> row-major.</param>
    /// <param name="c">C, <c>m x n</c> row-major.</param>
    /// <param name="m">Rows of A.</param>
    /// <param name="k">Depth.</param>
    /// <param name="n">Rows of W.</param>
    /// <param name="threads">Most threads to use.</param>
    public static void Run(T* a, T* w, T* c, int m, int k, int n, int threads)
    {
        int mr = TKernel.MR;
        int mPanels = (m + mr - 1) / mr;
        if ((long)m * n * k < GemmDispatch.ParallelThreshold)
        {
            threads = 1;
        }

        // Packed A: [panel][k][MR], rows past m zero.
        nint packedALength = (nint)mPanels * mr * k;
        using ScratchBuffers.Lease aLease = ScratchBuffers.Rent(ref ScratchBuffers.PackedA, packedALength * sizeof(T));
        T* ap = (T*)aLease.Pointer;
        if (threads > 1 && packedALength >= 1 << 16)
        {
            PackAParallel((nint)a, m, k, mPanels, (nint)ap, threads);
        }
        else
        {
            for (int panel = 0; panel < mPanels; panel++)
            {
                PackAPanel(a, m, k, panel, ap);
            }
        }

        if (threads == 1)
        {
            RunBlock(ap, w, c, m, k, n, 0, m, 0, n);
            return;
        }

        RunParallel((nint)ap, (nint)w, (nint)c, m, k, n, threads);
    }

    /// <summary>Packs the A panels on several threads (separate from <see cref="Run"/> so the one-thread path allocates no closure).</summary>
    private static void PackAParallel(nint a, int m, int k, int mPanels, nint ap, int threads)
        => Parallel.For(0, mPanels, new ParallelOptions { MaxDegreeOfParallelism = threads }, panel => PackAPanel((T*)a, m, k, panel, (T*)ap));

    /// <summary>
    /// Splits the columns into about 4 chunks per thread (dynamic balance), and the rows as
    /// well when there are too few column panels; every chunk is aligned to the register tile.
    /// </summary>
    private static void RunParallel(nint apAddr, nint wAddr, nint cAddr, int m, int k, int n, int threads)
    {
        int mr = TKernel.MR;
        int nr = TKernel.NR;
        int mPanels = (m + mr - 1) / mr;
        int nPanels = (n + nr - 1) / nr;
        int target = 4 * threads;
        int nChunks = Math.Min(nPanels, target);
        int mChunks = Math.Min(mPanels, (target + nChunks - 1) / nChunks);
        int tasks = nChunks * mChunks;
        Parallel.For(0, tasks, new ParallelOptions { MaxDegreeOfParallelism = threads }, task =>
        {
            int mi = task / nChunks;
            int ni = task % nChunks;
            int m0 = (int)((long)mPanels * mi / mChunks) * mr;
            int m1 = Math.Min(m, (int)((long)mPanels * (mi + 1) / mChunks) * mr);
            int n0 = (int)((long)nPanels * ni / nChunks) * nr;
            int n1 = Math.Min(n, (int)((long)nPanels * (ni + 1) / nChunks) * nr);
            RunBlock((T*)apAddr, (T*)wAddr, (T*)cAddr, m, k, n, m0, m1, n0, n1);
        });
    }

    private static void PackAPanel(T* a, int m, int k, int panel, T* ap)
    {
        int mr = TKernel.MR;
        T* dst = ap + (nint)panel * mr * k;
        int row0 = panel * mr;
        int rows = Math.Min(mr, m - row0);
        for (int r = 0; r < rows; r++)
        {
            T* src = a + (nint)(row0 + r) * k;
            T* d = dst + r;
            for (int p = 0; p < k; p++)
            {
                d[(nint)p * mr] = src[p];
            }
        }

        for (int r = rows; r < mr; r++)
        {
            T* d = dst + r;
            for (int p = 0; p < k; p++)
            {
                d[(nint)p * mr] = default;
            }
        }
    }

    private static void RunBlock(T* ap, T* w, T* c, int m, int k, int n, int m0, int m1, int n0, int n1)
    {
        int mr = TKernel.MR;
        int nr = TKernel.NR;
        int kcMax = TKernel.KC;
        int ncMax = TKernel.NC;
        int mcMax = TKernel.MC;
        using ScratchBuffers.Lease bLease = ScratchBuffers.Rent(ref ScratchBuffers.PackedB, (nint)Math.Min(kcMax, k) * ncMax * sizeof(T));
        T* bp = (T*)bLease.Pointer;
        T* tile = stackalloc T[mr * nr];
        int rowPanels = (m1 - m0 + mr - 1) / mr;
        int callsPerPanel = Math.Min(rowPanels, (mcMax + mr - 1) / mr);

        for (int jc = n0; jc < n1; jc += ncMax)
        {
            int nc = Math.Min(ncMax, n1 - jc);
            for (int pc = 0; pc < k; pc += kcMax)
            {
                int kc = Math.Min(kcMax, k - pc);
                bool accumulate = pc > 0;
                for (int ic = m0; ic < m1; ic += mcMax)
                {
                    int icEnd = Math.Min(m1, ic + mcMax);
                    bool pack = ic == m0;
                    for (int jr = 0; jr < nc; jr += nr)
                    {
                        T* bPanel = bp + ((nint)(jr / nr) * kc * nr);
                        int cols = Math.Min(nr, nc - jr);
                        var prefetch = default(PrefetchCursor);
                        if (pack)
                        {
                            // Pack this micro-panel just before its first use; while the
                            // kernels run on it, pull the W rows of the next one into L2.
                            TKernel.PackB(w + ((nint)(jc + jr) * k) + pc, k, cols, kc, bPanel);
                            if (Sse.IsSupported)
                            {
                                prefetch = NextPanel(w, k, n1, jc, nc, pc, kc, jr, callsPerPanel);
                            }
                        }

                        for (int ir = ic; ir < icEnd; ir += mr)
                        {
                            T* aPanel = ap + ((nint)(ir / mr) * mr * k) + ((nint)pc * mr);
                            T* cTile = c + ((nint)ir * n) + jc + jr;
                            int rows = Math.Min(mr, m - ir);
                            prefetch.Step();
                            if (rows == mr && cols == nr)
                            {
                                TKernel.Run(kc, aPanel, bPanel, cTile, n, accumulate);
                            }
                            else
                            {
                                TKernel.Run(kc, aPanel, bPanel, tile, nr, accumulate: false);
                                MergeTile(tile, nr, cTile, n, rows, cols, accumulate);
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>A prefetch cursor over the W rows of the micro-panel packed after (jc, pc, jr).</summary>
    private static PrefetchCursor NextPanel(T* w, int k, int n1, int jc, int nc, int pc, int kc, int jr, int steps)
    {
        int nr = TKernel.NR;
        int row;
        int col;
        int depth;
        int rows;
        if (jr + nr < nc)
        {
            row = jc + jr + nr;
            rows = Math.Min(nr, nc - jr - nr);
            col = pc;
            depth = kc;
        }
        else if (pc + kc < k)
        {
            row = jc;
            rows = Math.Min(nr, nc);
            col = pc + kc;
            depth = Math.Min(TKernel.KC, k - col);
        }
        else if (jc + TKernel.NC < n1)
        {
            row = jc + TKernel.NC;
            rows = Math.Min(nr, n1 - row);
            col = 0;
            depth = Math.Min(TKernel.KC, k);
        }
        else
        {
            return default;
        }

        return new PrefetchCursor((byte*)(w + ((nint)row * k) + col), (nint)k * sizeof(T), rows, depth * sizeof(T), steps);
    }

    private static void MergeTile(T* tile, int ldt, T* c, int ldc, int rows, int cols, bool accumulate)
    {
        for (int i = 0; i < rows; i++)
        {
            T* t = tile + ((nint)i * ldt);
            T* r = c + ((nint)i * ldc);
            if (accumulate)
            {
                for (int j = 0; j < cols; j++)
                {
                    r[j] += t[j];
                }
            }
            else
            {
                new ReadOnlySpan<T>(t, cols).CopyTo(new Span<T>(r, cols));
            }
        }
    }
}

/// <summary>
/// Per-thread packing buffers, kept between calls so that a GEMM does not page-fault fresh
/// memory every time. Each buffer is a pinned array, 64-byte aligned by offset. Requests
/// above <see cref="MaxCachedBytes"/> get native memory that is freed when the lease ends.
/// </summary>
internal static unsafe class ScratchBuffers
{
    /// <summary>The packed-A buffer of this thread (used by the thread that starts a GEMM).</summary>
    [ThreadStatic]
    internal static byte[]? PackedA;

    /// <summary>The packed-B buffer of this thread (used by every GEMM worker).</summary>
    [ThreadStatic]
    internal static byte[]? PackedB;

    /// <summary>The largest buffer kept per thread and slot between calls.</summary>
    public const int MaxCachedBytes = 64 << 20;

    private const int Alignment = 64;

    /// <summary>Leases at least <paramref name="bytes"/> bytes, 64-byte aligned, from the slot (or from native memory when large).</summary>
    /// <param name="slot">The thread-static slot.</param>
    /// <param name="bytes">Bytes needed.</param>
    /// <returns>The lease; dispose it when done.</returns>
    public static Lease Rent(ref byte[]? slot, nint bytes)
    {
        if (bytes > MaxCachedBytes)
        {
            return new Lease((byte*)NativeMemory.AlignedAlloc((nuint)bytes, Alignment), owned: true);
        }

        int needed = (int)bytes + Alignment;
        if (slot is null || slot.Length < needed)
        {
            slot = null;
            slot = GC.AllocateUninitializedArray<byte>(Math.Max(needed, 4096), pinned: true);
        }

        byte* p = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(slot));
        return new Lease((byte*)(((nint)p + (Alignment - 1)) & ~(nint)(Alignment - 1)), owned: false);
    }

    /// <summary>A leased scratch buffer.</summary>
    internal readonly struct Lease : IDisposable
    {
        private readonly bool _owned;

        /// <summary>Creates a lease.</summary>
        /// <param name="pointer">The aligned buffer.</param>
        /// <param name="owned">Whether the lease frees native memory on dispose.</param>
        public Lease(byte* pointer, bool owned)
        {
            Pointer = pointer;
            _owned = owned;
        }

        /// <summary>The aligned buffer.</summary>
        public byte* Pointer { get; }

        /// <summary>Frees the buffer if it is native; a cached buffer stays with its thread.</summary>
        public void Dispose()
        {
            if (_owned)
            {
                NativeMemory.AlignedFree(Pointer);
            }
        }
    }
}

/// <summary>
/// Walks the cache lines of a block of rows (row stride in bytes, a byte width per row) and
/// prefetches a fixed share of them per <see cref="Step"/>, spreading the block over a
/// known number of steps.
/// </summary>
internal unsafe struct PrefetchCursor
{
    private const int LineBytes = 64;
    private readonly byte* _base;
    private readonly nint _rowStride;
    private readonly int _rows;
    private readonly int _linesPerRow;
    private readonly int _perStep;
    private int _row;
    private int _line;

    /// <summary>Creates a cursor over <paramref name="rows"/> rows of <paramref name="rowBytes"/> bytes.</summary>
    /// <param name="start">First byte of the first row.</param>
    /// <param name="rowStride">Row stride in bytes.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="rowBytes">Bytes per row.</param>
    /// <param name="steps">Steps to spread the block over.</param>
    public PrefetchCursor(byte* start, nint rowStride, int rows, int rowBytes, int steps)
    {
        _base = start;
        _rowStride = rowStride;
        _rows = rows;
        _linesPerRow = (rowBytes + LineBytes - 1) / LineBytes;
        long total = (long)rows * _linesPerRow;
        _perStep = (int)Math.Min(int.MaxValue, (total + steps - 1) / Math.Max(1, steps));
        _row = 0;
        _line = 0;
    }

    /// <summary>Prefetches the next share of lines into L2 (nothing once the block is done, or for a default cursor).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Step()
    {
        for (int i = 0; i < _perStep && _row < _rows; i++)
        {
            Sse.Prefetch1(_base + (_row * _rowStride) + ((nint)_line * LineBytes));
            if (++_line == _linesPerRow)
            {
                _line = 0;
                _row++;
            }
        }
    }
}
