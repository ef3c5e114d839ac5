using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using System.Text;

namespace HssEe.Randomness;

/// <summary>
/// The library's one fixed public AES-128 key and the MMO^sigma hash built on it. This is
/// the PRG core of the whole library: <see cref="AesPrg"/> streams and the DPF/DCF tree
/// expansions all call <see cref="HashInPlace"/>.
/// </summary>
/// <remarks>
/// The key is <c>SHA-256("HssEe/FixedKeyAes/v1")[0..16]</c>, a nothing-up-my-sleeve public
/// constant. Security rests on modelling fixed-key AES as a random permutation
/// (Guo, Katz, Wang, Yu, "Efficient and Secure Multiparty Computation from Fixed-Key
/// Block Ciphers", S&amp;P 2020): H is then a (tweakable) circular correlation-robust hash,
/// and H(seed XOR i) for a uniform 128-bit seed and distinct counters i is pseudorandom.
/// </remarks>
internal static class FixedKeyAes
{
    private static readonly AesCore Hardware = new(Key(), allowHardware: true);
    private static readonly Lazy<AesCore> Portable = new(() => new AesCore(Key(), allowHardware: false));

    /// <summary>The public fixed key (16 bytes).</summary>
    public static byte[] Key() => SHA256.HashData(Encoding.ASCII.GetBytes("HssEe/FixedKeyAes/v1"))[..16];

    /// <summary>True when the hash runs on AES-NI in this process.</summary>
    public static bool UsesAesNi => Hardware.UsesAesNi;

    /// <summary>The expanded round keys of the fixed key (public), for kernels that inline the AES-NI rounds.</summary>
    public static ReadOnlySpan<Vector128<byte>> RoundKeys => Hardware.RoundKeys;

    /// <summary>Applies H(x) = AES_k(sigma(x)) XOR sigma(x) to every block in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void HashInPlace(Span<Vector128<byte>> blocks) => Hardware.HashInPlace(blocks);

    /// <summary>XOR over i of H(blocks[i] XOR (firstIndex + i, tweakHigh)), fused (see <see cref="AesCore.HashXorSum"/>).</summary>
    public static Vector128<byte> HashXorSum(ReadOnlySpan<Vector128<byte>> blocks, ulong firstIndex, ulong tweakHigh) => Hardware.HashXorSum(blocks, firstIndex, tweakHigh);

    /// <summary>The portable (platform AES) path, for conformance tests and benchmarks.</summary>
    public static void HashInPlacePortable(Span<Vector128<byte>> blocks) => Portable.Value.HashInPlace(blocks);

    /// <summary>
    /// Writes <c>H(seed XOR counter_j)</c> for <c>counter_j = start + j</c> (the counter in the low
    /// 64 bits, little-endian) into <paramref name="destination"/>.
    /// </summary>
    public static void CounterStream(Vector128<byte> seed, ulong start, Span<Vector128<byte>> destination)
    {
        Vector128<ulong> s = seed.AsUInt64();
        for (int j = 0; j < destination.Length; j++)
        {
            destination[j] = (s ^ Vector128.CreateScalar(start + (ulong)j)).AsByte();
        }

        HashInPlace(destination);
    }
}
