using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using HssEe.Randomness;

namespace HssEe.Fss;

/// <summary>
/// DPF key generation and evaluation loops (BGI16 with early termination), interleaving several
/// keys (or, for full-domain evaluation, every node of a level) per <see cref="FixedKeyAes.HashInPlace"/> call.
/// </summary>
internal static unsafe class DpfKernels
{
    private const int GenGroup = 16;
    private const int EvalGroup = 64;
    private const int PrefetchLevels = 4;
    private const int MaxGroupBlocks = 256;

    /// <summary>Generates key pairs <c>[start, start + count)</c> (same conventions as <see cref="DcfKernels.Generate"/>).</summary>
    public static void Generate(
        in DpfKeyLayout lay, ulong* alphas, ulong* betas, int betaStride, Vector128<byte>[] seeds,
        byte* keysA, byte* keysB, int start, int count)
    {
        int n = lay.N, m = lay.M, ell = lay.Ell, levels = lay.Levels, lb = lay.LeafBlocks;
        ulong mask = lay.OutputMask;
        int group = Math.Max(1, Math.Min(GenGroup, MaxGroupBlocks / (2 * lb)));
        Vector128<byte>[] buf = ArrayPool<Vector128<byte>>.Shared.Rent(Math.Max(4 * group, 2 * group * lb) + 1);
        Span<Vector128<ulong>> s = stackalloc Vector128<ulong>[2 * GenGroup];
        Span<ulong> t = stackalloc ulong[2 * GenGroup];
        ulong slotMask = (1UL << lay.LeafBits) - 1;
        try
        {
            for (int g0 = 0; g0 < count; g0 += group)
            {
                int g = Math.Min(group, count - g0);
                for (int e = 0; e < g; e++)
                {
                    int k = start + g0 + e;
                    s[2 * e] = seeds[2 * k].AsUInt64();
                    s[(2 * e) + 1] = seeds[(2 * k) + 1].AsUInt64();
                    t[2 * e] = 0;
                    t[(2 * e) + 1] = 1;
                    nint off = (nint)k * lay.KeySize;
                    Unsafe.WriteUnaligned(keysA + off, seeds[2 * k]);
                    Unsafe.WriteUnaligned(keysB + off, seeds[(2 * k) + 1]);
                }

                for (int i = 0; i < levels; i++)
                {
                    for (int e = 0; e < 2 * g; e++)
                    {
                        Vector128<byte> sp = s[e].AsByte();
                        buf[2 * e] = sp ^ FssKeyBits.Tweak(FssKeyBits.LeftTweak);
                        buf[(2 * e) + 1] = sp ^ FssKeyBits.Tweak(FssKeyBits.RightTweak);
                    }

                    FixedKeyAes.HashInPlace(buf.AsSpan(0, 4 * g));
                    for (int e = 0; e < g; e++)
                    {
                        int k = start + g0 + e;
                        ulong a = (alphas[k] >> (n - 1 - i)) & 1;
                        Vector128<ulong> l0 = buf[4 * e].AsUInt64(), r0 = buf[(4 * e) + 1].AsUInt64();
                        Vector128<ulong> l1 = buf[(4 * e) + 2].AsUInt64(), r1 = buf[(4 * e) + 3].AsUInt64();
                        ulong tl0 = l0.ToScalar() & 1, tr0 = r0.ToScalar() & 1, tl1 = l1.ToScalar() & 1, tr1 = r1.ToScalar() & 1;
                        Vector128<ulong> clear = FssKeyBits.ClearT;
                        l0 &= clear;
                        r0 &= clear;
                        l1 &= clear;
                        r1 &= clear;
                        Vector128<ulong> scw = a == 0 ? r0 ^ r1 : l0 ^ l1;
                        ulong tlcw = tl0 ^ tl1 ^ a ^ 1;
                        ulong trcw = tr0 ^ tr1 ^ a;
                        nint off = (nint)k * lay.KeySize;
                        Vector128<byte> stored = (scw | Vector128.CreateScalar(tlcw)).AsByte();
                        Unsafe.WriteUnaligned(keysA + off + 16 + (16 * i), stored);
                        Unsafe.WriteUnaligned(keysB + off + 16 + (16 * i), stored);
                        FssKeyBits.Write(keysA + off + lay.BitRegion, lay.TrBitBase + i, 1, trcw);
                        FssKeyBits.Write(keysB + off + lay.BitRegion, lay.TrBitBase + i, 1, trcw);
                        ulong t0 = t[2 * e], t1 = t[(2 * e) + 1];
                        ulong tKeepCw = a == 0 ? tlcw : trcw;
                        s[2 * e] = (a == 0 ? l0 : r0) ^ (scw & Vector128.Create(0 - t0));
                        s[(2 * e) + 1] = (a == 0 ? l1 : r1) ^ (scw & Vector128.Create(0 - t1));
                        t[2 * e] = (a == 0 ? tl0 : tr0) ^ (t0 & tKeepCw);
                        t[(2 * e) + 1] = (a == 0 ? tl1 : tr1) ^ (t1 & tKeepCw);
                    }
                }

                // Leaf: CW = (-1)^{t1} [beta e_slot - Convert(s0) + Convert(s1)] over 2^d slots of m words.
                for (int e = 0; e < 2 * g; e++)
                {
                    for (int j = 0; j < lb; j++)
                    {
                        buf[(e * lb) + j] = s[e].AsByte() ^ FssKeyBits.Tweak(FssKeyBits.PayloadTweak + (ulong)j);
                    }
                }

                FixedKeyAes.HashInPlace(buf.AsSpan(0, 2 * g * lb));
                ref byte leafBytes = ref Unsafe.As<Vector128<byte>, byte>(ref buf[0]);
                for (int e = 0; e < g; e++)
                {
                    int k = start + g0 + e;
                    nint off = (nint)k * lay.KeySize;
                    byte* bitsA = keysA + off + lay.BitRegion;
                    byte* bitsB = keysB + off + lay.BitRegion;
                    ulong slot = alphas[k] & slotMask;
                    ulong* beta = betas + ((long)k * betaStride);
                    long base0 = (long)(2 * e) * lb * 128, base1 = (long)((2 * e) + 1) * lb * 128;
                    for (long w = 0; w < lay.LeafWords; w++)
                    {
                        long bit = w * ell;
                        ulong c0 = FssKeyBits.Read(ref leafBytes, base0 + bit, ell, mask);
                        ulong c1 = FssKeyBits.Read(ref leafBytes, base1 + bit, ell, mask);
                        ulong target = (ulong)(w / m) == slot ? beta[w % m] : 0;
                        ulong cw = target - c0 + c1;
                        if (t[(2 * e) + 1] != 0)
                        {
                            cw = 0 - cw;
                        }

                        FssKeyBits.Write(bitsA, bit, ell, cw & mask);
                        FssKeyBits.Write(bitsB, bit, ell, cw & mask);
                    }
                }
            }
        }
        finally
        {
            s.Clear();
            t.Clear();
            ArrayPool<Vector128<byte>>.Shared.Return(buf, clearArray: true);
        }
    }

    /// <summary>Evaluates <paramref name="count"/> points; point e uses key <c>firstKey + e * keyStep</c>.</summary>
    public static void Evaluate(in DpfKeyLayout lay, byte[] keys, Party party, int firstKey, int keyStep, ulong* points, ulong* outputs, int count)
    {
        int n = lay.N, m = lay.M, ell = lay.Ell, levels = lay.Levels, lb = lay.LeafBlocks;
        nint keySize = lay.KeySize, bitRegion = lay.BitRegion;
        long trBase = lay.TrBitBase;
        ulong inMask = lay.InputMask, outMask = lay.OutputMask, slotMask = (1UL << lay.LeafBits) - 1;
        ulong negate = party == Party.B ? ulong.MaxValue : 0;
        int group = Math.Max(1, Math.Min(EvalGroup, MaxGroupBlocks / lb));
        Vector128<byte>[] leafBuf = ArrayPool<Vector128<byte>>.Shared.Rent((group * lb) + 1);
        Lane* lanes = stackalloc Lane[EvalGroup];
        Vector128<ulong>* buf = stackalloc Vector128<ulong>[EvalGroup];
        var blocks = new Span<Vector128<byte>>(buf, EvalGroup);
        Vector128<ulong> clear = FssKeyBits.ClearT;
        int alignShift = 64 - n;
        try
        {
            fixed (byte* kb = keys)
            fixed (Vector128<byte>* leaf = leafBuf)
            {
                for (int g0 = 0; g0 < count; g0 += group)
                {
                    int g = Math.Min(group, count - g0);
                    for (int e = 0; e < g; e++)
                    {
                        Lane* lane = lanes + e;
                        byte* key = kb + ((nint)(firstKey + ((long)(g0 + e) * keyStep)) * keySize);
                        ulong x = points[g0 + e] & inMask;
                        lane->Key = key;
                        lane->X = x << alignShift;
                        lane->Slot = x & slotMask;
                        lane->Tr = levels == 0 ? 0 : FssKeyBits.Read(ref key[bitRegion], trBase, levels, ulong.MaxValue);
                        lane->T = negate;
                        if (Sse.IsSupported)
                        {
                            byte* ahead = key + (group * keyStep * keySize);
                            Sse.Prefetch0(ahead);
                            Sse.Prefetch0(ahead + bitRegion + (nint)(trBase >> 3));
                        }

                        buf[e] = Unsafe.ReadUnaligned<Vector128<ulong>>(key) ^ Vector128.CreateScalar(lane->X >> 63);
                    }

                    for (int i = 0; i < levels; i++)
                    {
                        FixedKeyAes.HashInPlace(blocks[..g]);
                        nint cwOff = 16 + (16 * i);
                        bool last = i == levels - 1;
                        Lane* lane = lanes;
                        Vector128<ulong>* b = buf;
                        for (int e = 0; e < g; e++, lane++, b++)
                        {
                            byte* key = lane->Key;
                            if (Sse.IsSupported)
                            {
                                Sse.Prefetch0(key + cwOff + (16 * PrefetchLevels));
                            }

                            ulong x = lane->X;
                            ulong bit = x >> 63;
                            ulong tr = lane->Tr;
                            lane->Tr = tr >> 1;
                            Vector128<ulong> cw = Unsafe.ReadUnaligned<Vector128<ulong>>(key + cwOff);
                            Vector128<ulong> correction = cw ^ Vector128.CreateScalar((cw.ToScalar() ^ tr) & bit);
                            Vector128<ulong> corrected = *b ^ (correction & Vector128.Create(lane->T));
                            lane->T = 0 - (corrected.ToScalar() & 1);
                            x <<= 1;
                            lane->X = x;
                            *b = (corrected & clear) ^ Vector128.CreateScalar(last ? 0 : x >> 63);
                        }
                    }

                    // Leaf: Convert(s) = H(s ^ (2 + j)) for j < L, then word j of slot = sign * (Convert + t * CW).
                    for (int e = 0; e < g; e++)
                    {
                        Vector128<ulong> seed = levels == 0 ? buf[e] ^ Vector128.CreateScalar(lanes[e].X >> 63) : buf[e];
                        for (int j = 0; j < lb; j++)
                        {
                            ((Vector128<ulong>*)leaf)[(e * lb) + j] = seed ^ Vector128.CreateScalar(FssKeyBits.PayloadTweak + (ulong)j);
                        }
                    }

                    FixedKeyAes.HashInPlace(leafBuf.AsSpan(0, g * lb));
                    ref byte leafBytes = ref *(byte*)leaf;
                    for (int e = 0; e < g; e++)
                    {
                        Lane* lane = lanes + e;
                        ref byte bits = ref lane->Key[bitRegion];
                        long slotBit = (long)lane->Slot * m * ell;
                        long leafBase = (long)e * lb * 128;
                        ulong t = lane->T;
                        ulong* o = outputs + ((long)(g0 + e) * m);
                        for (int j = 0; j < m; j++)
                        {
                            long bit = slotBit + ((long)j * ell);
                            ulong c = FssKeyBits.Read(ref leafBytes, leafBase + bit, ell, outMask);
                            ulong cw = FssKeyBits.Read(ref bits, bit, ell, outMask);
                            ulong total = c + (cw & t);
                            o[j] = ((total ^ negate) - negate) & outMask;
                        }
                    }
                }
            }
        }
        finally
        {
            blocks.Clear();
            new Span<Lane>(lanes, EvalGroup).Clear();
            ArrayPool<Vector128<byte>>.Shared.Return(leafBuf, clearArray: true);
        }
    }

    /// <summary>
    /// Full-domain evaluation of key <paramref name="keyIndex"/>: level-by-level expansion, every node of a level
    /// hashed in one call (2 blocks per node), then the leaf vectors; <paramref name="outputs"/> gets 2^n * m words.
    /// A node's correction (with its parent's t) is applied while the next level's hash inputs are built, so each
    /// level is one pass over the nodes plus the hash.
    /// </summary>
    public static void EvaluateAll(in DpfKeyLayout lay, byte[] keys, Party party, int keyIndex, ulong* outputs)
    {
        int m = lay.M, ell = lay.Ell, levels = lay.Levels, lb = lay.LeafBlocks;
        ulong outMask = lay.OutputMask;
        ulong negate = party == Party.B ? ulong.MaxValue : 0;
        int width = 1 << levels;
        Vector128<ulong>[] curArray = ArrayPool<Vector128<ulong>>.Shared.Rent(width);
        Vector128<ulong>[] nextArray = ArrayPool<Vector128<ulong>>.Shared.Rent(width);
        ulong[] tPrevArray = ArrayPool<ulong>.Shared.Rent(width);
        ulong[] tCurArray = ArrayPool<ulong>.Shared.Rent(width);
        int leafChunk = Math.Max(1, Math.Min(width, MaxGroupBlocks / lb));
        Vector128<byte>[] leafArray = ArrayPool<Vector128<byte>>.Shared.Rent((leafChunk * lb) + 1);
        ulong[] cwArray = ArrayPool<ulong>.Shared.Rent((int)lay.LeafWords);
        Vector128<ulong> clear = FssKeyBits.ClearT;
        Vector128<ulong> rightTweak = Vector128.CreateScalar(FssKeyBits.RightTweak);
        try
        {
            fixed (byte* key = &keys[keyIndex * lay.KeySize])
            fixed (Vector128<ulong>* curBase = curArray)
            fixed (Vector128<ulong>* nextBase = nextArray)
            fixed (ulong* tPrevBase = tPrevArray)
            fixed (ulong* tCurBase = tCurArray)
            fixed (Vector128<byte>* leaf = leafArray)
            fixed (ulong* cw = cwArray)
            {
                byte* bits = key + lay.BitRegion;
                Vector128<ulong> root = Unsafe.ReadUnaligned<Vector128<ulong>>(key);
                Vector128<ulong>* cur = curBase, next = nextBase;
                ulong* tPrev = tPrevBase, tCur = tCurBase;

                // Invariant after level i's hash: cur holds the 2^(i+1) uncorrected children, tPrev their parents' t masks.
                if (levels > 0)
                {
                    cur[0] = root;
                    cur[1] = root ^ rightTweak;
                    FixedKeyAes.HashInPlace(new Span<Vector128<byte>>(cur, 2));
                    tPrev[0] = negate;
                }

                for (int i = 1; i < levels; i++)
                {
                    int nodes = 1 << i;
                    Vector128<ulong> cwLeft = Unsafe.ReadUnaligned<Vector128<ulong>>(key + 16 + (16 * (i - 1)));
                    Vector128<ulong> cwRight = cwLeft ^ Vector128.CreateScalar((cwLeft.ToScalar() ^ FssKeyBits.ReadBit(ref *bits, lay.TrBitBase + i - 1)) & 1);
                    for (int k = 0; k < nodes; k += 2)
                    {
                        Vector128<ulong> tp = Vector128.Create(tPrev[k >> 1]);
                        Vector128<ulong> c0 = cur[k] ^ (cwLeft & tp);
                        Vector128<ulong> c1 = cur[k + 1] ^ (cwRight & tp);
                        tCur[k] = 0 - (c0.ToScalar() & 1);
                        tCur[k + 1] = 0 - (c1.ToScalar() & 1);
                        c0 &= clear;
                        c1 &= clear;
                        next[2 * k] = c0;
                        next[(2 * k) + 1] = c0 ^ rightTweak;
                        next[(2 * k) + 2] = c1;
                        next[(2 * k) + 3] = c1 ^ rightTweak;
                    }

                    FixedKeyAes.HashInPlace(new Span<Vector128<byte>>(next, 2 * nodes));
                    Vector128<ulong>* swapNodes = cur;
                    cur = next;
                    next = swapNodes;
                    ulong* swapT = tPrev;
                    tPrev = tCur;
                    tCur = swapT;
                }

                Vector128<ulong> lastLeft = default, lastRight = default;
                if (levels > 0)
                {
                    lastLeft = Unsafe.ReadUnaligned<Vector128<ulong>>(key + 16 + (16 * (levels - 1)));
                    lastRight = lastLeft ^ Vector128.CreateScalar((lastLeft.ToScalar() ^ FssKeyBits.ReadBit(ref *bits, lay.TrBitBase + levels - 1)) & 1);
                }

                ref byte leafBytes = ref *(byte*)leaf;
                long slots = 1L << lay.LeafBits;
                Vector128<ulong>* leafBlocks = (Vector128<ulong>*)leaf;
                int leafWords = (int)lay.LeafWords;
                for (int w = 0; w < leafWords; w++)
                {
                    cw[w] = FssKeyBits.Read(ref *bits, (long)w * ell, ell, outMask);
                }

                for (int k0 = 0; k0 < width; k0 += leafChunk)
                {
                    int c = Math.Min(leafChunk, width - k0);
                    for (int kk = 0; kk < c; kk++)
                    {
                        int k = k0 + kk;
                        Vector128<ulong> seed;
                        ulong t;
                        if (levels == 0)
                        {
                            seed = root;
                            t = negate;
                        }
                        else
                        {
                            Vector128<ulong> corrected = cur[k] ^ (((k & 1) == 0 ? lastLeft : lastRight) & Vector128.Create(tPrev[k >> 1]));
                            t = 0 - (corrected.ToScalar() & 1);
                            seed = corrected & clear;
                        }

                        tCur[kk] = t;
                        for (int j = 0; j < lb; j++)
                        {
                            leafBlocks[(kk * lb) + j] = seed ^ Vector128.CreateScalar(FssKeyBits.PayloadTweak + (ulong)j);
                        }
                    }

                    FixedKeyAes.HashInPlace(new Span<Vector128<byte>>(leaf, c * lb));
                    for (int kk = 0; kk < c; kk++)
                    {
                        ulong t = tCur[kk];
                        ulong* o = outputs + ((long)(k0 + kk) * slots * m);
                        if (ell == 64)
                        {
                            // Whole words: the leaf stream's 64-bit lanes are the words.
                            ulong* value = (ulong*)(leafBlocks + (kk * lb));
                            for (int w = 0; w < leafWords; w++)
                            {
                                o[w] = ((value[w] + (cw[w] & t)) ^ negate) - negate;
                            }
                        }
                        else
                        {
                            long leafBase = (long)kk * lb * 128;
                            for (int w = 0; w < leafWords; w++)
                            {
                                ulong value = FssKeyBits.Read(ref leafBytes, leafBase + ((long)w * ell), ell, outMask);
                                o[w] = (((value + (cw[w] & t)) ^ negate) - negate) & outMask;
                            }
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<Vector128<ulong>>.Shared.Return(curArray, clearArray: true);
            ArrayPool<Vector128<ulong>>.Shared.Return(nextArray, clearArray: true);
            ArrayPool<ulong>.Shared.Return(tPrevArray, clearArray: true);
            ArrayPool<ulong>.Shared.Return(tCurArray, clearArray: true);
            ArrayPool<Vector128<byte>>.Shared.Return(leafArray, clearArray: true);
            ArrayPool<ulong>.Shared.Return(cwArray, clearArray: true);
        }
    }

    /// <summary>Per-key state of the evaluation loop.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Lane
    {
        public byte* Key;
        public ulong X;
        public ulong Tr;
        public ulong T;
        public ulong Slot;
    }
}
