using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using HssEe.Randomness;

namespace HssEe.Protocols;

/// <summary>
/// A fast 128-bit checksum of bulk key material: the XOR over all 16-byte blocks B_i (the last
/// zero-padded) of H(B_i XOR T_i), with H the fixed-key MMO^sigma hash and T_i a position tweak,
/// finalised as H(acc XOR length). One AES call per 16 bytes, parallel over chunks.
/// </summary>
/// <remarks>
/// This detects accidental corruption, truncation, reordering and mix-ups with probability
/// 1 - 2^-128 per record (modelling fixed-key AES as a random permutation). It is <b>not</b> a
/// collision-resistant hash against an adversary who edits bundles on purpose: tampering in
/// transit is prevented by the caller's authenticated transport (TLS), as the threat model says.
/// The record chain itself (headers and these digests) is hashed with SHA-256.
/// </remarks>
internal static class PayloadDigest
{
    private const int ChunkBlocks = 1 << 14; // 256 KiB per parallel chunk

    public static byte[] Compute(ReadOnlySpan<byte> data)
    {
        int whole = data.Length / 16;
        Vector128<byte> acc = Vector128<byte>.Zero;
        if (whole > 0)
        {
            acc = whole >= 4 * ChunkBlocks ? ParallelSum(data[..(whole * 16)]) : Sum(MemoryMarshal.Cast<byte, Vector128<byte>>(data[..(whole * 16)]), 0);
        }

        Span<byte> tail = stackalloc byte[16];
        tail.Clear();
        data[(whole * 16)..].CopyTo(tail);
        Span<Vector128<byte>> last = stackalloc Vector128<byte>[1];
        last[0] = Vector128.Create(tail) ^ Tweak((ulong)whole);
        FixedKeyAes.HashInPlace(last);
        acc ^= last[0];

        last[0] = acc ^ Vector128.Create((ulong)data.Length, 0x48737345_44696773UL).AsByte(); // "HssEDigs"
        FixedKeyAes.HashInPlace(last);
        var result = new byte[16];
        last[0].CopyTo(result);
        return result;
    }

    private static unsafe Vector128<byte> ParallelSum(ReadOnlySpan<byte> data)
    {
        int blocks = data.Length / 16;
        int chunks = (blocks + ChunkBlocks - 1) / ChunkBlocks;
        var partial = new Vector128<byte>[chunks];
        fixed (byte* p = data)
        {
            nint address = (nint)p;
            Parallel.For(0, chunks, c =>
            {
                int start = c * ChunkBlocks;
                int count = Math.Min(ChunkBlocks, blocks - start);
                var span = new ReadOnlySpan<Vector128<byte>>((Vector128<byte>*)address + start, count);
                partial[c] = Sum(span, (ulong)start);
            });
        }

        Vector128<byte> acc = Vector128<byte>.Zero;
        foreach (Vector128<byte> v in partial)
        {
            acc ^= v;
        }

        return acc;
    }

    private static Vector128<byte> Sum(ReadOnlySpan<Vector128<byte>> blocks, ulong firstIndex) =>
        FixedKeyAes.HashXorSum(blocks, firstIndex, TweakHigh);

    // The high half marks payload blocks, so that no tweak equals the finalisation input's domain.
    private const ulong TweakHigh = 0x5061796C6F616421UL; // "Payload!"

    private static Vector128<byte> Tweak(ulong index) => Vector128.Create(index, TweakHigh).AsByte();
}
