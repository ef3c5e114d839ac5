using System.Security.Cryptography;
using HssEe.Randomness;

namespace HssEe.Core.Tests;

/// <summary>Fresh seeds for randomized tests; the seed is part of every assertion message so a failure can be replayed.</summary>
internal static class TestSeeds
{
    public static (AesPrg Prg, string Seed) Fresh()
    {
        byte[] seed = RandomNumberGenerator.GetBytes(AesPrg.SeedSize);
        return (AesPrg.CreateDeterministicForTesting(seed), Convert.ToHexString(seed));
    }

    public static AesPrg Replay(string hexSeed) => AesPrg.CreateDeterministicForTesting(Convert.FromHexString(hexSeed));
}
