using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using HssEe.Randomness;

namespace HssEe.Fss;

/// <summary>
/// DCF key generation and evaluation loops (BCG+21, Fig. 3), interleaving several keys so that
/// every <see cref="FixedKeyAes.HashInPlace"/> call hashes many independent blocks.
/// </summary>
internal static unsafe class DcfKernels
{
    /// <summary>Keys generated together (6 blocks per key per level when packed: 48 blocks per hash call).</summary>
    private const int GenGroup = 8;

    /// <summary>Keys evaluated together on the m = 1 path (2 blocks per key per level: 64 blocks per hash call).</summary>
    private const int EvalGroup = 32;

    /// <summary>Upper bound on the blocks of one hash call on the general paths (limits the group for large payloads).</summary>
    private const int MaxGroupBlocks = 256;

    /// <summary>How many levels ahead the m = 1 path prefetches correction words.</summary>
    private const int PrefetchLevels = 4;

    /// <summary>Reads one ell-bit correction word of the key's bit stream.</summary>
    private interface IWordReader
    {
        static abstract ulong Read(ref byte bits, long bitOffset, int ell, ulong mask);

        /// <summary>Stores a word (the target bits are zero; the value is already reduced mod 2^ell).</summary>
        static abstract void Write(byte* bits, long bitOffset, int ell, ulong value);
    }

    /// <summary>
    /// Generates key pairs <c>[start, start + count)</c>: key k gets <paramref name="alphas"/>[k],
    /// payload <paramref name="betas"/>[k * betaStride ..], root seeds <paramref name="seeds"/>[2k] (A) and [2k + 1] (B).
    /// </summary>
    public static void Generate(
        in DcfKeyLayout lay, ulong* alphas, ulong* betas, int betaStride, Vector128<byte>[] seeds,
        byte* keysA, byte* keysB, int start, int count)
    {
        fixed (Vector128<byte>* ps = seeds)
        {
            var rootSeeds = (Vector128<ulong>*)ps;
            if (lay.M == 1)
            {
                GenerateSingleWord(lay, alphas, betas, betaStride, rootSeeds, keysA, keysB, start, count);
            }
            else if (lay.Ell == 64)
            {
                GenerateGeneral<WholeWords>(lay, alphas, betas, betaStride, rootSeeds, keysA, keysB, start, count);
            }
            else
            {
                GenerateGeneral<PackedWords>(lay, alphas, betas, betaStride, rootSeeds, keysA, keysB, start, count);
            }
        }
    }

    /// <summary>
    /// Key generation for any m: per party and level the two child blocks and the payload blocks (one shared block
    /// when packed, B per side otherwise). Party A's key is written and copied into party B's with B's root seed.
    /// </summary>
    private static void GenerateGeneral<TWords>(
        in DcfKeyLayout lay, ulong* alphas, ulong* betas, int betaStride, Vector128<ulong>* seeds,
        byte* keysA, byte* keysB, int start, int count)
        where TWords : struct, IWordReader
    {
        int n = lay.N, m = lay.M, ell = lay.Ell, sb = lay.SideBlocks;
        nint keySize = lay.KeySize, bitRegion = lay.BitRegion;
        bool packed = lay.Packed;
        ulong mask = lay.OutputMask;
        int perParty = 2 + (packed ? 1 : 2 * sb);
        int stride = 2 * perParty;
        int group = Math.Max(1, Math.Min(GenGroup, MaxGroupBlocks / stride));
        Vector128<ulong>[] bufArray = ArrayPool<Vector128<ulong>>.Shared.Rent((group * stride) + 1);
        ulong[] valphaArray = ArrayPool<ulong>.Shared.Rent(group * m);
        GenLane* lanes = stackalloc GenLane[GenGroup];
        Vector128<ulong> clear = FssKeyBits.ClearT;
        long levelBits = (long)m * ell;
        try
        {
            fixed (Vector128<ulong>* buf = bufArray)
            fixed (ulong* valpha = valphaArray)
            {
                for (int g0 = 0; g0 < count; g0 += group)
                {
                    int g = Math.Min(group, count - g0);
                    new Span<ulong>(valpha, g * m).Clear();
                    for (int e = 0; e < g; e++)
                    {
                        int k = start + g0 + e;
                        GenLane* lane = lanes + e;
                        lane->S0 = seeds[2 * k];
                        lane->S1 = seeds[(2 * k) + 1];
                        lane->T0 = 0;
                        lane->T1 = 1;
                        lane->Tr = 0;
                        lane->Alpha = alphas[k] << (64 - n);
                        lane->BetaWords = betas + ((long)k * betaStride);
                        lane->Key = keysA + ((nint)k * keySize);
                        Unsafe.WriteUnaligned(lane->Key, lane->S0);
                    }

                    for (int i = 0; i < n; i++)
                    {
                        for (int e = 0; e < g; e++)
                        {
                            Vector128<ulong>* b = buf + (e * stride);
                            for (int party = 0; party < 2; party++, b += perParty)
                            {
                                Vector128<ulong> sp = party == 0 ? lanes[e].S0 : lanes[e].S1;
                                b[0] = sp ^ Vector128.CreateScalar(FssKeyBits.LeftTweak);
                                b[1] = sp ^ Vector128.CreateScalar(FssKeyBits.RightTweak);
                                for (int j = 0; j < perParty - 2; j++)
                                {
                                    b[2 + j] = sp ^ Vector128.CreateScalar(FssKeyBits.PayloadTweak + (ulong)j);
                                }
                            }
                        }

                        FixedKeyAes.HashInPlace(new Span<Vector128<byte>>(buf, g * stride));
                        nint cwOff = 16 + (16 * i);
                        long vcwBase = i * levelBits;
                        for (int e = 0; e < g; e++)
                        {
                            GenLane* lane = lanes + e;
                            Vector128<ulong>* b = buf + (e * stride);
                            ulong a = lane->Alpha >> 63;
                            lane->Alpha <<= 1;
                            Vector128<ulong> l0 = b[0], r0 = b[1], l1 = b[perParty], r1 = b[perParty + 1];
                            ulong tl0 = l0.ToScalar() & 1, tr0 = r0.ToScalar() & 1, tl1 = l1.ToScalar() & 1, tr1 = r1.ToScalar() & 1;
                            l0 &= clear;
                            r0 &= clear;
                            l1 &= clear;
                            r1 &= clear;
                            Vector128<ulong> scw = a == 0 ? r0 ^ r1 : l0 ^ l1;
                            ulong tlcw = tl0 ^ tl1 ^ a ^ 1;
                            ulong trcw = tr0 ^ tr1 ^ a;
                            Unsafe.WriteUnaligned(lane->Key + cwOff, scw | Vector128.CreateScalar(tlcw));
                            lane->Tr |= trcw << i;

                            // Side streams: party p's payload blocks start at b + p * perParty + 2; a side is 64 bits
                            // into the shared block (packed) or sb blocks further (wide).
                            ref byte v0 = ref *(byte*)(b + 2);
                            ref byte v1 = ref *(byte*)(b + perParty + 2);
                            long sideStride = packed ? 64 : sb * 128L;
                            long lose = (1 - (long)a) * sideStride, keep = (long)a * sideStride;
                            ulong t1 = lane->T1;
                            ulong sign = 0 - t1;
                            ulong* va = valpha + (e * m);
                            byte* bits = lane->Key + bitRegion;
                            for (int j = 0; j < m; j++)
                            {
                                long w = (long)j * ell;
                                ulong vcw = TWords.Read(ref v1, lose + w, ell, mask) - TWords.Read(ref v0, lose + w, ell, mask) - va[j]
                                    + (a != 0 ? lane->BetaWords[j] : 0);
                                vcw = (vcw ^ sign) + t1; // (-1)^{t1} * vcw
                                va[j] += TWords.Read(ref v0, keep + w, ell, mask) - TWords.Read(ref v1, keep + w, ell, mask) + ((vcw ^ sign) + t1);
                                TWords.Write(bits, vcwBase + w, ell, vcw & mask);
                            }

                            ulong t0 = lane->T0;
                            ulong tKeepCw = a == 0 ? tlcw : trcw;
                            lane->S0 = (a == 0 ? l0 : r0) ^ (scw & Vector128.Create(0 - t0));
                            lane->S1 = (a == 0 ? l1 : r1) ^ (scw & Vector128.Create(sign));
                            lane->T0 = (a == 0 ? tl0 : tr0) ^ (t0 & tKeepCw);
                            lane->T1 = (a == 0 ? tl1 : tr1) ^ (t1 & tKeepCw);
                        }
                    }

                    // CW_{n+1} = (-1)^{t1} [Convert(s1) - Convert(s0) - V_alpha]: Convert is bits 64..127 of the leaf
                    // seed (packed) or its left payload stream H(s ^ (2 + j)), j < B (wide).
                    for (int e = 0; e < g; e++)
                    {
                        Vector128<ulong>* b = buf + (e * 2 * sb);
                        for (int party = 0; party < 2; party++)
                        {
                            Vector128<ulong> sp = party == 0 ? lanes[e].S0 : lanes[e].S1;
                            for (int j = 0; j < sb; j++)
                            {
                                b[(party * sb) + j] = packed ? sp : sp ^ Vector128.CreateScalar(FssKeyBits.PayloadTweak + (ulong)j);
                            }
                        }
                    }

                    if (!packed)
                    {
                        FixedKeyAes.HashInPlace(new Span<Vector128<byte>>(buf, g * 2 * sb));
                    }

                    long convertBit = packed ? 64 : 0;
                    for (int e = 0; e < g; e++)
                    {
                        int k = start + g0 + e;
                        GenLane* lane = lanes + e;
                        ref byte c0 = ref *(byte*)(buf + (e * 2 * sb));
                        ref byte c1 = ref *(byte*)(buf + (e * 2 * sb) + sb);
                        ulong t1 = lane->T1;
                        byte* bits = lane->Key + bitRegion;
                        for (int j = 0; j < m; j++)
                        {
                            long w = (long)j * ell;
                            ulong cw = TWords.Read(ref c1, convertBit + w, ell, mask) - TWords.Read(ref c0, convertBit + w, ell, mask) - valpha[(e * m) + j];
                            cw = (cw ^ (0 - t1)) + t1;
                            TWords.Write(bits, lay.FinalBitBase + w, ell, cw & mask);
                        }

                        FssKeyBits.Write(bits, lay.TrBitBase, n, lane->Tr);
                        byte* keyB = keysB + ((nint)k * keySize);
                        Buffer.MemoryCopy(lane->Key + 16, keyB + 16, keySize - 16, keySize - 16);
                        Unsafe.WriteUnaligned(keyB, seeds[(2 * k) + 1]);
                    }
                }
            }
        }
        finally
        {
            new Span<GenLane>(lanes, GenGroup).Clear();
            ArrayPool<Vector128<ulong>>.Shared.Return(bufArray, clearArray: true);
            ArrayPool<ulong>.Shared.Return(valphaArray, clearArray: true);
        }
    }

    /// <summary>
    /// Key generation for m = 1 (payload words are the 64-bit lanes of one PRG block per party and level, reduced
    /// mod 2^ell only when stored). Party A's key is written; party B's is a copy with its own root seed, since every
    /// correction word is common to both keys.
    /// </summary>
    private static void GenerateSingleWord(
        in DcfKeyLayout lay, ulong* alphas, ulong* betas, int betaStride, Vector128<ulong>* seeds,
        byte* keysA, byte* keysB, int start, int count)
    {
        const int Stride = 6; // per lane: L0 R0 V0 L1 R1 V1
        int n = lay.N, ell = lay.Ell;
        nint keySize = lay.KeySize, bitRegion = lay.BitRegion;
        ulong mask = lay.OutputMask;
        bool whole = ell == 64;
        GenLane* lanes = stackalloc GenLane[GenGroup];
        Vector128<ulong>* buf = stackalloc Vector128<ulong>[Stride * GenGroup];
        var blocks = new Span<Vector128<byte>>(buf, Stride * GenGroup);
        Vector128<ulong> clear = FssKeyBits.ClearT;
        Vector128<ulong> right = Vector128.CreateScalar(FssKeyBits.RightTweak);
        Vector128<ulong> payload = Vector128.CreateScalar(FssKeyBits.PayloadTweak);
        try
        {
            for (int g0 = 0; g0 < count; g0 += GenGroup)
            {
                int g = Math.Min(GenGroup, count - g0);
                for (int e = 0; e < g; e++)
                {
                    int k = start + g0 + e;
                    GenLane* lane = lanes + e;
                    lane->S0 = seeds[2 * k];
                    lane->S1 = seeds[(2 * k) + 1];
                    lane->T0 = 0;
                    lane->T1 = 1;
                    lane->VAlpha = 0;
                    lane->Tr = 0;
                    lane->Alpha = alphas[k] << (64 - n);
                    lane->Beta = betas[(long)k * betaStride];
                    byte* key = keysA + ((nint)k * keySize);
                    lane->Key = key;
                    Unsafe.WriteUnaligned(key, lane->S0);
                }

                for (int i = 0; i < n; i++)
                {
                    Vector128<ulong>* b = buf;
                    for (int e = 0; e < g; e++, b += Stride)
                    {
                        Vector128<ulong> s0 = lanes[e].S0, s1 = lanes[e].S1;
                        b[0] = s0;
                        b[1] = s0 ^ right;
                        b[2] = s0 ^ payload;
                        b[3] = s1;
                        b[4] = s1 ^ right;
                        b[5] = s1 ^ payload;
                    }

                    FixedKeyAes.HashInPlace(blocks[..(Stride * g)]);
                    b = buf;
                    nint cwOff = 16 + (16 * i);
                    long vBit = (long)i * ell;
                    for (int e = 0; e < g; e++, b += Stride)
                    {
                        GenLane* lane = lanes + e;
                        ulong a = lane->Alpha >> 63;
                        lane->Alpha <<= 1;
                        Vector128<ulong> l0 = b[0], r0 = b[1], l1 = b[3], r1 = b[4];
                        ulong tl0 = l0.ToScalar() & 1, tr0 = r0.ToScalar() & 1, tl1 = l1.ToScalar() & 1, tr1 = r1.ToScalar() & 1;
                        l0 &= clear;
                        r0 &= clear;
                        l1 &= clear;
                        r1 &= clear;
                        Vector128<ulong> scw = a == 0 ? r0 ^ r1 : l0 ^ l1;
                        ulong tlcw = tl0 ^ tl1 ^ a ^ 1;
                        ulong trcw = tr0 ^ tr1 ^ a;
                        Unsafe.WriteUnaligned(lane->Key + cwOff, scw | Vector128.CreateScalar(tlcw));
                        lane->Tr |= trcw << i;

                        // Payload words: the left lane (bits 0..63) or right lane (bits 64..127) of each party's V block.
                        ulong* v0 = (ulong*)(b + 2), v1 = (ulong*)(b + 5);
                        ulong t0 = lane->T0, t1 = lane->T1;
                        ulong vcw = v1[1 - a] - v0[1 - a] - lane->VAlpha + (a != 0 ? lane->Beta : 0);
                        vcw = (vcw ^ (0 - t1)) + t1; // (-1)^{t1} * vcw
                        lane->VAlpha += v0[a] - v1[a] + ((vcw ^ (0 - t1)) + t1);
                        if (whole)
                        {
                            Unsafe.WriteUnaligned(lane->Key + bitRegion + (nint)(vBit >> 3), vcw);
                        }
                        else
                        {
                            FssKeyBits.Write(lane->Key + bitRegion, vBit, ell, vcw & mask);
                        }

                        ulong tKeepCw = a == 0 ? tlcw : trcw;
                        lane->S0 = (a == 0 ? l0 : r0) ^ (scw & Vector128.Create(0 - t0));
                        lane->S1 = (a == 0 ? l1 : r1) ^ (scw & Vector128.Create(0 - t1));
                        lane->T0 = (a == 0 ? tl0 : tr0) ^ (t0 & tKeepCw);
                        lane->T1 = (a == 0 ? tl1 : tr1) ^ (t1 & tKeepCw);
                    }
                }

                for (int e = 0; e < g; e++)
                {
                    int k = start + g0 + e;
                    GenLane* lane = lanes + e;

                    // CW_{n+1} = (-1)^{t1} [Convert(s1) - Convert(s0) - V_alpha], Convert = bits 64..127 of the leaf seed.
                    ulong t1 = lane->T1;
                    ulong cw = lane->S1.GetElement(1) - lane->S0.GetElement(1) - lane->VAlpha;
                    cw = (cw ^ (0 - t1)) + t1;
                    byte* bits = lane->Key + bitRegion;
                    FssKeyBits.Write(bits, lay.FinalBitBase, ell, cw & mask);
                    FssKeyBits.Write(bits, lay.TrBitBase, n, lane->Tr);
                    byte* keyB = keysB + ((nint)k * keySize);
                    Buffer.MemoryCopy(lane->Key + 16, keyB + 16, keySize - 16, keySize - 16);
                    Unsafe.WriteUnaligned(keyB, seeds[(2 * k) + 1]);
                }
            }
        }
        finally
        {
            blocks.Clear();
            new Span<GenLane>(lanes, GenGroup).Clear();
        }
    }

    /// <summary>
    /// Evaluates <paramref name="count"/> points: point e uses key <c>firstKey + e * keyStep</c>
    /// (keyStep 1: many keys, one point each; keyStep 0: one key at many points). Outputs are m words per point.
    /// </summary>
    public static void Evaluate(in DcfKeyLayout lay, byte[] keys, Party party, int firstKey, int keyStep, ulong* points, ulong* outputs, int count)
    {
        if (lay.M == 1 && lay.Packed)
        {
            EvaluateSingleWord(lay, keys, party, firstKey, keyStep, points, outputs, count);
        }
        else
        {
            EvaluateGeneral(lay, keys, party, firstKey, keyStep, points, outputs, count);
        }
    }

    /// <summary>
    /// The hot path: m = 1, any ell. Two AES blocks per level (the chosen child seed and the payload block);
    /// the correction of level i and the hash inputs of level i + 1 are computed in one pass per lane.
    /// </summary>
    private static void EvaluateSingleWord(in DcfKeyLayout lay, byte[] keys, Party party, int firstKey, int keyStep, ulong* points, ulong* outputs, int count)
    {
        if (lay.Ell == 64)
        {
            EvaluateSingleWord<WholeWords>(lay, keys, party, firstKey, keyStep, points, outputs, count);
        }
        else
        {
            EvaluateSingleWord<PackedWords>(lay, keys, party, firstKey, keyStep, points, outputs, count);
        }
    }

    private static void EvaluateSingleWord<TWords>(in DcfKeyLayout lay, byte[] keys, Party party, int firstKey, int keyStep, ulong* points, ulong* outputs, int count)
        where TWords : struct, IWordReader
    {
        int n = lay.N, ell = lay.Ell;
        nint keySize = lay.KeySize, bitRegion = lay.BitRegion;
        ulong inMask = lay.InputMask, outMask = lay.OutputMask, wordMask = FssKeyBits.Mask(ell);
        long trBase = lay.TrBitBase, finalBit = lay.FinalBitBase;
        ulong negate = party == Party.B ? ulong.MaxValue : 0;
        Lane* lanes = stackalloc Lane[EvalGroup];
        Vector128<ulong>* buf = stackalloc Vector128<ulong>[2 * EvalGroup];
        var blocks = new Span<Vector128<byte>>(buf, 2 * EvalGroup);
        Vector128<ulong> payloadTweak = Vector128.CreateScalar(FssKeyBits.PayloadTweak);
        Vector128<ulong> clear = FssKeyBits.ClearT;
        int alignShift = 64 - n;
        try
        {
            fixed (byte* kb = keys)
            {
                for (int g0 = 0; g0 < count; g0 += EvalGroup)
                {
                    int g = Math.Min(EvalGroup, count - g0);
                    for (int e = 0; e < g; e++)
                    {
                        Lane* lane = lanes + e;
                        byte* key = kb + ((nint)(firstKey + ((long)(g0 + e) * keyStep)) * keySize);
                        ulong x = (points[g0 + e] & inMask) << alignShift; // next input bit = bit 63
                        lane->Key = key;
                        lane->X = x;
                        lane->Tr = FssKeyBits.Read(ref key[bitRegion], trBase, n, ulong.MaxValue);
                        lane->T = negate;
                        lane->Acc = 0;
                        if (Sse.IsSupported)
                        {
                            // The next group's first lines: root seed, first payload corrections and the right-t bits (end of the key).
                            byte* ahead = key + (EvalGroup * keyStep * keySize);
                            Sse.Prefetch0(ahead);
                            Sse.Prefetch0(ahead + bitRegion);
                            Sse.Prefetch0(ahead + bitRegion + (nint)(trBase >> 3));
                        }

                        Vector128<ulong> root = Unsafe.ReadUnaligned<Vector128<ulong>>(key);
                        buf[2 * e] = root ^ Vector128.CreateScalar(x >> 63);
                        buf[(2 * e) + 1] = root ^ payloadTweak;
                    }

                    for (int i = 0; i < n; i++)
                    {
                        FixedKeyAes.HashInPlace(blocks[..(2 * g)]);
                        CorrectSingleWord<TWords>(lanes, buf, g, i, ell, wordMask, bitRegion);
                    }

                    for (int e = 0; e < g; e++)
                    {
                        Lane* lane = lanes + e;
                        ulong fcw = TWords.Read(ref lane->Key[bitRegion], finalBit, ell, wordMask);
                        ulong seedHigh = (buf[(2 * e) + 1] ^ payloadTweak).GetElement(1); // Convert(s^(n)): bits 64..127 of the leaf seed
                        ulong total = lane->Acc + seedHigh + (fcw & lane->T);
                        outputs[g0 + e] = ((total ^ negate) - negate) & outMask;
                    }
                }
            }
        }
        finally
        {
            blocks.Clear();
            new Span<Lane>(lanes, EvalGroup).Clear();
        }
    }

    /// <summary>
    /// Level <paramref name="level"/> of the m = 1 path for <paramref name="count"/> lanes whose two hashed blocks are at
    /// <paramref name="b"/>: corrects the chosen child, accumulates the payload word and writes the next level's hash inputs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CorrectSingleWord<TWords>(Lane* lane, Vector128<ulong>* b, int count, int level, int ell, ulong wordMask, nint bitRegion)
        where TWords : struct, IWordReader
    {
        nint cwOff = 16 + (16 * level);
        long vBit = (long)level * ell;
        nint prefetchBits = (nint)((vBit + (PrefetchLevels * ell)) >> 3);
        Vector128<ulong> payloadTweak = Vector128.CreateScalar(FssKeyBits.PayloadTweak);
        Vector128<ulong> clear = FssKeyBits.ClearT;
        for (int e = 0; e < count; e++, b += 2, lane++)
        {
            byte* key = lane->Key;
            byte* bits = key + bitRegion;
            if (Sse.IsSupported)
            {
                // Keys are pinned: fetch both correction-word streams of this key a few levels ahead.
                Sse.Prefetch0(key + cwOff + (16 * PrefetchLevels));
                Sse.Prefetch0(bits + prefetchBits);
            }

            ulong x = lane->X;
            ulong bit = x >> 63;
            ulong tr = lane->Tr;
            lane->Tr = tr >> 1;
            Vector128<ulong> cw = Unsafe.ReadUnaligned<Vector128<ulong>>(key + cwOff);

            // Right child: bit 0 of the stored word (the left t-correction) becomes the right one.
            Vector128<ulong> correction = cw ^ Vector128.CreateScalar((cw.ToScalar() ^ tr) & bit);
            ulong t = lane->T;
            Vector128<ulong> corrected = b[0] ^ (correction & Vector128.Create(t));
            lane->T = 0 - (corrected.ToScalar() & 1);
            Vector128<ulong> next = corrected & clear;
            ulong v = ((ulong*)(b + 1))[bit];
            ulong vcw = TWords.Read(ref *bits, vBit, ell, wordMask);
            lane->Acc += v + (vcw & t);
            x <<= 1;
            lane->X = x;
            b[0] = next ^ Vector128.CreateScalar(x >> 63);
            b[1] = next ^ payloadTweak;
        }
    }

    /// <summary>Any m: one seed block plus the chosen side's payload blocks per level.</summary>
    private static void EvaluateGeneral(in DcfKeyLayout lay, byte[] keys, Party party, int firstKey, int keyStep, ulong* points, ulong* outputs, int count)
    {
        if (lay.Ell == 64)
        {
            EvaluateGeneral<WholeWords>(lay, keys, party, firstKey, keyStep, points, outputs, count);
        }
        else
        {
            EvaluateGeneral<PackedWords>(lay, keys, party, firstKey, keyStep, points, outputs, count);
        }
    }

    private static void EvaluateGeneral<TWords>(in DcfKeyLayout lay, byte[] keys, Party party, int firstKey, int keyStep, ulong* points, ulong* outputs, int count)
        where TWords : struct, IWordReader
    {
        int n = lay.N, m = lay.M, ell = lay.Ell, sb = lay.SideBlocks;
        nint keySize = lay.KeySize, bitRegion = lay.BitRegion;
        bool packed = lay.Packed;
        long trBase = lay.TrBitBase, finalBit = lay.FinalBitBase;
        ulong inMask = lay.InputMask, outMask = lay.OutputMask, wordMask = FssKeyBits.Mask(ell);
        ulong negate = party == Party.B ? ulong.MaxValue : 0;
        int stride = 1 + sb;
        int group = Math.Max(1, Math.Min(EvalGroup, MaxGroupBlocks / stride));
        Vector128<ulong>[] bufArray = ArrayPool<Vector128<ulong>>.Shared.Rent((group * stride) + 1);
        ulong[] accArray = ArrayPool<ulong>.Shared.Rent(group * m);
        Lane* lanes = stackalloc Lane[EvalGroup];
        Vector128<ulong> clear = FssKeyBits.ClearT;
        int alignShift = 64 - n;
        try
        {
            fixed (byte* kb = keys)
            fixed (Vector128<ulong>* buf = bufArray)
            fixed (ulong* acc = accArray)
            {
                for (int g0 = 0; g0 < count; g0 += group)
                {
                    int g = Math.Min(group, count - g0);
                    new Span<ulong>(acc, g * m).Clear();
                    for (int e = 0; e < g; e++)
                    {
                        Lane* lane = lanes + e;
                        byte* key = kb + ((nint)(firstKey + ((long)(g0 + e) * keyStep)) * keySize);
                        ulong x = (points[g0 + e] & inMask) << alignShift;
                        lane->Key = key;
                        lane->X = x;
                        lane->Tr = FssKeyBits.Read(ref key[bitRegion], trBase, n, ulong.MaxValue);
                        lane->T = negate;
                        if (Sse.IsSupported)
                        {
                            byte* ahead = key + (group * keyStep * keySize);
                            Sse.Prefetch0(ahead);
                            Sse.Prefetch0(ahead + bitRegion);
                            Sse.Prefetch0(ahead + bitRegion + (nint)(trBase >> 3));
                        }

                        Prepare(buf + (e * stride), Unsafe.ReadUnaligned<Vector128<ulong>>(key), x >> 63, packed, sb);
                    }

                    long levelBits = (long)m * ell;
                    for (int i = 0; i < n; i++)
                    {
                        FixedKeyAes.HashInPlace(new Span<Vector128<byte>>(buf, g * stride));
                        nint cwOff = 16 + (16 * i);
                        long vcwBase = i * levelBits;
                        nint prefetchBits = (nint)((vcwBase + (PrefetchLevels * levelBits)) >> 3);
                        Vector128<ulong>* b = buf;
                        ulong* a = acc;
                        for (int e = 0; e < g; e++, b += stride, a += m)
                        {
                            Lane* lane = lanes + e;
                            byte* key = lane->Key;
                            byte* bits = key + bitRegion;
                            if (Sse.IsSupported)
                            {
                                Sse.Prefetch0(key + cwOff + (16 * PrefetchLevels));
                                Sse.Prefetch0(bits + prefetchBits);
                            }

                            ulong x = lane->X;
                            ulong bit = x >> 63;
                            ulong tr = lane->Tr;
                            lane->Tr = tr >> 1;
                            Vector128<ulong> cw = Unsafe.ReadUnaligned<Vector128<ulong>>(key + cwOff);
                            Vector128<ulong> correction = cw ^ Vector128.CreateScalar((cw.ToScalar() ^ tr) & bit);
                            ulong t = lane->T;
                            Vector128<ulong> corrected = b[0] ^ (correction & Vector128.Create(t));
                            lane->T = 0 - (corrected.ToScalar() & 1);

                            // Payload words of the chosen side: lane `bit` of the shared block (packed) or the side's own blocks.
                            ref byte stream = ref *(byte*)(b + 1);
                            long sideBit = packed ? (long)bit * 64 : 0;
                            for (int j = 0; j < m; j++)
                            {
                                ulong v = TWords.Read(ref stream, sideBit + ((long)j * ell), ell, wordMask);
                                ulong vcw = TWords.Read(ref *bits, vcwBase + ((long)j * ell), ell, wordMask);
                                a[j] += v + (vcw & t);
                            }

                            x <<= 1;
                            lane->X = x;
                            Prepare(b, corrected & clear, x >> 63, packed, sb);
                        }
                    }

                    // Convert(s^(n)): bits 64..127 of the leaf seed (packed), else its left payload stream H(s ^ (2 + j)),
                    // which Prepare already wrote after the last level (the next "bit" is 0 once all input bits are used).
                    if (!packed)
                    {
                        for (int e = 0; e < g; e++)
                        {
                            Buffer.MemoryCopy(buf + (e * stride) + 1, buf + (e * sb), sb * 16, sb * 16);
                        }

                        FixedKeyAes.HashInPlace(new Span<Vector128<byte>>(buf, g * sb));
                    }

                    for (int e = 0; e < g; e++)
                    {
                        Lane* lane = lanes + e;
                        byte* bits = lane->Key + bitRegion;
                        ref byte stream = ref packed ? ref *(byte*)(buf + (e * stride) + 1) : ref *(byte*)(buf + (e * sb));
                        long convertBit = packed ? 64 : 0;
                        ulong* o = outputs + ((long)(g0 + e) * m);
                        for (int j = 0; j < m; j++)
                        {
                            ulong c = TWords.Read(ref stream, convertBit + ((long)j * ell), ell, wordMask);
                            ulong fcw = TWords.Read(ref *bits, finalBit + ((long)j * ell), ell, wordMask);
                            ulong total = acc[(e * m) + j] + c + (fcw & lane->T);
                            o[j] = ((total ^ negate) - negate) & outMask;
                        }
                    }
                }
            }
        }
        finally
        {
            new Span<Lane>(lanes, EvalGroup).Clear();
            ArrayPool<Vector128<ulong>>.Shared.Return(bufArray, clearArray: true);
            ArrayPool<ulong>.Shared.Return(accArray, clearArray: true);
        }
    }

    /// <summary>Writes one lane's hash inputs for the next level: the chosen child <c>s ^ bit</c> and the payload blocks of that side.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prepare(Vector128<ulong>* b, Vector128<ulong> seed, ulong bit, bool packed, int sideBlocks)
    {
        b[0] = seed ^ Vector128.CreateScalar(bit);
        ulong tweak = packed ? FssKeyBits.PayloadTweak : FssKeyBits.PayloadTweak + (bit * (ulong)sideBlocks);
        for (int j = 0; j < sideBlocks; j++)
        {
            b[1 + j] = seed ^ Vector128.CreateScalar(tweak + (ulong)j);
        }
    }

    /// <summary>Draws the 2 * count root seeds from the dealer's PRG into a pinned array (wipe it after use).</summary>
    public static Vector128<byte>[] DrawSeeds(AesPrg prg, int count)
    {
        Vector128<byte>[] seeds = GC.AllocateArray<Vector128<byte>>(2 * count, pinned: true);
        prg.Fill(MemoryMarshal.AsBytes(seeds.AsSpan()));
        return seeds;
    }

    /// <summary>Wipes the root seeds.</summary>
    public static void Wipe(Vector128<byte>[] seeds) => CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(seeds.AsSpan()));

    /// <summary>Per-key state of the m = 1 key generation loop (both parties).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct GenLane
    {
        public Vector128<ulong> S0;
        public Vector128<ulong> S1;
        public ulong T0;
        public ulong T1;
        public ulong VAlpha;
        public ulong Tr;
        public ulong Alpha;
        public ulong Beta;
        public ulong* BetaWords;
        public byte* Key;
    }

    /// <summary>Per-key state of the m = 1 evaluation loop.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Lane
    {
        public byte* Key;
        public ulong X;
        public ulong Tr;
        public ulong T;
        public ulong Acc;
    }

    /// <summary>ell = 64: words are whole, byte-aligned ulongs.</summary>
    private readonly struct WholeWords : IWordReader
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Read(ref byte bits, long bitOffset, int ell, ulong mask) =>
            Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref bits, (nint)(bitOffset >> 3)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Write(byte* bits, long bitOffset, int ell, ulong value) => Unsafe.WriteUnaligned(bits + (bitOffset >> 3), value);
    }

    /// <summary>ell &lt; 64: words are tightly packed bit fields.</summary>
    private readonly struct PackedWords : IWordReader
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Read(ref byte bits, long bitOffset, int ell, ulong mask) => FssKeyBits.Read(ref bits, bitOffset, ell, mask);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Write(byte* bits, long bitOffset, int ell, ulong value) => FssKeyBits.Write(bits, bitOffset, ell, value);
    }
}
