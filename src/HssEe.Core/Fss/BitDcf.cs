using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using HssEe.Randomness;
using HssEe.Sharing;
using System.Runtime.Intrinsics.X86;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace HssEe.Fss;

/// <summary>
/// Comparison DCF with a one-bit output: keys for f(x) = 1{x &lt; alpha} over n-bit inputs whose two
/// evaluations XOR to f(x) (BCG+21's DCF over the group Z_2, with early termination).
/// </summary>
/// <remarks>
/// <para><b>Construction.</b> A GGM tree of depth d = n - nu with nu = min(n, 8): at each level the
/// evaluator expands only the child it walks to, with one block H(s XOR side) of the fixed-key
/// MMO^sigma hash; bit 0 of that block is the child's control bit t, bit 1 its value bit v, and the
/// block with bits 0..2 cleared is the child seed (125 bits). The correction word of a level is one
/// 16-byte block: the seed correction (bits 3..127), the left and right control-bit corrections
/// (bits 0 and 1) and the value correction (bit 2). After d levels the remaining nu input bits index
/// a 2^nu-bit leaf of one or (nu = 8) two 128-bit blocks H(s XOR (2 + k)), each corrected by its
/// 16-byte leaf word. The evaluator hashes only the block that holds its bit, so the last 8 levels
/// cost one hash instead of eight, and the leaf's second word costs the same 16 bytes as the level it
/// replaces.</para>
/// <para><b>Key size</b> (per party and key): 16 (root seed) + 16 d + 16 (leaf blocks) = 16 (n - 5)
/// bytes for n &gt;= 8; for n = 15, 31, 63 that is 160, 416 and 928 bytes. BCG+21's formula for a
/// 1-bit output, n (lambda + 3) + lambda + 1 bits, gives 262, 524 and 1024 bytes.</para>
/// <para><b>Evaluation cost</b>: d + 1 AES blocks per key (8, 24 and 56 for n = 15, 31, 63),
/// sixteen keys interleaved so that sixteen independent AES-NI chains are in flight (with AVX-512, two
/// halves of eight half a level apart, so that one half's level boundary overlaps the other's rounds).</para>
/// <para><b>Batch layout</b>: keys are stored in blocks of 16 (the last block padded with keys for
/// alpha = 0), level-major inside a block: the 16 root seeds, then the 16 level-0 correction words, and
/// so on, ending with the 16 leaf words. Evaluation then reads the key material strictly sequentially.
/// In the hashed child blocks the control bit sits at bit 0 (left child) or bit 1 (right child) and the
/// value bit at bit 2, so that one masked XOR with the correction word corrects all three.</para>
/// <para><b>Security</b>: seeds are 125-bit (three bits carry t, v and the side); each key alone is
/// pseudorandom when fixed-key AES is modelled as a random permutation (the library's PRG assumption).</para>
/// </remarks>
internal static unsafe class BitDcf
{
    /// <summary>Input bits resolved by the leaf (at most 8: a leaf of 256 bits in two blocks).</summary>
    public const int MaxLeafBits = 8;

    /// <summary>Input bits resolved by one 128-bit leaf block.</summary>
    private const int BlockBits = 7;

    /// <summary>Keys per block of the batch layout (and lanes in flight during evaluation).</summary>
    public const int Group = 16;
    private const ulong LeafTweak = 2;

    /// <summary>How far ahead of the level being evaluated the kernels prefetch key material (see <see cref="PrefetchAhead"/>).</summary>
    private const int PrefetchDistance = 8192;

    /// <summary>The right child's tweak: 1 in both 64-bit halves (the left child's is 0).</summary>
    private static Vector128<ulong> RightTweak => Vector128.Create(1UL, 1UL);

    private static readonly bool UseAesNi = X86Aes.IsSupported && FixedKeyAes.UsesAesNi;
    private static readonly bool UseAvx512 = UseAesNi && Avx512F.IsSupported;

    /// <summary>Evaluation kernels (tests run each one the machine supports).</summary>
    internal enum Kernel
    {
        /// <summary>The fastest the machine supports.</summary>
        Auto,

        /// <summary>AES-NI rounds, per-key bookkeeping on four keys per 512-bit register.</summary>
        Avx512,

        /// <summary>AES-NI rounds, per-key bookkeeping in 128-bit registers.</summary>
        AesNi,

        /// <summary>The platform AES through <see cref="FixedKeyAes.HashInPlace"/>.</summary>
        Portable,
    }

    /// <summary>True when <paramref name="kernel"/> can run on this machine.</summary>
    internal static bool Supports(Kernel kernel) => kernel switch
    {
        Kernel.Avx512 => UseAvx512,
        Kernel.AesNi => UseAesNi,
        _ => true,
    };

    /// <summary>Tree depth d = n - min(n, 8).</summary>
    public static int Depth(int n) => n - LeafBits(n);

    /// <summary>Input bits resolved by the leaf: min(n, 8).</summary>
    public static int LeafBits(int n) => Math.Min(n, MaxLeafBits);

    /// <summary>128-bit blocks of the leaf: 2 when it resolves 8 bits, else 1.</summary>
    public static int LeafBlocks(int n) => LeafBits(n) > BlockBits ? 1 << (LeafBits(n) - BlockBits) : 1;

    /// <summary>Key bytes per party: 16 (1 + d + leaf blocks), which is 16 (n - 5) for n &gt;= 8 and 32 + 16 max(0, n - 7) below.</summary>
    public static int KeySize(int n)
    {
        CheckBits(n);
        return 16 * (Depth(n) + 1 + LeafBlocks(n));
    }

    /// <summary>Bytes of a batch of <paramref name="count"/> keys: the count rounded up to a multiple of 16, times <see cref="KeySize"/>.</summary>
    public static long BatchBytes(int n, int count) => (long)PaddedCount(count) * KeySize(n);

    /// <summary>The key count rounded up to a multiple of <see cref="Group"/>.</summary>
    public static int PaddedCount(int count) => checked((count + Group - 1) / Group * Group);

    /// <summary>Byte offset of slot <paramref name="slot"/> (0 root, 1..d levels, d + 1 on the leaf blocks) of key <paramref name="key"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nint Offset(int key, int slot, int size) =>
        ((nint)(key / Group) * Group * size) + ((nint)slot * Group * 16) + ((key % Group) * 16);

    /// <summary>Throws unless 1 &lt;= n &lt;= 64.</summary>
    public static void CheckBits(int n)
    {
        if (n is < 1 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(n), n, "The comparison DCF's input bit-width must be in [1, 64].");
        }
    }

    /// <summary>
    /// Generates one key pair per alpha (alphas are reduced mod 2^n) into <paramref name="keysA"/> and
    /// <paramref name="keysB"/> (each at least <see cref="BatchBytes"/> bytes, in the batch layout).
    /// </summary>
    public static void Generate(int n, ReadOnlySpan<ulong> alphas, AesPrg prg, Span<byte> keysA, Span<byte> keysB)
    {
        CheckBits(n);
        int count = alphas.Length;
        long need = BatchBytes(n, count);
        if (keysA.Length < need || keysB.Length < need)
        {
            throw new ArgumentException($"Comparison DCF key buffers need {need} bytes each for {count} keys at n = {n}; got {keysA.Length} and {keysB.Length}.");
        }

        int padded = PaddedCount(count);
        var roots = new Vector128<byte>[2 * padded];
        prg.Fill(MemoryMarshal.AsBytes(roots.AsSpan()));
        ulong[] alphaCopy = new ulong[padded];
        alphas.CopyTo(alphaCopy);
        try
        {
            fixed (byte* pa = keysA)
            fixed (byte* pb = keysB)
            fixed (ulong* al = alphaCopy)
            fixed (Vector128<byte>* rs = roots)
            {
                nint a = (nint)pa, b = (nint)pb, alp = (nint)al, rts = (nint)rs;
                FssKeyBits.ForChunks(padded, Environment.ProcessorCount, Group, 1024, (start, len) =>
                    GenerateRange(n, (ulong*)alp, (Vector128<byte>*)rts, (byte*)a, (byte*)b, start, len));
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(roots.AsSpan()));
            Array.Clear(alphaCopy);
        }
    }

    /// <summary>
    /// Evaluates key i of <paramref name="keys"/> (batch layout) at <paramref name="points"/>[i] (reduced mod 2^n)
    /// for every i, writing this party's output bit (0 or 1) to <paramref name="outputs"/>[i].
    /// </summary>
    public static void Evaluate(int n, Party party, ReadOnlySpan<byte> keys, ReadOnlySpan<ulong> points, Span<byte> outputs, int maxDegreeOfParallelism = -1) =>
        Evaluate(n, party, keys, points, outputs, maxDegreeOfParallelism, Kernel.Auto);

    /// <summary>As the public overload, with a chosen kernel (for tests).</summary>
    internal static void Evaluate(int n, Party party, ReadOnlySpan<byte> keys, ReadOnlySpan<ulong> points, Span<byte> outputs, int maxDegreeOfParallelism, Kernel kernel) =>
        Evaluate(n, party, keys, points, outputs, maxDegreeOfParallelism, kernel, wipe: false, sets: 1);

    /// <summary>
    /// Evaluates as <see cref="Evaluate(int, Party, ReadOnlySpan{byte}, ReadOnlySpan{ulong}, Span{byte}, int)"/> and zeroes
    /// each block of 16 keys right after using it, while it is still in cache (single-use keys: a gate that
    /// evaluates every key once saves a separate pass to wipe them).
    /// </summary>
    internal static void EvaluateAndWipe(int n, Party party, Span<byte> keys, ReadOnlySpan<ulong> points, Span<byte> outputs) =>
        Evaluate(n, party, keys, points, outputs, -1, Kernel.Auto, wipe: true, sets: 1);

    /// <summary>
    /// Evaluates key i at <paramref name="sets"/> points each: <paramref name="points"/>[j count + i] for set j, with the
    /// output bit in <paramref name="outputs"/>[j count + i] (count = points.Length / sets), and zeroes each block of
    /// 16 keys after its last use. The keys are read from memory once rather than once per set (a gate that compares
    /// against two thresholds), and a later set's point on the same tree path as set 0's (differing only in the leaf
    /// bits) costs no walk of its own: its bit is read from the same corrected leaf.
    /// </summary>
    internal static void EvaluateSetsAndWipe(int n, Party party, Span<byte> keys, ReadOnlySpan<ulong> points, Span<byte> outputs, int sets, Kernel kernel = Kernel.Auto)
    {
        if (sets < 1 || points.Length % sets != 0)
        {
            throw new ArgumentException($"Comparison DCF: {points.Length} points do not split into {sets} equal sets.", nameof(points));
        }

        Evaluate(n, party, keys, points, outputs, -1, kernel, wipe: true, sets: sets);
    }

    private static void Evaluate(int n, Party party, ReadOnlySpan<byte> keys, ReadOnlySpan<ulong> points, Span<byte> outputs, int maxDegreeOfParallelism, Kernel kernel, bool wipe, int sets)
    {
        if (!Supports(kernel))
        {
            throw new PlatformNotSupportedException($"The {kernel} comparison-DCF kernel needs instructions this machine lacks.");
        }

        if (kernel == Kernel.Auto)
        {
            kernel = UseAvx512 ? Kernel.Avx512 : UseAesNi ? Kernel.AesNi : Kernel.Portable;
        }

        CheckBits(n);
        int count = points.Length / sets;
        long need = BatchBytes(n, count);
        if (keys.Length < need)
        {
            throw new ArgumentException($"Comparison DCF keys: {count} keys at n = {n} need {need} bytes; got {keys.Length}.", nameof(keys));
        }

        if (outputs.Length < sets * count)
        {
            throw new ArgumentException($"Comparison DCF outputs: need {sets * count} entries; got {outputs.Length}.", nameof(outputs));
        }

        int degree = FssKeyBits.Degree(maxDegreeOfParallelism, nameof(maxDegreeOfParallelism));
        fixed (byte* pk = keys)
        fixed (ulong* px = points)
        fixed (byte* po = outputs)
        {
            nint k = (nint)pk, x = (nint)px, o = (nint)po;
            ulong t0 = party == Party.A ? 0UL : 1UL;
            FssKeyBits.ForChunks(count, degree, Group, 4096, (start, len) =>
                EvaluateRange(n, t0, (byte*)k, (ulong*)x, (byte*)o, start, len, kernel, wipe, sets, count));
        }
    }

    private static void GenerateRange(int n, ulong* alphas, Vector128<byte>* roots, byte* keysA, byte* keysB, int start, int count)
    {
        int d = Depth(n), nu = LeafBits(n), size = KeySize(n), leafBlocks = LeafBlocks(n);
        Span<Vector128<byte>> buf = stackalloc Vector128<byte>[4 * Group];
        Span<Vector128<ulong>> s0 = stackalloc Vector128<ulong>[Group];
        Span<Vector128<ulong>> s1 = stackalloc Vector128<ulong>[Group];
        Span<ulong> t0 = stackalloc ulong[Group];
        Span<ulong> t1 = stackalloc ulong[Group];
        Span<ulong> va = stackalloc ulong[Group];
        Vector128<ulong> clear = Vector128.Create(~7UL, ulong.MaxValue);
        ulong nMask = FssKeyBits.Mask(n);
        for (int g0 = start; g0 < start + count; g0 += Group)
        {
            int g = Math.Min(Group, start + count - g0);
            for (int e = 0; e < g; e++)
            {
                int key = g0 + e;
                s0[e] = roots[2 * key].AsUInt64() & clear;
                s1[e] = roots[(2 * key) + 1].AsUInt64() & clear;
                t0[e] = 0;
                t1[e] = 1;
                va[e] = 0;
                Unsafe.WriteUnaligned(keysA + Offset(key, 0, size), s0[e]);
                Unsafe.WriteUnaligned(keysB + Offset(key, 0, size), s1[e]);
            }

            for (int level = 0; level < d; level++)
            {
                for (int e = 0; e < g; e++)
                {
                    buf[(4 * e) + 0] = s0[e].AsByte();
                    buf[(4 * e) + 1] = (s0[e] ^ RightTweak).AsByte();
                    buf[(4 * e) + 2] = s1[e].AsByte();
                    buf[(4 * e) + 3] = (s1[e] ^ RightTweak).AsByte();
                }

                FixedKeyAes.HashInPlace(buf[..(4 * g)]);
                for (int e = 0; e < g; e++)
                {
                    int key = g0 + e;
                    ulong a = ((alphas[key] & nMask) >> (n - 1 - level)) & 1;
                    Vector128<ulong> l0 = buf[4 * e].AsUInt64(), r0 = buf[(4 * e) + 1].AsUInt64();
                    Vector128<ulong> l1 = buf[(4 * e) + 2].AsUInt64(), r1 = buf[(4 * e) + 3].AsUInt64();

                    // Left child: t at bit 0; right child: t at bit 1; both: v at bit 2.
                    ulong tl0 = l0.ToScalar() & 1, tl1 = l1.ToScalar() & 1;
                    ulong tr0 = (r0.ToScalar() >> 1) & 1, tr1 = (r1.ToScalar() >> 1) & 1;
                    ulong vl = ((l0.ToScalar() ^ l1.ToScalar()) >> 2) & 1, vr = ((r0.ToScalar() ^ r1.ToScalar()) >> 2) & 1;
                    Vector128<ulong> keep0 = a == 0 ? l0 : r0, keep1 = a == 0 ? l1 : r1;
                    Vector128<ulong> lose0 = a == 0 ? r0 : l0, lose1 = a == 0 ? r1 : l1;
                    ulong vLose = a == 0 ? vr : vl, vKeep = a == 0 ? vl : vr;
                    Vector128<ulong> sCw = (lose0 ^ lose1) & clear;
                    ulong vCw = vLose ^ va[e] ^ a; // losing the left side (a = 1): every x there is below alpha
                    ulong tCwL = tl0 ^ tl1 ^ a ^ 1, tCwR = tr0 ^ tr1 ^ a;
                    va[e] ^= vKeep ^ vCw;
                    Vector128<ulong> cw = sCw | Vector128.CreateScalar(tCwL | (tCwR << 1) | (vCw << 2));
                    nint off = Offset(key, 1 + level, size);
                    Unsafe.WriteUnaligned(keysA + off, cw);
                    Unsafe.WriteUnaligned(keysB + off, cw);
                    int tBit = (int)a;
                    Vector128<ulong> x0 = keep0 ^ (cw & Vector128.Create(0 - t0[e]));
                    Vector128<ulong> x1 = keep1 ^ (cw & Vector128.Create(0 - t1[e]));
                    t0[e] = (x0.ToScalar() >> tBit) & 1;
                    t1[e] = (x1.ToScalar() >> tBit) & 1;
                    s0[e] = x0 & clear;
                    s1[e] = x1 & clear;
                }
            }

            // Leaf block k is H(s XOR (2 + k)); its bit z stands for leaf index 128 k + z.
            for (int block = 0; block < leafBlocks; block++)
            {
                for (int e = 0; e < g; e++)
                {
                    buf[2 * e] = (s0[e] ^ Vector128.CreateScalar(LeafTweak + (ulong)block)).AsByte();
                    buf[(2 * e) + 1] = (s1[e] ^ Vector128.CreateScalar(LeafTweak + (ulong)block)).AsByte();
                }

                FixedKeyAes.HashInPlace(buf[..(2 * g)]);
                for (int e = 0; e < g; e++)
                {
                    int key = g0 + e;
                    int low = (int)(alphas[key] & nMask & FssKeyBits.Mask(nu));
                    Vector128<ulong> table = LowBits(Math.Clamp(low - (block << BlockBits), 0, 128)); // bit z set iff 128 block + z < alpha_low
                    Vector128<ulong> all = Vector128.Create(0 - va[e]);
                    Vector128<ulong> leaf = buf[2 * e].AsUInt64() ^ buf[(2 * e) + 1].AsUInt64() ^ all ^ table;
                    nint off = Offset(key, d + 1 + block, size);
                    Unsafe.WriteUnaligned(keysA + off, leaf);
                    Unsafe.WriteUnaligned(keysB + off, leaf);
                }
            }

            s0.Clear();
            s1.Clear();
        }

        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(buf));
    }

    /// <summary>A 128-bit mask with bits [0, count) set (count in [0, 128]).</summary>
    private static Vector128<ulong> LowBits(int count) => count switch
    {
        0 => Vector128<ulong>.Zero,
        < 64 => Vector128.Create((1UL << count) - 1, 0UL),
        64 => Vector128.Create(ulong.MaxValue, 0UL),
        < 128 => Vector128.Create(ulong.MaxValue, (1UL << (count - 64)) - 1),
        _ => Vector128<ulong>.AllBitsSet,
    };

    /// <summary>
    /// Evaluates keys [start, start + count) at every set's point. Set 0 walks each block of 16 keys; a later set's
    /// point that shares the tree path and the leaf block of the set-0 point (it differs only in the low 7 leaf bits)
    /// reads its bit from the same corrected leaf block, so two close thresholds cost about one walk per key instead of two.
    /// The keys whose points part earlier are copied into a pending block (wiped after use) and walked sixteen at a time.
    /// </summary>
    private static void EvaluateRange(int n, ulong t0, byte* keys, ulong* points, byte* outputs, int start, int count, Kernel kernel, bool wipe, int sets, int total)
    {
        int size = KeySize(n), nu = LeafBits(n), blockBytes = Group * size, shared = Math.Min(nu, BlockBits);
        ulong nMask = FssKeyBits.Mask(n), zMask = FssKeyBits.Mask(nu);
        byte* quadSpace = stackalloc byte[(4 * sizeof(Quad)) + 64];
        var walker = new Walker(n, t0, kernel, stackalloc Lane[Group], (Quad*)(((nint)quadSpace + 63) & ~(nint)63)); // 64-byte aligned quads
        ulong* x = stackalloc ulong[Group];

        // Pending later-set evaluations: before a block fewer than 16 wait, and a block adds at most 16 (sets - 1).
        int capacity = sets > 1 ? Group * sets : 0;
        long pendingBytes = (long)blockBytes * sets;
        byte[]? pendingArray = sets > 1 && pendingBytes > 64 * 1024 ? GC.AllocateArray<byte>(checked((int)pendingBytes), pinned: true) : null;
        byte* pendingStack = stackalloc byte[sets > 1 && pendingArray is null ? (int)pendingBytes : 0];
        byte* pending = pendingArray is null ? pendingStack : (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pendingArray));
        ulong* pendingPoints = stackalloc ulong[capacity];
        nint* pendingOutputs = stackalloc nint[capacity];
        int waiting = 0;
        try
        {
            for (int g0 = start; g0 < start + count; g0 += Group)
            {
                int g = Math.Min(Group, start + count - g0);
                byte* block = keys + ((nint)(g0 / Group) * blockBytes);
                ulong* xp = points + g0; // a full block reads its points in place
                if (g < Group)
                {
                    for (int e = 0; e < Group; e++)
                    {
                        x[e] = points[g0 + Math.Min(e, g - 1)]; // a short last block evaluates its padding keys anywhere
                    }

                    xp = x;
                }

                walker.Walk(block, xp);
                walker.Bits(xp, g, zMask, outputs + g0);

                for (int set = 1; set < sets; set++)
                {
                    nint row = (nint)set * total;
                    for (int e = 0; e < g; e++)
                    {
                        ulong xs = points[row + g0 + e];
                        if (((xs ^ xp[e]) & nMask) >> shared == 0)
                        {
                            outputs[row + g0 + e] = walker.Bit(e, xs & zMask);
                        }
                        else
                        {
                            CopyKey(block, e, pending, waiting, size);
                            pendingPoints[waiting] = xs;
                            pendingOutputs[waiting] = row + g0 + e;
                            waiting++;
                        }
                    }
                }

                if (wipe)
                {
                    new Span<byte>(block, blockBytes).Clear();
                }

                int full = waiting / Group;
                if (full > 0)
                {
                    for (int pb = 0; pb < full; pb++)
                    {
                        WalkPending(ref walker, pending + ((nint)pb * blockBytes), pendingPoints + (pb * Group), pendingOutputs + (pb * Group), Group, outputs, zMask);
                    }

                    // The partial block (if any) moves to the front; everything behind it is wiped.
                    waiting -= full * Group;
                    Buffer.MemoryCopy(pending + ((nint)full * blockBytes), pending, blockBytes, blockBytes);
                    new Span<byte>(pending + blockBytes, full * blockBytes).Clear();
                    for (int e = 0; e < waiting; e++)
                    {
                        pendingPoints[e] = pendingPoints[(full * Group) + e];
                        pendingOutputs[e] = pendingOutputs[(full * Group) + e];
                    }
                }
            }

            if (waiting > 0)
            {
                for (int e = waiting; e < Group; e++)
                {
                    pendingPoints[e] = pendingPoints[waiting - 1]; // the unused (zero) slots are walked anywhere
                }

                WalkPending(ref walker, pending, pendingPoints, pendingOutputs, waiting, outputs, zMask);
            }
        }
        finally
        {
            if (sets > 1)
            {
                new Span<byte>(pending, (int)pendingBytes).Clear();
            }

            walker.Clear();
        }
    }

    private static void WalkPending(ref Walker walker, byte* block, ulong* x, nint* destinations, int used, byte* outputs, ulong zMask)
    {
        walker.Walk(block, x);
        for (int e = 0; e < used; e++)
        {
            outputs[destinations[e]] = walker.Bit(e, x[e] & zMask);
        }
    }

    /// <summary>Copies key <paramref name="e"/> of a batch-layout block into slot <paramref name="slot"/> of a run of blocks.</summary>
    private static void CopyKey(byte* block, int e, byte* destination, int slot, int size)
    {
        byte* to = destination + ((nint)(slot / Group) * Group * size) + ((slot % Group) * 16);
        byte* from = block + (e * 16);
        for (int s = 0; s < size / 16; s++)
        {
            Unsafe.WriteUnaligned(to + (s * Group * 16), Unsafe.ReadUnaligned<Vector128<byte>>(from + (s * Group * 16)));
        }
    }

    /// <summary>
    /// Walks one block of 16 keys to their leaves with the chosen kernel and reads output bits from the final state:
    /// the accumulated value bit and the corrected leaf block of each key (any leaf index, so points that share a path share the walk).
    /// </summary>
    private ref struct Walker
    {
        private readonly int _n;
        private readonly Kernel _kernel;
        private readonly Vector512<ulong> _t;   // the root control bit spread over every lane (all ones for party B)
        private readonly ulong _leafMask;
        private readonly Span<Lane> _lanes;
        private readonly Quad* _quads;

        public Walker(int n, ulong t0, Kernel kernel, Span<Lane> lanes, Quad* quads)
        {
            _n = n;
            _leafMask = FssKeyBits.Mask(LeafBits(n));
            _kernel = kernel;
            _t = Vector512.Create(0 - t0);
            _lanes = lanes;
            _quads = quads;
        }

        public readonly void Walk(byte* block, ulong* x)
        {
            if (_kernel == Kernel.Avx512)
            {
                Vector512<ulong> spread = Vector512.Create(0UL, 0, 1, 1, 2, 2, 3, 3);
                int shift = 64 - _n;
                for (int q = 0; q < 4; q++)
                {
                    Vector512<ulong> p = Avx512F.PermuteVar8x64(Vector256.Load(x + (4 * q)).ToVector512Unsafe(), spread);
                    _quads[q].X = Vector512.Load((ulong*)(block + (64 * q)));
                    _quads[q].T = _t;
                    _quads[q].V = Vector512<ulong>.Zero;
                    _quads[q].P = Vector512.ShiftLeft(p, shift); // shift 0 at n = 64 leaves p as it is
                }

                EvaluateBlockAvx512(_n, _quads, block + (16 * Group));
                return;
            }

            byte* o = stackalloc byte[Group];
            fixed (Lane* lanes = _lanes)
            {
                for (int e = 0; e < Group; e++)
                {
                    ulong p = x[e];
                    lanes[e].X = Unsafe.ReadUnaligned<Vector128<ulong>>(block + (16 * e));
                    lanes[e].T = _t.GetLower().GetLower();
                    lanes[e].V = Vector128<ulong>.Zero;
                    lanes[e].P = Vector128.Create(_n == 64 ? p : p << (64 - _n));
                    lanes[e].Z = (int)(p & _leafMask);
                }

                if (_kernel == Kernel.AesNi)
                {
                    EvaluateBlockAesNi(_n, lanes, block + (16 * Group), o);
                }
                else
                {
                    EvaluateBlockPortable(_n, lanes, block + (16 * Group), o);
                }
            }
        }

        /// <summary>
        /// The output bits of keys 0 to <paramref name="count"/> - 1 at their own points <paramref name="x"/> after
        /// <see cref="Walk"/>, into <paramref name="outputs"/>: with AVX-512 and a full block, eight keys per vector (two
        /// quads' leaf words picked by a two-table permute, shifted per lane, narrowed to bytes), else <see cref="Bit"/>.
        /// </summary>
        public readonly void Bits(ulong* x, int count, ulong zMask, byte* outputs)
        {
            if (_kernel != Kernel.Avx512 || count != Group)
            {
                for (int e = 0; e < count; e++)
                {
                    outputs[e] = Bit(e, x[e] & zMask);
                }

                return;
            }

            // Lane j of a pair of quads is key j: its leaf word is X's qword 2 j + bit 6 of z (j < 4, the first quad;
            // the second quad's qwords are 8 to 15), its value word V's qword 2 j.
            Vector512<ulong> even = Vector512.Create(0UL, 2, 4, 6, 8, 10, 12, 14);
            Vector512<ulong> mask = Vector512.Create(zMask), low6 = Vector512.Create(63UL), one = Vector512<ulong>.One;
            for (int pair = 0; pair < 2; pair++)
            {
                Quad* q = _quads + (2 * pair);
                Vector512<ulong> z = Vector512.Load(x + (8 * pair)) & mask;
                Vector512<ulong> word = Avx512F.PermuteVar8x64x2(q[0].X, even + (Vector512.ShiftRightLogical(z, 6) & one), q[1].X);
                Vector512<ulong> value = Avx512F.PermuteVar8x64x2(q[0].V, even, q[1].V);
                Vector512<ulong> bits = (Vector512.ShiftRightLogical(value, 2) ^ Avx512F.ShiftRightLogicalVariable(word, z & low6)) & one;
                *(ulong*)(outputs + (8 * pair)) = Avx512F.ConvertToVector128Byte(bits).AsUInt64().ToScalar();
            }
        }

        /// <summary>Key <paramref name="e"/>'s output bit at leaf index <paramref name="z"/> after <see cref="Walk"/>.</summary>
        public readonly byte Bit(int e, ulong z)
        {
            ulong word, value;
            if (_kernel == Kernel.Avx512)
            {
                Quad* q = _quads + (e >> 2);
                word = ((ulong*)&q->X)[(2 * (e & 3)) + (int)((z >> 6) & 1)]; // X holds the leaf block of index z >> 7
                value = ((ulong*)&q->V)[2 * (e & 3)];
            }
            else
            {
                Vector128<ulong> c = _lanes[e].X; // the corrected leaf block (Finish leaves it there)
                word = (z & 64) == 0 ? c.ToScalar() : c.GetElement(1);
                value = _lanes[e].V.ToScalar();
            }

            return (byte)(((value >> 2) ^ (word >> (int)(z & 63))) & 1);
        }

        public readonly void Clear()
        {
            _lanes.Clear();
            new Span<Quad>(_quads, 4).Clear();
        }
    }

    /// <summary>One lane's state between levels.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Lane
    {
        public Vector128<ulong> X;  // the corrected child block of the last level (the root seed at first)
        public Vector128<ulong> T;  // all ones when the control bit is set
        public Vector128<ulong> V;  // XOR of the corrected blocks: bit 2 is the accumulated value bit
        public Vector128<byte> G;   // sigma(input) of the current hash (the MMO feed-forward)
        public Vector128<ulong> P;  // remaining tree bits in both halves, the next one at bit 63
        public int Z;               // the leaf index (low nu bits of the point)
    }

    /// <summary>The lane's next hash input: seed XOR tweak (at the leaf, 2 + the index of the leaf block holding Z).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> RawInput(Lane* lane, bool leaf) =>
        ((lane->X & Vector128.Create(~7UL, ulong.MaxValue)) ^ (leaf ? Vector128.CreateScalar(LeafTweak + (ulong)(lane->Z >> BlockBits)) : Vector128.ShiftRightLogical(lane->P, 63))).AsByte();

    /// <summary>sigma(seed XOR tweak) of the lane's next hash input, kept for the feed-forward.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Input(Lane* lane, bool leaf)
    {
        Vector128<byte> g = AesCore.Sigma(RawInput(lane, leaf));
        lane->G = g;
        return g;
    }

    /// <summary>Applies the level's correction word to the hashed child block and advances the lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Advance(Lane* lane, Vector128<byte> encrypted, byte* cwPtr)
    {
        Vector128<ulong> h = (encrypted ^ lane->G).AsUInt64();
        Vector128<ulong> x = h ^ (Unsafe.ReadUnaligned<Vector128<ulong>>(cwPtr) & lane->T);
        // The control bit of side sigma is bit sigma of x: shift it to bit 63 (by 63 XOR sigma), spread it.
        if (Avx2.IsSupported)
        {
            Vector128<ulong> shift = Vector128.ShiftRightLogical(lane->P, 63) ^ Vector128.Create(63UL);
            Vector128<long> top = Avx2.ShiftLeftLogicalVariable(x, shift).AsInt64();
            lane->T = Avx2.BroadcastScalarToVector128(Vector128.ShiftRightArithmetic(top, 63)).AsUInt64();
        }
        else
        {
            int side = (int)(lane->P.ToScalar() >> 63);
            lane->T = Vector128.Create(0 - ((x.ToScalar() >> side) & 1));
        }
        lane->V ^= x;
        lane->X = x;
        lane->P = Vector128.ShiftLeft(lane->P, 1);
    }

    /// <summary>Corrects the lane's leaf block (<paramref name="leafPtr"/>: its key's word of leaf block 0) and reads bit Z.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Finish(Lane* lane, Vector128<byte> encrypted, byte* leafPtr)
    {
        int z = lane->Z;
        byte* word0 = leafPtr + ((z >> BlockBits) * 16 * Group);
        Vector128<ulong> c = (encrypted ^ lane->G).AsUInt64() ^ (Unsafe.ReadUnaligned<Vector128<ulong>>(word0) & lane->T);
        lane->X = c; // the corrected leaf block, for further leaf indices in it
        ulong word = (z & 64) == 0 ? c.ToScalar() : c.GetElement(1);
        return (byte)(((lane->V.ToScalar() >> 2) ^ (word >> (z & 63))) & 1);
    }

    /// <summary>
    /// Prefetches the key material <see cref="PrefetchDistance"/> bytes ahead of the level a kernel is about to read:
    /// one 256-byte chunk (16 keys' words of one level) per level, and at the leaf the chunks that have no level of
    /// their own (the second leaf word, if any, and the next block's root seeds), so that a walk along a batch prefetches
    /// every chunk exactly once. A batch is read strictly in order, but slowly (about 10 GB/s at n = 16, one 4 KiB page
    /// every few hundred nanoseconds), and the hardware prefetchers did not keep ahead of it: measured on one thread,
    /// 2^18 keys at n = 16 streamed from DRAM took 21-25 ns per key without this and 17 ns with it, the same as keys
    /// already in cache, which gain nothing and lose nothing (most likely the prefetchers do not run ahead across pages).
    /// Prefetching past the end of a batch is harmless: a prefetch is a hint and never faults.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchAhead(byte* cw, bool leaf, bool two)
    {
        byte* p = cw + PrefetchDistance;
        int lines = (leaf ? (two ? 3 : 2) : 1) * (16 * Group / 64);
        for (int i = 0; i < lines; i++)
        {
            Sse.Prefetch0(p + (64 * i));
        }
    }

    private static void EvaluateBlockAesNi(int n, Lane* lanes, byte* cws, byte* o)
    {
        int d = Depth(n);
        ReadOnlySpan<Vector128<byte>> rk = FixedKeyAes.RoundKeys;
        Vector128<byte> k0 = rk[0], k1 = rk[1], k2 = rk[2], k3 = rk[3], k4 = rk[4], k5 = rk[5];
        Vector128<byte> k6 = rk[6], k7 = rk[7], k8 = rk[8], k9 = rk[9], k10 = rk[10];
        bool two = LeafBlocks(n) == 2;
        for (int level = 0; level <= d; level++)
        {
            bool leaf = level == d;
            byte* cw = cws + (16 * Group * level);
            PrefetchAhead(cw, leaf, two);
            Vector128<byte> b0 = Input(lanes + 0, leaf) ^ k0;
            Vector128<byte> b1 = Input(lanes + 1, leaf) ^ k0;
            Vector128<byte> b2 = Input(lanes + 2, leaf) ^ k0;
            Vector128<byte> b3 = Input(lanes + 3, leaf) ^ k0;
            Vector128<byte> b4 = Input(lanes + 4, leaf) ^ k0;
            Vector128<byte> b5 = Input(lanes + 5, leaf) ^ k0;
            Vector128<byte> b6 = Input(lanes + 6, leaf) ^ k0;
            Vector128<byte> b7 = Input(lanes + 7, leaf) ^ k0;
            Vector128<byte> b8 = Input(lanes + 8, leaf) ^ k0;
            Vector128<byte> b9 = Input(lanes + 9, leaf) ^ k0;
            Vector128<byte> b10 = Input(lanes + 10, leaf) ^ k0;
            Vector128<byte> b11 = Input(lanes + 11, leaf) ^ k0;
            Vector128<byte> b12 = Input(lanes + 12, leaf) ^ k0;
            Vector128<byte> b13 = Input(lanes + 13, leaf) ^ k0;
            Vector128<byte> b14 = Input(lanes + 14, leaf) ^ k0;
            Vector128<byte> b15 = Input(lanes + 15, leaf) ^ k0;
            Round(k1, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14, ref b15);
            Round(k2, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14, ref b15);
            Round(k3, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14, ref b15);
            Round(k4, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14, ref b15);
            Round(k5, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14, ref b15);
            Round(k6, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14, ref b15);
            Round(k7, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14, ref b15);
            Round(k8, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14, ref b15);
            Round(k9, ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, ref b12, ref b13, ref b14, ref b15);
            if (leaf)
            {
                o[0] = Finish(lanes + 0, X86Aes.EncryptLast(b0, k10), cw + (16 * 0));
                o[1] = Finish(lanes + 1, X86Aes.EncryptLast(b1, k10), cw + (16 * 1));
                o[2] = Finish(lanes + 2, X86Aes.EncryptLast(b2, k10), cw + (16 * 2));
                o[3] = Finish(lanes + 3, X86Aes.EncryptLast(b3, k10), cw + (16 * 3));
                o[4] = Finish(lanes + 4, X86Aes.EncryptLast(b4, k10), cw + (16 * 4));
                o[5] = Finish(lanes + 5, X86Aes.EncryptLast(b5, k10), cw + (16 * 5));
                o[6] = Finish(lanes + 6, X86Aes.EncryptLast(b6, k10), cw + (16 * 6));
                o[7] = Finish(lanes + 7, X86Aes.EncryptLast(b7, k10), cw + (16 * 7));
                o[8] = Finish(lanes + 8, X86Aes.EncryptLast(b8, k10), cw + (16 * 8));
                o[9] = Finish(lanes + 9, X86Aes.EncryptLast(b9, k10), cw + (16 * 9));
                o[10] = Finish(lanes + 10, X86Aes.EncryptLast(b10, k10), cw + (16 * 10));
                o[11] = Finish(lanes + 11, X86Aes.EncryptLast(b11, k10), cw + (16 * 11));
                o[12] = Finish(lanes + 12, X86Aes.EncryptLast(b12, k10), cw + (16 * 12));
                o[13] = Finish(lanes + 13, X86Aes.EncryptLast(b13, k10), cw + (16 * 13));
                o[14] = Finish(lanes + 14, X86Aes.EncryptLast(b14, k10), cw + (16 * 14));
                o[15] = Finish(lanes + 15, X86Aes.EncryptLast(b15, k10), cw + (16 * 15));
            }
            else
            {
                Advance(lanes + 0, X86Aes.EncryptLast(b0, k10), cw + (16 * 0));
                Advance(lanes + 1, X86Aes.EncryptLast(b1, k10), cw + (16 * 1));
                Advance(lanes + 2, X86Aes.EncryptLast(b2, k10), cw + (16 * 2));
                Advance(lanes + 3, X86Aes.EncryptLast(b3, k10), cw + (16 * 3));
                Advance(lanes + 4, X86Aes.EncryptLast(b4, k10), cw + (16 * 4));
                Advance(lanes + 5, X86Aes.EncryptLast(b5, k10), cw + (16 * 5));
                Advance(lanes + 6, X86Aes.EncryptLast(b6, k10), cw + (16 * 6));
                Advance(lanes + 7, X86Aes.EncryptLast(b7, k10), cw + (16 * 7));
                Advance(lanes + 8, X86Aes.EncryptLast(b8, k10), cw + (16 * 8));
                Advance(lanes + 9, X86Aes.EncryptLast(b9, k10), cw + (16 * 9));
                Advance(lanes + 10, X86Aes.EncryptLast(b10, k10), cw + (16 * 10));
                Advance(lanes + 11, X86Aes.EncryptLast(b11, k10), cw + (16 * 11));
                Advance(lanes + 12, X86Aes.EncryptLast(b12, k10), cw + (16 * 12));
                Advance(lanes + 13, X86Aes.EncryptLast(b13, k10), cw + (16 * 13));
                Advance(lanes + 14, X86Aes.EncryptLast(b14, k10), cw + (16 * 14));
                Advance(lanes + 15, X86Aes.EncryptLast(b15, k10), cw + (16 * 15));
            }
        }
    }

    /// <summary>
    /// The AVX-512 kernel: the AES rounds run on 16 xmm registers as in <see cref="EvaluateBlockAesNi"/>, but
    /// the per-key bookkeeping (tweak, sigma, correction, control-bit spread, value accumulation) runs on four
    /// keys per 512-bit register, which cuts the non-AES instructions per key and level about threefold.
    /// The two halves of the block (keys 0-7 and 8-15) are software-pipelined half a level apart: while one
    /// half crosses a level boundary (last round, correction, next input: a chain of dependent instructions
    /// that no AES work of its own can overlap), the other half is in the middle of its rounds and keeps the
    /// AES units busy.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void EvaluateBlockAvx512(int n, Quad* quads, byte* cws)
    {
        int d = Depth(n);
        bool two = LeafBlocks(n) == 2;
        ReadOnlySpan<Vector128<byte>> rk = FixedKeyAes.RoundKeys;
        Vector128<byte> k1 = rk[1], k2 = rk[2], k3 = rk[3], k4 = rk[4], k5 = rk[5];
        Vector128<byte> k6 = rk[6], k7 = rk[7], k8 = rk[8], k9 = rk[9], k10 = rk[10];
        Vector512<ulong> k0 = Vector512.Create(rk[0]).AsUInt64();

        // Prologue: half A (quads 0, 1) enters level 0 and runs rounds 1-5. (The rounds are written out: the JIT
        // stops inlining helpers in a method this large, and a call per round would spill all sixteen blocks.)
        Vector512<ulong> g0 = QuadInput(quads + 0, d == 0, two) ^ k0;
        Vector128<byte> b0 = g0.GetLower().GetLower().AsByte();
        Vector128<byte> b1 = g0.GetLower().GetUpper().AsByte();
        Vector128<byte> b2 = Avx512F.ExtractVector128(g0, 2).AsByte();
        Vector128<byte> b3 = Avx512F.ExtractVector128(g0, 3).AsByte();
        Vector512<ulong> g1 = QuadInput(quads + 1, d == 0, two) ^ k0;
        Vector128<byte> b4 = g1.GetLower().GetLower().AsByte();
        Vector128<byte> b5 = g1.GetLower().GetUpper().AsByte();
        Vector128<byte> b6 = Avx512F.ExtractVector128(g1, 2).AsByte();
        Vector128<byte> b7 = Avx512F.ExtractVector128(g1, 3).AsByte();
        b0 = X86Aes.Encrypt(b0, k1);
        b1 = X86Aes.Encrypt(b1, k1);
        b2 = X86Aes.Encrypt(b2, k1);
        b3 = X86Aes.Encrypt(b3, k1);
        b4 = X86Aes.Encrypt(b4, k1);
        b5 = X86Aes.Encrypt(b5, k1);
        b6 = X86Aes.Encrypt(b6, k1);
        b7 = X86Aes.Encrypt(b7, k1);
        b0 = X86Aes.Encrypt(b0, k2);
        b1 = X86Aes.Encrypt(b1, k2);
        b2 = X86Aes.Encrypt(b2, k2);
        b3 = X86Aes.Encrypt(b3, k2);
        b4 = X86Aes.Encrypt(b4, k2);
        b5 = X86Aes.Encrypt(b5, k2);
        b6 = X86Aes.Encrypt(b6, k2);
        b7 = X86Aes.Encrypt(b7, k2);
        b0 = X86Aes.Encrypt(b0, k3);
        b1 = X86Aes.Encrypt(b1, k3);
        b2 = X86Aes.Encrypt(b2, k3);
        b3 = X86Aes.Encrypt(b3, k3);
        b4 = X86Aes.Encrypt(b4, k3);
        b5 = X86Aes.Encrypt(b5, k3);
        b6 = X86Aes.Encrypt(b6, k3);
        b7 = X86Aes.Encrypt(b7, k3);
        b0 = X86Aes.Encrypt(b0, k4);
        b1 = X86Aes.Encrypt(b1, k4);
        b2 = X86Aes.Encrypt(b2, k4);
        b3 = X86Aes.Encrypt(b3, k4);
        b4 = X86Aes.Encrypt(b4, k4);
        b5 = X86Aes.Encrypt(b5, k4);
        b6 = X86Aes.Encrypt(b6, k4);
        b7 = X86Aes.Encrypt(b7, k4);
        b0 = X86Aes.Encrypt(b0, k5);
        b1 = X86Aes.Encrypt(b1, k5);
        b2 = X86Aes.Encrypt(b2, k5);
        b3 = X86Aes.Encrypt(b3, k5);
        b4 = X86Aes.Encrypt(b4, k5);
        b5 = X86Aes.Encrypt(b5, k5);
        b6 = X86Aes.Encrypt(b6, k5);
        b7 = X86Aes.Encrypt(b7, k5);
        for (int level = 0; level <= d; level++)
        {
            bool leaf = level == d;
            byte* cw = cws + (16 * Group * level);
            PrefetchAhead(cw, leaf, two);

            // A: rounds 6-10 and the correction of this level; B: enters this level, rounds 1-5.
            Vector512<ulong> g2 = QuadInput(quads + 2, leaf, two) ^ k0;
            Vector128<byte> b8 = g2.GetLower().GetLower().AsByte();
            Vector128<byte> b9 = g2.GetLower().GetUpper().AsByte();
            Vector128<byte> b10 = Avx512F.ExtractVector128(g2, 2).AsByte();
            Vector128<byte> b11 = Avx512F.ExtractVector128(g2, 3).AsByte();
            Vector512<ulong> g3 = QuadInput(quads + 3, leaf, two) ^ k0;
            Vector128<byte> b12 = g3.GetLower().GetLower().AsByte();
            Vector128<byte> b13 = g3.GetLower().GetUpper().AsByte();
            Vector128<byte> b14 = Avx512F.ExtractVector128(g3, 2).AsByte();
            Vector128<byte> b15 = Avx512F.ExtractVector128(g3, 3).AsByte();
            b0 = X86Aes.Encrypt(b0, k6);
            b8 = X86Aes.Encrypt(b8, k1);
            b1 = X86Aes.Encrypt(b1, k6);
            b9 = X86Aes.Encrypt(b9, k1);
            b2 = X86Aes.Encrypt(b2, k6);
            b10 = X86Aes.Encrypt(b10, k1);
            b3 = X86Aes.Encrypt(b3, k6);
            b11 = X86Aes.Encrypt(b11, k1);
            b4 = X86Aes.Encrypt(b4, k6);
            b12 = X86Aes.Encrypt(b12, k1);
            b5 = X86Aes.Encrypt(b5, k6);
            b13 = X86Aes.Encrypt(b13, k1);
            b6 = X86Aes.Encrypt(b6, k6);
            b14 = X86Aes.Encrypt(b14, k1);
            b7 = X86Aes.Encrypt(b7, k6);
            b15 = X86Aes.Encrypt(b15, k1);
            b0 = X86Aes.Encrypt(b0, k7);
            b8 = X86Aes.Encrypt(b8, k2);
            b1 = X86Aes.Encrypt(b1, k7);
            b9 = X86Aes.Encrypt(b9, k2);
            b2 = X86Aes.Encrypt(b2, k7);
            b10 = X86Aes.Encrypt(b10, k2);
            b3 = X86Aes.Encrypt(b3, k7);
            b11 = X86Aes.Encrypt(b11, k2);
            b4 = X86Aes.Encrypt(b4, k7);
            b12 = X86Aes.Encrypt(b12, k2);
            b5 = X86Aes.Encrypt(b5, k7);
            b13 = X86Aes.Encrypt(b13, k2);
            b6 = X86Aes.Encrypt(b6, k7);
            b14 = X86Aes.Encrypt(b14, k2);
            b7 = X86Aes.Encrypt(b7, k7);
            b15 = X86Aes.Encrypt(b15, k2);
            b0 = X86Aes.Encrypt(b0, k8);
            b8 = X86Aes.Encrypt(b8, k3);
            b1 = X86Aes.Encrypt(b1, k8);
            b9 = X86Aes.Encrypt(b9, k3);
            b2 = X86Aes.Encrypt(b2, k8);
            b10 = X86Aes.Encrypt(b10, k3);
            b3 = X86Aes.Encrypt(b3, k8);
            b11 = X86Aes.Encrypt(b11, k3);
            b4 = X86Aes.Encrypt(b4, k8);
            b12 = X86Aes.Encrypt(b12, k3);
            b5 = X86Aes.Encrypt(b5, k8);
            b13 = X86Aes.Encrypt(b13, k3);
            b6 = X86Aes.Encrypt(b6, k8);
            b14 = X86Aes.Encrypt(b14, k3);
            b7 = X86Aes.Encrypt(b7, k8);
            b15 = X86Aes.Encrypt(b15, k3);
            b0 = X86Aes.Encrypt(b0, k9);
            b8 = X86Aes.Encrypt(b8, k4);
            b1 = X86Aes.Encrypt(b1, k9);
            b9 = X86Aes.Encrypt(b9, k4);
            b2 = X86Aes.Encrypt(b2, k9);
            b10 = X86Aes.Encrypt(b10, k4);
            b3 = X86Aes.Encrypt(b3, k9);
            b11 = X86Aes.Encrypt(b11, k4);
            b4 = X86Aes.Encrypt(b4, k9);
            b12 = X86Aes.Encrypt(b12, k4);
            b5 = X86Aes.Encrypt(b5, k9);
            b13 = X86Aes.Encrypt(b13, k4);
            b6 = X86Aes.Encrypt(b6, k9);
            b14 = X86Aes.Encrypt(b14, k4);
            b7 = X86Aes.Encrypt(b7, k9);
            b15 = X86Aes.Encrypt(b15, k4);
            b0 = X86Aes.EncryptLast(b0, k10);
            b1 = X86Aes.EncryptLast(b1, k10);
            b2 = X86Aes.EncryptLast(b2, k10);
            b3 = X86Aes.EncryptLast(b3, k10);
            QuadAdvance(quads + 0, Join(b0, b1, b2, b3), cw + 0, leaf, two);
            b4 = X86Aes.EncryptLast(b4, k10);
            b5 = X86Aes.EncryptLast(b5, k10);
            b6 = X86Aes.EncryptLast(b6, k10);
            b7 = X86Aes.EncryptLast(b7, k10);
            QuadAdvance(quads + 1, Join(b4, b5, b6, b7), cw + 64, leaf, two);
            b8 = X86Aes.Encrypt(b8, k5);
            b9 = X86Aes.Encrypt(b9, k5);
            b10 = X86Aes.Encrypt(b10, k5);
            b11 = X86Aes.Encrypt(b11, k5);
            b12 = X86Aes.Encrypt(b12, k5);
            b13 = X86Aes.Encrypt(b13, k5);
            b14 = X86Aes.Encrypt(b14, k5);
            b15 = X86Aes.Encrypt(b15, k5);

            // A: enters the next level, rounds 1-5; B: rounds 6-10 and the correction of this level.
            if (leaf)
            {
                b8 = X86Aes.Encrypt(b8, k6);
                b9 = X86Aes.Encrypt(b9, k6);
                b10 = X86Aes.Encrypt(b10, k6);
                b11 = X86Aes.Encrypt(b11, k6);
                b12 = X86Aes.Encrypt(b12, k6);
                b13 = X86Aes.Encrypt(b13, k6);
                b14 = X86Aes.Encrypt(b14, k6);
                b15 = X86Aes.Encrypt(b15, k6);
                b8 = X86Aes.Encrypt(b8, k7);
                b9 = X86Aes.Encrypt(b9, k7);
                b10 = X86Aes.Encrypt(b10, k7);
                b11 = X86Aes.Encrypt(b11, k7);
                b12 = X86Aes.Encrypt(b12, k7);
                b13 = X86Aes.Encrypt(b13, k7);
                b14 = X86Aes.Encrypt(b14, k7);
                b15 = X86Aes.Encrypt(b15, k7);
                b8 = X86Aes.Encrypt(b8, k8);
                b9 = X86Aes.Encrypt(b9, k8);
                b10 = X86Aes.Encrypt(b10, k8);
                b11 = X86Aes.Encrypt(b11, k8);
                b12 = X86Aes.Encrypt(b12, k8);
                b13 = X86Aes.Encrypt(b13, k8);
                b14 = X86Aes.Encrypt(b14, k8);
                b15 = X86Aes.Encrypt(b15, k8);
                b8 = X86Aes.Encrypt(b8, k9);
                b9 = X86Aes.Encrypt(b9, k9);
                b10 = X86Aes.Encrypt(b10, k9);
                b11 = X86Aes.Encrypt(b11, k9);
                b12 = X86Aes.Encrypt(b12, k9);
                b13 = X86Aes.Encrypt(b13, k9);
                b14 = X86Aes.Encrypt(b14, k9);
                b15 = X86Aes.Encrypt(b15, k9);
            }
            else
            {
                bool nextLeaf = level + 1 == d;
                g0 = QuadInput(quads + 0, nextLeaf, two) ^ k0;
                b0 = g0.GetLower().GetLower().AsByte();
                b1 = g0.GetLower().GetUpper().AsByte();
                b2 = Avx512F.ExtractVector128(g0, 2).AsByte();
                b3 = Avx512F.ExtractVector128(g0, 3).AsByte();
                g1 = QuadInput(quads + 1, nextLeaf, two) ^ k0;
                b4 = g1.GetLower().GetLower().AsByte();
                b5 = g1.GetLower().GetUpper().AsByte();
                b6 = Avx512F.ExtractVector128(g1, 2).AsByte();
                b7 = Avx512F.ExtractVector128(g1, 3).AsByte();
                b0 = X86Aes.Encrypt(b0, k1);
                b8 = X86Aes.Encrypt(b8, k6);
                b1 = X86Aes.Encrypt(b1, k1);
                b9 = X86Aes.Encrypt(b9, k6);
                b2 = X86Aes.Encrypt(b2, k1);
                b10 = X86Aes.Encrypt(b10, k6);
                b3 = X86Aes.Encrypt(b3, k1);
                b11 = X86Aes.Encrypt(b11, k6);
                b4 = X86Aes.Encrypt(b4, k1);
                b12 = X86Aes.Encrypt(b12, k6);
                b5 = X86Aes.Encrypt(b5, k1);
                b13 = X86Aes.Encrypt(b13, k6);
                b6 = X86Aes.Encrypt(b6, k1);
                b14 = X86Aes.Encrypt(b14, k6);
                b7 = X86Aes.Encrypt(b7, k1);
                b15 = X86Aes.Encrypt(b15, k6);
                b0 = X86Aes.Encrypt(b0, k2);
                b8 = X86Aes.Encrypt(b8, k7);
                b1 = X86Aes.Encrypt(b1, k2);
                b9 = X86Aes.Encrypt(b9, k7);
                b2 = X86Aes.Encrypt(b2, k2);
                b10 = X86Aes.Encrypt(b10, k7);
                b3 = X86Aes.Encrypt(b3, k2);
                b11 = X86Aes.Encrypt(b11, k7);
                b4 = X86Aes.Encrypt(b4, k2);
                b12 = X86Aes.Encrypt(b12, k7);
                b5 = X86Aes.Encrypt(b5, k2);
                b13 = X86Aes.Encrypt(b13, k7);
                b6 = X86Aes.Encrypt(b6, k2);
                b14 = X86Aes.Encrypt(b14, k7);
                b7 = X86Aes.Encrypt(b7, k2);
                b15 = X86Aes.Encrypt(b15, k7);
                b0 = X86Aes.Encrypt(b0, k3);
                b8 = X86Aes.Encrypt(b8, k8);
                b1 = X86Aes.Encrypt(b1, k3);
                b9 = X86Aes.Encrypt(b9, k8);
                b2 = X86Aes.Encrypt(b2, k3);
                b10 = X86Aes.Encrypt(b10, k8);
                b3 = X86Aes.Encrypt(b3, k3);
                b11 = X86Aes.Encrypt(b11, k8);
                b4 = X86Aes.Encrypt(b4, k3);
                b12 = X86Aes.Encrypt(b12, k8);
                b5 = X86Aes.Encrypt(b5, k3);
                b13 = X86Aes.Encrypt(b13, k8);
                b6 = X86Aes.Encrypt(b6, k3);
                b14 = X86Aes.Encrypt(b14, k8);
                b7 = X86Aes.Encrypt(b7, k3);
                b15 = X86Aes.Encrypt(b15, k8);
                b0 = X86Aes.Encrypt(b0, k4);
                b8 = X86Aes.Encrypt(b8, k9);
                b1 = X86Aes.Encrypt(b1, k4);
                b9 = X86Aes.Encrypt(b9, k9);
                b2 = X86Aes.Encrypt(b2, k4);
                b10 = X86Aes.Encrypt(b10, k9);
                b3 = X86Aes.Encrypt(b3, k4);
                b11 = X86Aes.Encrypt(b11, k9);
                b4 = X86Aes.Encrypt(b4, k4);
                b12 = X86Aes.Encrypt(b12, k9);
                b5 = X86Aes.Encrypt(b5, k4);
                b13 = X86Aes.Encrypt(b13, k9);
                b6 = X86Aes.Encrypt(b6, k4);
                b14 = X86Aes.Encrypt(b14, k9);
                b7 = X86Aes.Encrypt(b7, k4);
                b15 = X86Aes.Encrypt(b15, k9);
            }

            b8 = X86Aes.EncryptLast(b8, k10);
            b9 = X86Aes.EncryptLast(b9, k10);
            b10 = X86Aes.EncryptLast(b10, k10);
            b11 = X86Aes.EncryptLast(b11, k10);
            QuadAdvance(quads + 2, Join(b8, b9, b10, b11), cw + 128, leaf, two);
            b12 = X86Aes.EncryptLast(b12, k10);
            b13 = X86Aes.EncryptLast(b13, k10);
            b14 = X86Aes.EncryptLast(b14, k10);
            b15 = X86Aes.EncryptLast(b15, k10);
            QuadAdvance(quads + 3, Join(b12, b13, b14, b15), cw + 192, leaf, two);
            if (!leaf)
            {
                b0 = X86Aes.Encrypt(b0, k5);
                b1 = X86Aes.Encrypt(b1, k5);
                b2 = X86Aes.Encrypt(b2, k5);
                b3 = X86Aes.Encrypt(b3, k5);
                b4 = X86Aes.Encrypt(b4, k5);
                b5 = X86Aes.Encrypt(b5, k5);
                b6 = X86Aes.Encrypt(b6, k5);
                b7 = X86Aes.Encrypt(b7, k5);
            }
        }
    }

    /// <summary>Four lanes' state in 512-bit registers (one 128-bit lane per key), as <see cref="Lane"/>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Quad
    {
        public Vector512<ulong> X;
        public Vector512<ulong> T;
        public Vector512<ulong> V;
        public Vector512<ulong> P;
        public Vector512<ulong> G;
    }

    /// <summary>
    /// sigma(seed XOR tweak) for four keys, kept in <see cref="Quad.G"/> for the feed-forward. With a two-block leaf
    /// (<paramref name="two"/>), the leaf tweak is 2 + the leaf index's top bit, which is then P's top bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> QuadInput(Quad* q, bool leaf, bool two)
    {
        // The constants are spelled element by element: the JIT materializes Vector512.Create(Vector128) with inserts.
        Vector512<ulong> lowHalves = Vector512.Create(1UL, 0UL, 1UL, 0UL, 1UL, 0UL, 1UL, 0UL);
        Vector512<ulong> tweak = leaf
            ? Vector512.Create(LeafTweak, 0UL, LeafTweak, 0UL, LeafTweak, 0UL, LeafTweak, 0UL) | (two ? Vector512.ShiftRightLogical(q->P, 63) & lowHalves : Vector512<ulong>.Zero)
            : Vector512.ShiftRightLogical(q->P, 63);
        Vector512<ulong> input = (q->X & Vector512.Create(~7UL, ulong.MaxValue, ~7UL, ulong.MaxValue, ~7UL, ulong.MaxValue, ~7UL, ulong.MaxValue)) ^ tweak;
        Vector512<ulong> g = Avx512F.Shuffle(input.AsUInt32(), 0x4E).AsUInt64() ^ (input & Vector512.Create(0UL, ulong.MaxValue, 0UL, ulong.MaxValue, 0UL, ulong.MaxValue, 0UL, ulong.MaxValue));
        q->G = g;
        return g;
    }

    /// <summary>Four encrypted blocks as one 512-bit register.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Join(Vector128<byte> a, Vector128<byte> b, Vector128<byte> c, Vector128<byte> d) =>
        Avx512F.InsertVector256(
            Avx2.InsertVector128(a.ToVector256Unsafe(), b, 1).ToVector512Unsafe(),
            Avx2.InsertVector128(c.ToVector256Unsafe(), d, 1),
            1).AsUInt64();

    /// <summary>
    /// As <see cref="Advance"/> for four keys; at the leaf only the corrected block is kept (in X). With a two-block
    /// leaf (<paramref name="two"/>), each key takes the correction word of the block its P's top bit selects.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void QuadAdvance(Quad* q, Vector512<ulong> encrypted, byte* cw, bool leaf, bool two)
    {
        Vector512<ulong> word = Vector512.Load((ulong*)cw);
        if (leaf && two)
        {
            // P holds the same bits in both halves of a key, so the arithmetic shift selects whole 128-bit words.
            Vector512<ulong> upper = Vector512.ShiftRightArithmetic(q->P.AsInt64(), 63).AsUInt64();
            word ^= (word ^ Vector512.Load((ulong*)(cw + (16 * Group)))) & upper;
        }

        Vector512<ulong> x = (encrypted ^ q->G) ^ (word & q->T);
        q->X = x;
        if (!leaf)
        {
            Vector512<ulong> shift = Vector512.ShiftRightLogical(q->P, 63) ^ Vector512.Create(63UL);
            Vector512<long> top = Vector512.ShiftRightArithmetic(Avx512F.ShiftLeftLogicalVariable(x, shift).AsInt64(), 63);
            q->T = Avx512F.UnpackLow(top, top).AsUInt64();
            q->V ^= x;
            q->P = Vector512.ShiftLeft(q->P, 1);
        }
    }

    private static void EvaluateBlockPortable(int n, Lane* lanes, byte* cws, byte* o)
    {
        int d = Depth(n);
        Span<Vector128<byte>> blocks = stackalloc Vector128<byte>[Group];
        for (int level = 0; level <= d; level++)
        {
            bool leaf = level == d;
            byte* cw = cws + (16 * Group * level);
            for (int e = 0; e < Group; e++)
            {
                _ = Input(lanes + e, leaf); // records G = sigma(input)
                blocks[e] = RawInput(lanes + e, leaf);
            }

            FixedKeyAes.HashInPlace(blocks); // AES(G) XOR G
            for (int e = 0; e < Group; e++)
            {
                Vector128<byte> encrypted = blocks[e] ^ lanes[e].G;
                if (leaf)
                {
                    o[e] = Finish(lanes + e, encrypted, cw + (16 * e));
                }
                else
                {
                    Advance(lanes + e, encrypted, cw + (16 * e));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round(
        Vector128<byte> k,
        ref Vector128<byte> b0, ref Vector128<byte> b1, ref Vector128<byte> b2, ref Vector128<byte> b3, ref Vector128<byte> b4, ref Vector128<byte> b5, ref Vector128<byte> b6, ref Vector128<byte> b7, ref Vector128<byte> b8, ref Vector128<byte> b9, ref Vector128<byte> b10, ref Vector128<byte> b11, ref Vector128<byte> b12, ref Vector128<byte> b13, ref Vector128<byte> b14, ref Vector128<byte> b15)
    {
        b0 = X86Aes.Encrypt(b0, k);
        b1 = X86Aes.Encrypt(b1, k);
        b2 = X86Aes.Encrypt(b2, k);
        b3 = X86Aes.Encrypt(b3, k);
        b4 = X86Aes.Encrypt(b4, k);
        b5 = X86Aes.Encrypt(b5, k);
        b6 = X86Aes.Encrypt(b6, k);
        b7 = X86Aes.Encrypt(b7, k);
        b8 = X86Aes.Encrypt(b8, k);
        b9 = X86Aes.Encrypt(b9, k);
        b10 = X86Aes.Encrypt(b10, k);
        b11 = X86Aes.Encrypt(b11, k);
        b12 = X86Aes.Encrypt(b12, k);
        b13 = X86Aes.Encrypt(b13, k);
        b14 = X86Aes.Encrypt(b14, k);
        b15 = X86Aes.Encrypt(b15, k);
    }
}
