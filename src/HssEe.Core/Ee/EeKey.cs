using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using HssEe.Randomness;

namespace HssEe.Ee;

/// <summary>
/// An equivariant-encryption key: one secret transform per feature-space boundary of a model, all
/// derived from a 256-bit seed and a public <see cref="EeKeySpec"/>. The client holds the key; the
/// model owner uses it once to rewrite the weights offline.
/// </summary>
/// <remarks>
/// <para><b>Derivation.</b> The transform of boundary <c>b</c> is sampled from an <see cref="AesPrg"/>
/// whose 16-byte seed is <c>HKDF-SHA256(ikm = seed, salt = empty, info = "HssEe/EE/v1/{name}/{kind}/{dimension}/{heads}")</c>
/// (kind as a fixed lower-case label such as <c>orthogonal-fixing-ones</c>). The same seed and
/// specification always give the same transforms; boundaries are independent of one another and of
/// their order. Transforms are derived on first use and cached. (Rotations go through floating-point
/// library functions, so two platforms may disagree in the last bits of a rotation matrix, far below
/// float32 precision.)</para>
/// <para><b>Security.</b> EE is combinatorial obfuscation, not semantic security: anyone who knows the
/// original weights recovers the key by matching rows and columns of <c>W' = T_out W T_in^-1</c> and of
/// the permuted embedding table (see DESIGN.md section 2). Use it against servers that do not know the
/// model, in combination with secret sharing.</para>
/// <para><b>Hygiene.</b> <see cref="Dispose"/> wipes the seed and every derived transform; any later use
/// throws <see cref="ObjectDisposedException"/>. <see cref="ToString"/> and the debugger view show the
/// specification only. Key material leaves the object only through <see cref="ExportSecretKeyMaterial"/>.
/// Transforms returned by <see cref="GetTransform(string)"/> belong to the key; do not use them after
/// disposing it. The key is safe for concurrent use, but not concurrently with <see cref="Dispose"/>.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class EeKey : IDisposable
{
    /// <summary>Seed length in bytes (256 bits).</summary>
    public const int SeedSize = 32;

    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly byte[] _seed;

    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly Dictionary<string, FeatureTransform> _derived = new(StringComparer.Ordinal);

    private readonly Lock _gate = new();
    private volatile bool _disposed;

    private EeKey(ReadOnlySpan<byte> seed, EeKeySpec spec)
    {
        _seed = FeatureTransform.SecretArray<byte>(SeedSize);
        seed.CopyTo(_seed);
        Spec = spec;
    }

    /// <summary>The public layout of the key (boundary names, kinds, dimensions).</summary>
    public EeKeySpec Spec { get; }

    /// <summary>Creates a key with a fresh 256-bit seed from <see cref="RandomNumberGenerator"/>.</summary>
    /// <param name="spec">The boundaries of the model.</param>
    /// <returns>A new key; dispose it to wipe it.</returns>
    public static EeKey Create(EeKeySpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Span<byte> seed = stackalloc byte[SeedSize];
        try
        {
            RandomNumberGenerator.Fill(seed);
            return new EeKey(seed, spec);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>
    /// Re-creates a key from a known 256-bit seed (for reproducible tests, or a seed kept in the
    /// caller's own secret store). The seed must be uniformly random and secret.
    /// </summary>
    /// <param name="seed">Exactly <see cref="SeedSize"/> bytes; copied, the caller keeps ownership.</param>
    /// <param name="spec">The boundaries of the model.</param>
    /// <returns>A new key; dispose it to wipe it.</returns>
    /// <exception cref="ArgumentException">The seed is not <see cref="SeedSize"/> bytes long.</exception>
    public static EeKey FromSeed(ReadOnlySpan<byte> seed, EeKeySpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (seed.Length != SeedSize)
        {
            throw new ArgumentException($"An EE key seed is {SeedSize} bytes, got {seed.Length}.", nameof(seed));
        }

        return new EeKey(seed, spec);
    }

    /// <summary>
    /// Reads a key written by <see cref="ExportSecretKeyMaterial"/> (format in <see cref="ExportSecretKeyMaterial"/>).
    /// </summary>
    /// <param name="data">The exported bytes; not modified (wipe them yourself when done).</param>
    /// <returns>The key.</returns>
    /// <exception cref="FormatException">The data is too short, has the wrong magic, an unsupported version, a length that disagrees with its header, or an invalid specification.</exception>
    /// <exception cref="CryptographicException">The checksum does not match (the data is corrupted).</exception>
    public static EeKey Import(ReadOnlySpan<byte> data) => EeKeyFormat.Read(data, static (seed, spec) => new EeKey(seed, spec));

    /// <summary>The transform of a boundary (derived on first use; owned by the key).</summary>
    /// <param name="boundary">Boundary name from <see cref="Spec"/>.</param>
    /// <returns>The transform; its <see cref="FeatureTransform.Dispose"/> does nothing.</returns>
    /// <exception cref="ArgumentException">The specification has no such boundary.</exception>
    /// <exception cref="ObjectDisposedException">The key was disposed.</exception>
    public FeatureTransform GetTransform(string boundary)
    {
        ArgumentNullException.ThrowIfNull(boundary);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!Spec.TryGetBoundary(boundary, out EeBoundary? b))
        {
            throw Spec.UnknownBoundary(boundary);
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_derived.TryGetValue(boundary, out FeatureTransform? t))
            {
                t = Derive(b);
                _derived.Add(boundary, t);
            }

            return t;
        }
    }

    /// <summary>The transform of a boundary as a specific type, e.g. <c>GetTransform&lt;Permutation&gt;("vocab")</c>.</summary>
    /// <typeparam name="T">Expected transform type.</typeparam>
    /// <param name="boundary">Boundary name from <see cref="Spec"/>.</param>
    /// <returns>The transform (owned by the key).</returns>
    /// <exception cref="ArgumentException">No such boundary, or its kind does not give a <typeparamref name="T"/>.</exception>
    /// <exception cref="ObjectDisposedException">The key was disposed.</exception>
    public T GetTransform<T>(string boundary)
        where T : FeatureTransform
    {
        FeatureTransform t = GetTransform(boundary);
        return t as T ?? throw new ArgumentException(
            $"Boundary '{boundary}' is {t.Kind} ({t.GetType().Name}), not a {typeof(T).Name}.", nameof(boundary));
    }

    /// <summary>Encrypts activations at a boundary: <c>y = T x</c> (see <see cref="FeatureTransform.Apply(ReadOnlySpan{float}, Span{float}, int)"/>).</summary>
    /// <param name="boundary">Boundary name.</param>
    /// <param name="x">Plain data viewed as <c>[outer, Dimension, innerSize]</c>.</param>
    /// <param name="y">Destination; may be <paramref name="x"/>.</param>
    /// <param name="innerSize">Elements after the feature axis.</param>
    public void Encrypt(string boundary, ReadOnlySpan<float> x, Span<float> y, int innerSize = 1) =>
        GetTransform(boundary).Apply(x, y, innerSize);

    /// <summary>Decrypts activations at a boundary: <c>y = T^-1 x</c>.</summary>
    /// <param name="boundary">Boundary name.</param>
    /// <param name="x">Encrypted data viewed as <c>[outer, Dimension, innerSize]</c>.</param>
    /// <param name="y">Destination; may be <paramref name="x"/>.</param>
    /// <param name="innerSize">Elements after the feature axis.</param>
    public void Decrypt(string boundary, ReadOnlySpan<float> x, Span<float> y, int innerSize = 1) =>
        GetTransform(boundary).ApplyInverse(x, y, innerSize);

    /// <summary>Encrypts token ids with a vocabulary permutation: token <c>t</c> becomes <c>MapIndex(t)</c>, the row of <c>t</c> in the encrypted embedding table.</summary>
    /// <param name="vocabBoundary">A <see cref="EeTransformKind.Permutation"/> boundary of vocabulary size.</param>
    /// <param name="tokens">Token ids in [0, vocabulary size).</param>
    /// <param name="destination">Encrypted ids; same length; may be <paramref name="tokens"/>.</param>
    /// <exception cref="ArgumentException">Wrong boundary kind or lengths.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token id is out of range.</exception>
    public void EncryptTokens(string vocabBoundary, ReadOnlySpan<int> tokens, Span<int> destination) =>
        MapTokens(vocabBoundary, tokens, destination, encrypt: true, nameof(tokens));

    /// <summary>Decrypts token ids (e.g. the argmax of encrypted logits): the inverse of <see cref="EncryptTokens"/>.</summary>
    /// <param name="vocabBoundary">A <see cref="EeTransformKind.Permutation"/> boundary of vocabulary size.</param>
    /// <param name="encrypted">Encrypted ids.</param>
    /// <param name="destination">Plain ids; same length; may be <paramref name="encrypted"/>.</param>
    /// <exception cref="ArgumentException">Wrong boundary kind or lengths.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id is out of range.</exception>
    public void DecryptTokens(string vocabBoundary, ReadOnlySpan<int> encrypted, Span<int> destination) =>
        MapTokens(vocabBoundary, encrypted, destination, encrypt: false, nameof(encrypted));

    /// <summary>Decrypts logits of an LM head rewritten with <see cref="EncryptWeight"/>: un-permutes the vocabulary axis (the last axis, <c>[rows, vocab]</c>).</summary>
    /// <param name="vocabBoundary">A <see cref="EeTransformKind.Permutation"/> boundary of vocabulary size.</param>
    /// <param name="logits">Encrypted logits.</param>
    /// <param name="destination">Plain logits; same length; may be <paramref name="logits"/>.</param>
    public void DecryptLogits(string vocabBoundary, ReadOnlySpan<float> logits, Span<float> destination) =>
        GetTransform<Permutation>(vocabBoundary).ApplyInverse(logits, destination);

    /// <summary>
    /// Encrypts a token embedding table <c>[vocab, hidden]</c> in place: rows are permuted by the vocabulary
    /// permutation and every row is transformed by the hidden transform, so that row
    /// <c>EncryptTokens(t)</c> of the result is <c>T_hidden E[t]</c>. (For a tied LM head with a
    /// non-orthogonal hidden transform, rewrite the head separately with <see cref="EncryptWeight"/>.)
    /// </summary>
    /// <param name="table">The table, row-major <c>[vocab, hidden]</c>.</param>
    /// <param name="vocabBoundary">A <see cref="EeTransformKind.Permutation"/> boundary of vocabulary size.</param>
    /// <param name="hiddenBoundary">The boundary of the embedding output.</param>
    /// <exception cref="ArgumentException">The table is not <c>vocab x hidden</c>, or a boundary is wrong.</exception>
    public void EncryptEmbeddingTable(Span<float> table, string vocabBoundary, string hiddenBoundary)
    {
        Permutation vocab = GetTransform<Permutation>(vocabBoundary);
        FeatureTransform hidden = GetTransform(hiddenBoundary);
        if ((long)vocab.Dimension * hidden.Dimension != table.Length)
        {
            throw new ArgumentException(
                $"Embedding table length {table.Length} is not vocab x hidden = {vocab.Dimension} x {hidden.Dimension} ('{vocabBoundary}', '{hiddenBoundary}').",
                nameof(table));
        }

        vocab.Permute<float>(table, table, hidden.Dimension);
        hidden.Apply(table, table);
    }

    /// <summary>Rewrites weights in place: <c>W' = T_out W T_in^-1</c> (layout <c>[out, in, kernelSize]</c>); see <see cref="FeatureTransform.TransformWeight"/>. An LM head is <c>EncryptWeight(w, vocab, hidden)</c>.</summary>
    /// <param name="weight">Weights, rewritten in place.</param>
    /// <param name="outputBoundary">Boundary of the output features, or null for none.</param>
    /// <param name="inputBoundary">Boundary of the input features, or null for none.</param>
    /// <param name="kernelSize">Elements per (output, input) pair (<c>kh * kw</c> for a convolution).</param>
    public void EncryptWeight(Span<float> weight, string? outputBoundary, string? inputBoundary, int kernelSize = 1) =>
        FeatureTransform.TransformWeight(
            weight,
            outputBoundary is null ? null : GetTransform(outputBoundary),
            inputBoundary is null ? null : GetTransform(inputBoundary),
            kernelSize);

    /// <summary>Rewrites a bias in place: <c>b' = T_out b</c>.</summary>
    /// <param name="bias">Bias of length <c>Dimension</c> of the output boundary.</param>
    /// <param name="outputBoundary">Boundary of the output features.</param>
    /// <exception cref="ArgumentException">The bias length differs from the boundary dimension.</exception>
    public void EncryptBias(Span<float> bias, string outputBoundary)
    {
        FeatureTransform t = GetTransform(outputBoundary);
        if (bias.Length != t.Dimension)
        {
            throw new ArgumentException($"Bias length {bias.Length} differs from the dimension {t.Dimension} of '{outputBoundary}'.", nameof(bias));
        }

        t.Apply(bias, bias);
    }

    /// <summary>
    /// <b>Exports the secret key</b> (the 256-bit seed, from which every transform follows, and the
    /// specification). Whoever holds these bytes can decrypt everything encrypted under the key: store
    /// them encrypted, and wipe the array with <see cref="CryptographicOperations.ZeroMemory"/> after use.
    /// </summary>
    /// <remarks>
    /// Format version 1, little-endian: magic <c>"HssEeKey"</c> (8 bytes), <c>u16</c> version = 1,
    /// <c>u16</c> reserved = 0, <c>u32</c> total length, the 32-byte seed, <c>u16</c> boundary count, then per
    /// boundary <c>u8</c> name length, the ASCII name, <c>u8</c> kind (<see cref="EeTransformKind"/> value),
    /// <c>i32</c> dimension, <c>i32</c> heads; finally SHA-256 of all preceding bytes. The checksum detects
    /// corruption; it is not a MAC.
    /// </remarks>
    /// <returns>A new array holding the secret key.</returns>
    /// <exception cref="ObjectDisposedException">The key was disposed.</exception>
    public byte[] ExportSecretKeyMaterial()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return EeKeyFormat.Write(_seed, Spec);
    }

    /// <summary>Wipes the seed and every derived transform. Further use throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            CryptographicOperations.ZeroMemory(_seed);
            foreach (FeatureTransform t in _derived.Values)
            {
                t.Wipe();
            }

            _derived.Clear();
        }
    }

    /// <summary>Describes the key by its specification only, e.g. <c>EeKey { hidden: Orthogonal 512; vocab: Permutation 256 }</c>.</summary>
    /// <returns>Boundary names, kinds and dimensions; never key material.</returns>
    public override string ToString() => _disposed ? "EeKey (disposed)" : "EeKey { " + Spec + " }";

    private FeatureTransform Derive(EeBoundary boundary)
    {
        Span<byte> prgSeed = stackalloc byte[AesPrg.SeedSize];
        try
        {
            byte[] info = Encoding.ASCII.GetBytes(boundary.DerivationInfo);
            HKDF.DeriveKey(HashAlgorithmName.SHA256, _seed, prgSeed, ReadOnlySpan<byte>.Empty, info);
            using AesPrg prg = AesPrg.FromDerivedSeed(prgSeed);
            FeatureTransform t = FeatureTransform.Create(boundary, prg);
            t.MarkOwnedByKey();
            return t;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(prgSeed);
        }
    }

    private void MapTokens(string vocabBoundary, ReadOnlySpan<int> source, Span<int> destination, bool encrypt, string sourceName)
    {
        Permutation vocab = GetTransform<Permutation>(vocabBoundary);
        if (source.Length != destination.Length)
        {
            throw new ArgumentException($"Destination length {destination.Length} differs from the {source.Length} token ids.", nameof(destination));
        }

        int n = vocab.Dimension;
        for (int i = 0; i < source.Length; i++)
        {
            int t = source[i];
            if ((uint)t >= (uint)n)
            {
                throw new ArgumentOutOfRangeException(sourceName, t, $"Token id at position {i} is outside the vocabulary [0, {n}) of '{vocabBoundary}'.");
            }

            destination[i] = encrypt ? vocab.MapIndex(t) : vocab.UnmapIndex(t);
        }
    }
}
