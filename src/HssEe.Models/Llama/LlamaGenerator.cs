using System.Security.Cryptography;
using System.Text;
using HssEe.Randomness;

namespace HssEe.Models.Llama;

/// <summary>
/// Text generation on a <see cref="LlamaSession"/>, done by the client on decrypted logits: greedy
/// (temperature 0) or sampling. Sampling draws from the fixed-key AES PRG, seeded from
/// <see cref="System.Security.Cryptography.RandomNumberGenerator"/>; a caller-given seed makes a run
/// repeatable (the PRG seed is then SHA-256("HssEe/sampling/v1/" + seed) truncated to 16 bytes) and makes
/// the sampled text predictable from the seed and the logits.
/// </summary>
public static class LlamaGenerator
{
    /// <summary>Feeds the prompt, then generates <paramref name="count"/> tokens one at a time.</summary>
    /// <param name="session">A fresh session (position 0).</param>
    /// <param name="prompt">Prompt token ids (at least one).</param>
    /// <param name="count">Tokens to generate.</param>
    /// <param name="temperature">0 for greedy; otherwise softmax sampling at this temperature.</param>
    /// <param name="seed">Seed of the sampler for a repeatable run; null (default) for a fresh one. Ignored when greedy.</param>
    /// <param name="onToken">Called with each generated token as soon as it is chosen.</param>
    /// <param name="cancellationToken">Cancels generation.</param>
    /// <returns>The generated token ids.</returns>
    public static async Task<int[]> GenerateAsync(
        LlamaSession session,
        IReadOnlyList<int> prompt,
        int count,
        double temperature = 0,
        int? seed = null,
        Action<int>? onToken = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(temperature);
        if (prompt.Count == 0)
        {
            throw new ArgumentException("The prompt needs at least one token.", nameof(prompt));
        }

        using AesPrg random = SamplerFor(seed);
        var output = new int[count];
        float[] logits = await session.NextLogitsAsync(prompt.ToArray(), cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < count; i++)
        {
            int next = temperature == 0 ? ArgMax(logits) : Sample(logits, temperature, random);
            output[i] = next;
            onToken?.Invoke(next);
            if (i + 1 < count)
            {
                logits = await session.NextLogitsAsync(new[] { next }, cancellationToken).ConfigureAwait(false);
            }
        }

        return output;
    }

    /// <summary>Index of the largest logit (the first on ties).</summary>
    /// <param name="logits">Logits.</param>
    /// <returns>The index.</returns>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        return best;
    }

    private static AesPrg SamplerFor(int? seed)
    {
        if (seed is not int s)
        {
            return AesPrg.Create();
        }

        byte[] digest = SHA256.HashData(Encoding.UTF8.GetBytes($"HssEe/sampling/v1/{s}"));
        try
        {
            return AesPrg.FromDerivedSeed(digest.AsSpan(0, AesPrg.SeedSize));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(digest);
        }
    }

    private static int Sample(float[] logits, double temperature, AesPrg random)
    {
        double max = logits.Max();
        var p = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < p.Length; i++)
        {
            p[i] = Math.Exp((logits[i] - max) / temperature);
            sum += p[i];
        }

        double u = random.NextDouble() * sum;
        for (int i = 0; i < p.Length; i++)
        {
            u -= p[i];
            if (u <= 0)
            {
                return i;
            }
        }

        return p.Length - 1;
    }
}
