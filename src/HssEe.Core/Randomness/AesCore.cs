using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace HssEe.Randomness;

/// <summary>
/// AES-128 block encryption (forward direction only) for a <b>public</b> key. Uses AES-NI
/// through <see cref="X86Aes"/> with eight blocks in flight, and otherwise the platform's
/// AES (<see cref="System.Security.Cryptography.Aes"/> in ECB mode, which is constant-time
/// in OpenSSL/CNG). Both paths give identical output.
/// </summary>
/// <remarks>
/// .NET 10 exposes no VAES (256/512-bit AES) intrinsics, so the widest form used here is
/// 128-bit AES-NI with instruction-level parallelism across eight independent blocks. The
/// software key schedule uses table look-ups and is therefore only used for public keys
/// (the fixed key of <see cref="FixedKeyAes"/>, known-answer tests).
/// </remarks>
internal sealed class AesCore : IDisposable
{
    private const int Rounds = 10;
    private readonly Vector128<byte>[] _roundKeys = new Vector128<byte>[Rounds + 1];
    private readonly byte[] _key;
    private readonly bool _useAesNi;
    private readonly ThreadLocal<System.Security.Cryptography.Aes> _fallback;

    public AesCore(ReadOnlySpan<byte> publicKey, bool allowHardware = true)
    {
        if (publicKey.Length != 16)
        {
            throw new ArgumentException($"AES-128 needs a 16-byte key, got {publicKey.Length} bytes.", nameof(publicKey));
        }

        _key = publicKey.ToArray();
        ExpandKey(publicKey, _roundKeys);
        _useAesNi = allowHardware && X86Aes.IsSupported;
        byte[] keyCopy = _key;
        _fallback = new ThreadLocal<System.Security.Cryptography.Aes>(() => CreatePlatformAes(keyCopy), trackAllValues: true);
    }

    /// <summary>True when blocks are encrypted with AES-NI; false when the platform AES is used.</summary>
    public bool UsesAesNi => _useAesNi;

    /// <summary>Encrypts <paramref name="blocks"/> in place (ECB, independent 16-byte blocks).</summary>
    public void EncryptInPlace(Span<Vector128<byte>> blocks)
    {
        if (_useAesNi)
        {
            EncryptAesNi(blocks);
        }
        else
        {
            EncryptPlatform(blocks);
        }
    }

    /// <summary>
    /// Fixed-key hash MMO^sigma (Guo, Katz, Wang, Yu, S&amp;P 2020): H(x) = pi(sigma(x)) XOR sigma(x)
    /// with sigma(xL || xR) = (xL XOR xR) || xL, applied to every block in place.
    /// </summary>
    public void HashInPlace(Span<Vector128<byte>> blocks)
    {
        if (_useAesNi)
        {
            HashAesNi(blocks);
            return;
        }

        int chunk = Math.Min(blocks.Length, 256);
        Span<Vector128<byte>> sigma = stackalloc Vector128<byte>[256];
        for (int offset = 0; offset < blocks.Length; offset += chunk)
        {
            int len = Math.Min(chunk, blocks.Length - offset);
            Span<Vector128<byte>> part = blocks.Slice(offset, len);
            for (int i = 0; i < len; i++)
            {
                sigma[i] = Sigma(part[i]);
                part[i] = sigma[i];
            }

            EncryptPlatform(part);
            for (int i = 0; i < len; i++)
            {
                part[i] ^= sigma[i];
            }
        }
    }

    /// <summary>
    /// XOR over i of H(blocks[i] XOR (firstIndex + i, tweakHigh)) with H the MMO^sigma hash, fused in
    /// one 8-way AES-NI loop (no intermediate buffer). Used by the key-bundle payload checksum.
    /// </summary>
    public Vector128<byte> HashXorSum(ReadOnlySpan<Vector128<byte>> blocks, ulong firstIndex, ulong tweakHigh)
    {
        if (!_useAesNi)
        {
            Span<Vector128<byte>> batch = stackalloc Vector128<byte>[64];
            Vector128<byte> total = Vector128<byte>.Zero;
            for (int offset = 0; offset < blocks.Length; offset += 64)
            {
                int count = Math.Min(64, blocks.Length - offset);
                for (int j = 0; j < count; j++)
                {
                    batch[j] = blocks[offset + j] ^ Vector128.Create(firstIndex + (ulong)(offset + j), tweakHigh).AsByte();
                }

                HashInPlace(batch[..count]);
                for (int j = 0; j < count; j++)
                {
                    total ^= batch[j];
                }
            }

            return total;
        }

        ReadOnlySpan<Vector128<byte>> rk = _roundKeys;
        Vector128<byte> acc = Vector128<byte>.Zero;
        Vector128<ulong> step = Vector128.Create(8UL, 0UL);
        Vector128<ulong> t0 = Vector128.Create(firstIndex, tweakHigh);
        int i = 0;
        for (; i + 8 <= blocks.Length; i += 8)
        {
            Vector128<byte> s0 = Sigma(blocks[i] ^ t0.AsByte());
            Vector128<byte> s1 = Sigma(blocks[i + 1] ^ (t0 + Vector128.CreateScalar(1UL)).AsByte());
            Vector128<byte> s2 = Sigma(blocks[i + 2] ^ (t0 + Vector128.CreateScalar(2UL)).AsByte());
            Vector128<byte> s3 = Sigma(blocks[i + 3] ^ (t0 + Vector128.CreateScalar(3UL)).AsByte());
            Vector128<byte> s4 = Sigma(blocks[i + 4] ^ (t0 + Vector128.CreateScalar(4UL)).AsByte());
            Vector128<byte> s5 = Sigma(blocks[i + 5] ^ (t0 + Vector128.CreateScalar(5UL)).AsByte());
            Vector128<byte> s6 = Sigma(blocks[i + 6] ^ (t0 + Vector128.CreateScalar(6UL)).AsByte());
            Vector128<byte> s7 = Sigma(blocks[i + 7] ^ (t0 + Vector128.CreateScalar(7UL)).AsByte());
            Vector128<byte> b0 = s0 ^ rk[0], b1 = s1 ^ rk[0], b2 = s2 ^ rk[0], b3 = s3 ^ rk[0];
            Vector128<byte> b4 = s4 ^ rk[0], b5 = s5 ^ rk[0], b6 = s6 ^ rk[0], b7 = s7 ^ rk[0];
            for (int r = 1; r < Rounds; r++)
            {
                Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, rk[r]);
            }

            acc ^= (X86Aes.EncryptLast(b0, rk[Rounds]) ^ s0) ^ (X86Aes.EncryptLast(b1, rk[Rounds]) ^ s1)
                ^ (X86Aes.EncryptLast(b2, rk[Rounds]) ^ s2) ^ (X86Aes.EncryptLast(b3, rk[Rounds]) ^ s3)
                ^ (X86Aes.EncryptLast(b4, rk[Rounds]) ^ s4) ^ (X86Aes.EncryptLast(b5, rk[Rounds]) ^ s5)
                ^ (X86Aes.EncryptLast(b6, rk[Rounds]) ^ s6) ^ (X86Aes.EncryptLast(b7, rk[Rounds]) ^ s7);
            t0 += step;
        }

        for (; i < blocks.Length; i++)
        {
            Vector128<byte> s = Sigma(blocks[i] ^ Vector128.Create(firstIndex + (ulong)i, tweakHigh).AsByte());
            acc ^= EncryptOne(s, rk) ^ s;
        }

        return acc;
    }

    /// <summary>The linear orthomorphism sigma(xL || xR) = (xL XOR xR) || xL, with xL the high 64 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Sigma(Vector128<byte> x)
    {
        Vector128<ulong> v = x.AsUInt64();
        Vector128<ulong> swapped = Vector128.Shuffle(v, Vector128.Create(1ul, 0ul));
        return (swapped ^ (v & Vector128.Create(0ul, ulong.MaxValue))).AsByte();
    }

    public void Dispose()
    {
        foreach (System.Security.Cryptography.Aes aes in _fallback.Values)
        {
            aes.Dispose();
        }

        _fallback.Dispose();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<byte> EncryptOne(Vector128<byte> x, ReadOnlySpan<Vector128<byte>> rk)
    {
        x ^= rk[0];
        for (int r = 1; r < Rounds; r++)
        {
            x = X86Aes.Encrypt(x, rk[r]);
        }

        return X86Aes.EncryptLast(x, rk[Rounds]);
    }

    internal ReadOnlySpan<Vector128<byte>> RoundKeys => _roundKeys;

    private void EncryptAesNi(Span<Vector128<byte>> blocks)
    {
        ReadOnlySpan<Vector128<byte>> rk = _roundKeys;
        Vector128<byte> k0 = rk[0], k1 = rk[1], k2 = rk[2], k3 = rk[3], k4 = rk[4], k5 = rk[5];
        Vector128<byte> k6 = rk[6], k7 = rk[7], k8 = rk[8], k9 = rk[9], k10 = rk[10];
        ref Vector128<byte> p = ref MemoryMarshal.GetReference(blocks);
        int i = 0;
        for (; i + 8 <= blocks.Length; i += 8)
        {
            Vector128<byte> b0 = Unsafe.Add(ref p, i) ^ k0;
            Vector128<byte> b1 = Unsafe.Add(ref p, i + 1) ^ k0;
            Vector128<byte> b2 = Unsafe.Add(ref p, i + 2) ^ k0;
            Vector128<byte> b3 = Unsafe.Add(ref p, i + 3) ^ k0;
            Vector128<byte> b4 = Unsafe.Add(ref p, i + 4) ^ k0;
            Vector128<byte> b5 = Unsafe.Add(ref p, i + 5) ^ k0;
            Vector128<byte> b6 = Unsafe.Add(ref p, i + 6) ^ k0;
            Vector128<byte> b7 = Unsafe.Add(ref p, i + 7) ^ k0;
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k1);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k2);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k3);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k4);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k5);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k6);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k7);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k8);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k9);
            Unsafe.Add(ref p, i) = X86Aes.EncryptLast(b0, k10);
            Unsafe.Add(ref p, i + 1) = X86Aes.EncryptLast(b1, k10);
            Unsafe.Add(ref p, i + 2) = X86Aes.EncryptLast(b2, k10);
            Unsafe.Add(ref p, i + 3) = X86Aes.EncryptLast(b3, k10);
            Unsafe.Add(ref p, i + 4) = X86Aes.EncryptLast(b4, k10);
            Unsafe.Add(ref p, i + 5) = X86Aes.EncryptLast(b5, k10);
            Unsafe.Add(ref p, i + 6) = X86Aes.EncryptLast(b6, k10);
            Unsafe.Add(ref p, i + 7) = X86Aes.EncryptLast(b7, k10);
        }

        for (; i < blocks.Length; i++)
        {
            Unsafe.Add(ref p, i) = EncryptOne(Unsafe.Add(ref p, i), rk);
        }
    }

    private void HashAesNi(Span<Vector128<byte>> blocks)
    {
        ReadOnlySpan<Vector128<byte>> rk = _roundKeys;
        Vector128<byte> k0 = rk[0], k1 = rk[1], k2 = rk[2], k3 = rk[3], k4 = rk[4], k5 = rk[5];
        Vector128<byte> k6 = rk[6], k7 = rk[7], k8 = rk[8], k9 = rk[9], k10 = rk[10];
        ref Vector128<byte> p = ref MemoryMarshal.GetReference(blocks);
        int i = 0;
        for (; i + 8 <= blocks.Length; i += 8)
        {
            Vector128<byte> s0 = Sigma(Unsafe.Add(ref p, i));
            Vector128<byte> b0 = s0 ^ k0;
            Vector128<byte> s1 = Sigma(Unsafe.Add(ref p, i + 1));
            Vector128<byte> b1 = s1 ^ k0;
            Vector128<byte> s2 = Sigma(Unsafe.Add(ref p, i + 2));
            Vector128<byte> b2 = s2 ^ k0;
            Vector128<byte> s3 = Sigma(Unsafe.Add(ref p, i + 3));
            Vector128<byte> b3 = s3 ^ k0;
            Vector128<byte> s4 = Sigma(Unsafe.Add(ref p, i + 4));
            Vector128<byte> b4 = s4 ^ k0;
            Vector128<byte> s5 = Sigma(Unsafe.Add(ref p, i + 5));
            Vector128<byte> b5 = s5 ^ k0;
            Vector128<byte> s6 = Sigma(Unsafe.Add(ref p, i + 6));
            Vector128<byte> b6 = s6 ^ k0;
            Vector128<byte> s7 = Sigma(Unsafe.Add(ref p, i + 7));
            Vector128<byte> b7 = s7 ^ k0;
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k1);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k2);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k3);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k4);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k5);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k6);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k7);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k8);
            Round(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k9);
            Unsafe.Add(ref p, i) = X86Aes.EncryptLast(b0, k10) ^ s0;
            Unsafe.Add(ref p, i + 1) = X86Aes.EncryptLast(b1, k10) ^ s1;
            Unsafe.Add(ref p, i + 2) = X86Aes.EncryptLast(b2, k10) ^ s2;
            Unsafe.Add(ref p, i + 3) = X86Aes.EncryptLast(b3, k10) ^ s3;
            Unsafe.Add(ref p, i + 4) = X86Aes.EncryptLast(b4, k10) ^ s4;
            Unsafe.Add(ref p, i + 5) = X86Aes.EncryptLast(b5, k10) ^ s5;
            Unsafe.Add(ref p, i + 6) = X86Aes.EncryptLast(b6, k10) ^ s6;
            Unsafe.Add(ref p, i + 7) = X86Aes.EncryptLast(b7, k10) ^ s7;
        }

        for (; i < blocks.Length; i++)
        {
            Vector128<byte> s = Sigma(Unsafe.Add(ref p, i));
            Unsafe.Add(ref p, i) = EncryptOne(s, rk) ^ s;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round(
        ref Vector128<byte> b0, ref Vector128<byte> b1, ref Vector128<byte> b2, ref Vector128<byte> b3,
        ref Vector128<byte> b4, ref Vector128<byte> b5, ref Vector128<byte> b6, ref Vector128<byte> b7,
        Vector128<byte> k)
    {
        b0 = X86Aes.Encrypt(b0, k);
        b1 = X86Aes.Encrypt(b1, k);
        b2 = X86Aes.Encrypt(b2, k);
        b3 = X86Aes.Encrypt(b3, k);
        b4 = X86Aes.Encrypt(b4, k);
        b5 = X86Aes.Encrypt(b5, k);
        b6 = X86Aes.Encrypt(b6, k);
        b7 = X86Aes.Encrypt(b7, k);
    }

    private void EncryptPlatform(Span<Vector128<byte>> blocks)
    {
        System.Security.Cryptography.Aes aes = _fallback.Value!;
        Span<byte> bytes = MemoryMarshal.AsBytes(blocks);
        // EncryptEcb may not work fully in place on every platform: go through a buffer.
        const int Chunk = 4096;
        byte[] buffer = new byte[Math.Min(Chunk, bytes.Length)];
        for (int offset = 0; offset < bytes.Length; offset += Chunk)
        {
            int len = Math.Min(Chunk, bytes.Length - offset);
            Span<byte> part = bytes.Slice(offset, len);
            int written = aes.EncryptEcb(part, buffer.AsSpan(0, len), PaddingMode.None);
            buffer.AsSpan(0, written).CopyTo(part);
        }
    }

    private static System.Security.Cryptography.Aes CreatePlatformAes(byte[] key)
    {
        var aes = System.Security.Cryptography.Aes.Create();
        aes.Key = key;
        return aes;
    }

    // ---- AES-128 key schedule (FIPS-197 section 5.2), for public keys only ----
    private static readonly byte[] SBox = BuildSBox();

    private static void ExpandKey(ReadOnlySpan<byte> key, Span<Vector128<byte>> roundKeys)
    {
        Span<byte> w = stackalloc byte[16 * (Rounds + 1)];
        key.CopyTo(w);
        byte rcon = 1;
        for (int i = 4; i < 4 * (Rounds + 1); i++)
        {
            byte t0 = w[(4 * i) - 4], t1 = w[(4 * i) - 3], t2 = w[(4 * i) - 2], t3 = w[(4 * i) - 1];
            if (i % 4 == 0)
            {
                byte tmp = t0;
                t0 = (byte)(SBox[t1] ^ rcon);
                t1 = SBox[t2];
                t2 = SBox[t3];
                t3 = SBox[tmp];
                rcon = (byte)((rcon << 1) ^ ((rcon & 0x80) != 0 ? 0x1B : 0));
            }

            w[4 * i] = (byte)(w[4 * (i - 4)] ^ t0);
            w[(4 * i) + 1] = (byte)(w[(4 * (i - 4)) + 1] ^ t1);
            w[(4 * i) + 2] = (byte)(w[(4 * (i - 4)) + 2] ^ t2);
            w[(4 * i) + 3] = (byte)(w[(4 * (i - 4)) + 3] ^ t3);
        }

        for (int r = 0; r <= Rounds; r++)
        {
            roundKeys[r] = Vector128.Create(w.Slice(16 * r, 16));
        }
    }

    private static byte[] BuildSBox()
    {
        // S(x) = affine(inverse(x)) over GF(2^8) with the AES polynomial x^8+x^4+x^3+x+1.
        var sbox = new byte[256];
        for (int x = 0; x < 256; x++)
        {
            byte inv = x == 0 ? (byte)0 : GfInverse((byte)x);
            int s = inv;
            int result = inv;
            for (int k = 0; k < 4; k++)
            {
                s = ((s << 1) | (s >> 7)) & 0xFF;
                result ^= s;
            }

            sbox[x] = (byte)(result ^ 0x63);
        }

        return sbox;
    }

    private static byte GfInverse(byte a)
    {
        // a^254 = a^-1 in GF(2^8).
        byte result = 1;
        byte power = a;
        int e = 254;
        while (e > 0)
        {
            if ((e & 1) != 0)
            {
                result = GfMul(result, power);
            }

            power = GfMul(power, power);
            e >>= 1;
        }

        return result;
    }

    private static byte GfMul(byte a, byte b)
    {
        int p = 0;
        int x = a;
        int y = b;
        while (y != 0)
        {
            if ((y & 1) != 0)
            {
                p ^= x;
            }

            x <<= 1;
            if ((x & 0x100) != 0)
            {
                x ^= 0x11B;
            }

            y >>= 1;
        }

        return (byte)p;
    }
}
