using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;
using HssEe.Ee;
using static HssEe.Core.Tests.Ee.EeTestUtil;

namespace HssEe.Core.Tests.Ee;

public class EeKeyTests
{
    private static EeKeySpec SampleSpec() => new(
        new EeBoundary("hidden", EeTransformKind.OrthogonalFixingOnes, 16),
        EeBoundary.PairRotations("heads", 8, 4),
        new EeBoundary("vocab", EeTransformKind.Permutation, 40),
        new EeBoundary("conv1", EeTransformKind.ScaledPermutation, 12),
        new EeBoundary("mlp", EeTransformKind.Permutation, 24),
        new EeBoundary("gain", EeTransformKind.PositiveScaling, 10),
        new EeBoundary("rot", EeTransformKind.Orthogonal, 9),
        EeBoundary.PairRotations("heads-hf", 8, 2, halfSplitPairs: true));

    private static double[] Fingerprint(FeatureTransform t) => DenseMatrix(t);

    [Fact]
    public void Same_seed_and_spec_give_the_same_transforms()
    {
        var (seed, hex) = FreshSeed();
        using var a = EeKey.FromSeed(seed, SampleSpec());
        using var b = EeKey.FromSeed(seed, SampleSpec());
        foreach (EeBoundary boundary in a.Spec)
        {
            Assert.True(Fingerprint(a.GetTransform(boundary.Name)).SequenceEqual(Fingerprint(b.GetTransform(boundary.Name))), $"{boundary} (seed {hex})");
        }
    }

    [Fact]
    public void Boundaries_are_independent_of_order_and_of_other_boundaries()
    {
        var (seed, hex) = FreshSeed();
        using var a = EeKey.FromSeed(seed, SampleSpec());
        using var b = EeKey.FromSeed(seed, new EeKeySpec(
            new EeBoundary("extra", EeTransformKind.Permutation, 40),
            new EeBoundary("vocab", EeTransformKind.Permutation, 40)));
        Assert.Equal(Fingerprint(a.GetTransform("vocab")), Fingerprint(b.GetTransform("vocab")));
        Assert.NotEqual(Fingerprint(b.GetTransform("extra")), Fingerprint(b.GetTransform("vocab")));

        // A different dimension or kind under the same name derives an unrelated transform.
        using var c = EeKey.FromSeed(seed, new EeKeySpec(new EeBoundary("vocab", EeTransformKind.ScaledPermutation, 40)));
        int[] pa = a.GetTransform<Permutation>("vocab").CopySourceIndices();
        int[] pc = c.GetTransform<ScaledPermutation>("vocab").CopySourceIndices();
        Assert.False(pa.SequenceEqual(pc), $"kind is part of the derivation (seed {hex})");
    }

    [Fact]
    public void Different_seeds_give_different_transforms()
    {
        using var a = EeKey.Create(SampleSpec());
        using var b = EeKey.Create(SampleSpec());
        Assert.NotEqual(a.GetTransform<Permutation>("vocab").CopySourceIndices(), b.GetTransform<Permutation>("vocab").CopySourceIndices());
        Assert.NotEqual(Fingerprint(a.GetTransform("hidden")), Fingerprint(b.GetTransform("hidden")));
    }

    [Fact]
    public void Derivation_known_answer()
    {
        // Pins the derivation (HKDF info string, Fisher-Yates order, AesPrg): changing any of them
        // changes every existing key, which must be a deliberate format version bump.
        byte[] seed = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        using var key = EeKey.FromSeed(seed, new EeKeySpec(new EeBoundary("vocab", EeTransformKind.Permutation, 12)));
        int[] p = key.GetTransform<Permutation>("vocab").CopySourceIndices();
        Assert.Equal(KnownAnswer, p);
    }

    // Regression pin (produced by this implementation, not an external vector).
    private static readonly int[] KnownAnswer = [3, 0, 9, 7, 5, 6, 1, 2, 8, 10, 4, 11];

    [Fact]
    public void Unknown_names_wrong_kinds_and_wrong_dimensions_are_clear_errors()
    {
        using var key = EeKey.Create(SampleSpec());
        var unknown = Assert.Throws<ArgumentException>(() => key.GetTransform("hiden"));
        Assert.Equal("boundary", unknown.ParamName);
        Assert.Contains("'hiden'", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("'hidden'", unknown.Message, StringComparison.Ordinal);

        var wrongKind = Assert.Throws<ArgumentException>(() => key.GetTransform<Permutation>("hidden"));
        Assert.Contains("OrthogonalFixingOnes", wrongKind.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => key.EncryptTokens("hidden", [1], new int[1]));

        var wrongDim = Assert.Throws<ArgumentException>(() => key.Encrypt("hidden", new float[24], new float[24]));
        Assert.Contains("16", wrongDim.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => key.EncryptBias(new float[15], "hidden"));
        Assert.Throws<ArgumentException>(() => key.EncryptWeight(new float[16 * 15], "hidden", "mlp"));
        Assert.Throws<ArgumentException>(() => key.EncryptEmbeddingTable(new float[40 * 15], "vocab", "hidden"));

        var token = Assert.Throws<ArgumentOutOfRangeException>(() => key.EncryptTokens("vocab", [3, 40], new int[2]));
        Assert.Equal("tokens", token.ParamName);
        Assert.Equal("encrypted", Assert.Throws<ArgumentOutOfRangeException>(() => key.DecryptTokens("vocab", [-1], new int[1])).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => key.EncryptTokens("vocab", [1, 2], new int[1])).ParamName);
    }

    [Fact]
    public void Spec_validation()
    {
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => new EeBoundary("a/b", EeTransformKind.Permutation, 4)).ParamName);
        Assert.Throws<ArgumentException>(() => new EeBoundary("", EeTransformKind.Permutation, 4));
        Assert.Throws<ArgumentException>(() => new EeBoundary(new string('a', 65), EeTransformKind.Permutation, 4));
        Assert.Equal("kind", Assert.Throws<ArgumentOutOfRangeException>(() => new EeBoundary("a", (EeTransformKind)99, 4)).ParamName);
        Assert.Equal("dimension", Assert.Throws<ArgumentOutOfRangeException>(() => new EeBoundary("a", EeTransformKind.Permutation, 0)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new EeBoundary("a", EeTransformKind.Orthogonal, EeBoundary.MaxDenseDimension + 1));
        Assert.Equal("heads", Assert.Throws<ArgumentException>(() => new EeBoundary("a", EeTransformKind.Permutation, 8, 2)).ParamName);
        Assert.Throws<ArgumentException>(() => new EeBoundary("a", EeTransformKind.PairRotations, 12, 4)); // head dim 3 is odd
        Assert.Throws<ArgumentException>(() => new EeBoundary("a", EeTransformKind.PairRotations, 10, 4));
        Assert.Throws<ArgumentException>(() => new EeKeySpec());
        Assert.Throws<ArgumentException>(() => new EeKeySpec(
            new EeBoundary("a", EeTransformKind.Permutation, 4),
            new EeBoundary("a", EeTransformKind.Orthogonal, 4)));
        Assert.Equal("seed", Assert.Throws<ArgumentException>(() => EeKey.FromSeed(new byte[31], SampleSpec())).ParamName);

        EeBoundary heads = EeBoundary.PairRotations("heads", 64, 8);
        Assert.Equal(512, heads.Dimension);
        Assert.Equal(64, heads.HeadDimension);
        Assert.Equal("heads: PairRotations 512 (8 heads x 64)", heads.ToString());
        Assert.Equal(new EeBoundary("heads", EeTransformKind.PairRotations, 512, 8), heads);
    }

    [Fact]
    public void Export_import_round_trip()
    {
        using var key = EeKey.Create(SampleSpec());
        byte[] data = key.ExportSecretKeyMaterial();
        try
        {
            using EeKey back = EeKey.Import(data);
            Assert.Equal(key.Spec, back.Spec);
            foreach (EeBoundary boundary in key.Spec)
            {
                Assert.Equal(Fingerprint(key.GetTransform(boundary.Name)), Fingerprint(back.GetTransform(boundary.Name)));
            }

            Assert.Equal(data, back.ExportSecretKeyMaterial());
        }
        finally
        {
            CryptographicOperations.ZeroMemory(data);
        }
    }

    [Fact]
    public void Import_rejects_bad_data_with_specific_errors()
    {
        using var key = EeKey.Create(SampleSpec());
        byte[] good = key.ExportSecretKeyMaterial();

        var shortData = Assert.Throws<FormatException>(() => EeKey.Import(good.AsSpan(0, 40)));
        Assert.Contains("too short", shortData.Message, StringComparison.Ordinal);

        byte[] magic = (byte[])good.Clone();
        magic[0] ^= 1;
        Assert.Contains("magic", Assert.Throws<FormatException>(() => EeKey.Import(magic)).Message, StringComparison.Ordinal);

        byte[] version = (byte[])good.Clone();
        version[8] = 2;
        Assert.Contains("version 2", Assert.Throws<FormatException>(() => EeKey.Import(version)).Message, StringComparison.Ordinal);

        Assert.Contains("length mismatch", Assert.Throws<FormatException>(() => EeKey.Import(good.AsSpan(0, good.Length - 1))).Message, StringComparison.Ordinal);
        Assert.Contains("length mismatch", Assert.Throws<FormatException>(() => EeKey.Import([.. good, 0])).Message, StringComparison.Ordinal);

        byte[] seedByte = (byte[])good.Clone();
        seedByte[20] ^= 0x80;
        Assert.Contains("checksum", Assert.Throws<CryptographicException>(() => EeKey.Import(seedByte)).Message, StringComparison.Ordinal);

        byte[] checksumByte = (byte[])good.Clone();
        checksumByte[^1] ^= 1;
        Assert.Throws<CryptographicException>(() => EeKey.Import(checksumByte));

        // Every single-byte corruption is rejected, never silently accepted.
        for (int i = 0; i < good.Length; i++)
        {
            byte[] bad = (byte[])good.Clone();
            bad[i] ^= 0x01;
            Exception? e = Record.Exception(() => EeKey.Import(bad).Dispose());
            Assert.True(e is FormatException or CryptographicException, $"byte {i}: {e?.GetType().Name ?? "accepted"}");
        }

        CryptographicOperations.ZeroMemory(good);
    }

    [Fact]
    public void Import_rejects_an_invalid_spec_behind_a_valid_checksum()
    {
        using var key = EeKey.FromSeed(new byte[32], new EeKeySpec(new EeBoundary("v", EeTransformKind.Permutation, 4)));
        byte[] data = key.ExportSecretKeyMaterial();
        int kindOffset = 16 + 32 + 2 + 1 + 1; // header, seed, count, name length, name "v"
        data[kindOffset] = 42;
        System.Security.Cryptography.SHA256.HashData(data.AsSpan(0, data.Length - 32), data.AsSpan(data.Length - 32));
        Assert.Contains("boundary 0", Assert.Throws<FormatException>(() => EeKey.Import(data)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dispose_wipes_seed_and_transforms_and_blocks_use()
    {
        var key = EeKey.Create(SampleSpec());
        Permutation vocab = key.GetTransform<Permutation>("vocab");
        var hidden = key.GetTransform<OrthogonalTransform>("hidden");
        vocab.Dispose(); // owned by the key: no effect
        Assert.Equal(40, vocab.CopySourceIndices().Length);

        byte[] seed = PrivateField<byte[]>(key, "_seed");
        int[] source = PrivateField<int[]>(vocab, "_source");
        double[] q = PrivateField<double[]>(hidden, "_q");
        Assert.Contains(seed, b => b != 0);
        Assert.Contains(q, v => v != 0);

        key.Dispose();
        Assert.All(seed, b => Assert.Equal(0, b));
        Assert.All(source, v => Assert.Equal(0, v));
        Assert.All(q, v => Assert.Equal(0.0, v));

        Assert.Throws<ObjectDisposedException>(() => key.GetTransform("vocab"));
        Assert.Throws<ObjectDisposedException>(() => key.Encrypt("hidden", new float[16], new float[16]));
        Assert.Throws<ObjectDisposedException>(() => key.ExportSecretKeyMaterial());
        Assert.Throws<ObjectDisposedException>(() => vocab.Apply(new float[40], new float[40]));
        Assert.Throws<ObjectDisposedException>(() => hidden.ApplyInverse(new float[16], new float[16]));
        key.Dispose(); // idempotent
    }

    [Fact]
    public void Key_material_never_appears_in_ToString_or_the_debugger_view()
    {
        byte[] seed = Enumerable.Range(100, 32).Select(i => (byte)i).ToArray();
        using var key = EeKey.FromSeed(seed, SampleSpec());
        Permutation vocab = key.GetTransform<Permutation>("vocab");
        string text = key.ToString();
        Assert.Contains("hidden: OrthogonalFixingOnes 16", text, StringComparison.Ordinal);
        Assert.Contains("vocab: Permutation 40", text, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToHexString(seed), text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Convert.ToBase64String(seed), text, StringComparison.Ordinal);
        Assert.DoesNotContain(string.Join(",", vocab.CopySourceIndices()), vocab.ToString(), StringComparison.Ordinal);
        Assert.Equal("Permutation 'vocab' (Permutation, d=40)", vocab.ToString());

        foreach (Type type in new[] { typeof(EeKey), typeof(FeatureTransform), typeof(Permutation), typeof(ScaledPermutation), typeof(OrthogonalTransform), typeof(PairRotationTransform) })
        {
            var display = type.GetCustomAttribute<DebuggerDisplayAttribute>(inherit: false);
            Assert.NotNull(display);
            Assert.Equal("{ToString(),nq}", display.Value);
            foreach (FieldInfo f in type.GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (f.FieldType.IsArray || f.FieldType.Name.StartsWith("Dictionary", StringComparison.Ordinal))
                {
                    var browsable = f.GetCustomAttribute<DebuggerBrowsableAttribute>();
                    Assert.True(browsable?.State == DebuggerBrowsableState.Never, $"{type.Name}.{f.Name} must be hidden from the debugger");
                }
            }
        }

        key.Dispose();
        Assert.Equal("EeKey (disposed)", key.ToString());
    }

    [Fact]
    public void Concurrent_first_use_derives_each_transform_once()
    {
        using var key = EeKey.Create(SampleSpec());
        var seen = new FeatureTransform[8];
        Parallel.For(0, 8, i => seen[i] = key.GetTransform("hidden"));
        Assert.All(seen, t => Assert.Same(seen[0], t));
    }

    private static T PrivateField<T>(object o, string name)
    {
        FieldInfo f = o.GetType().GetField(name, BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException($"no field {name}");
        return (T)f.GetValue(o)!;
    }
}
