using HssEe.Randomness;

namespace HssEe.Fss;

/// <summary>
/// One party's DPF keys (see <see cref="Dpf"/> for the construction, key layout and size formula),
/// stored flat in one pinned array. Produced by <see cref="Dpf.Generate(FssKeyParameters, ulong, ReadOnlySpan{ulong}, AesPrg)"/> / <see cref="Dpf.GenerateBatch(FssKeyParameters, ReadOnlySpan{ulong}, ReadOnlySpan{ulong}, AesPrg, int)"/>
/// or <see cref="Read(Stream, Party?, FssKeyParameters?)"/>; evaluated by <see cref="Dpf.EvaluateBatch(DpfKeyCollection, ReadOnlySpan{ulong}, Span{ulong}, int)"/>.
/// </summary>
public sealed class DpfKeyCollection : FssKeyCollection
{
    internal DpfKeyCollection(Party party, FssKeyParameters parameters, int count, byte[] data)
        : base(FssKeyKind.Dpf, party, parameters, count, new DpfKeyLayout(parameters).KeySize, data)
    {
        Layout = new DpfKeyLayout(parameters);
    }

    internal DpfKeyLayout Layout { get; }

    /// <summary>Reads DPF keys written by <see cref="FssKeyCollection.Write(Stream)"/>.</summary>
    /// <param name="stream">Source; read up to the end of the checksum, no further.</param>
    /// <param name="expectedParty">When given, keys of the other party are rejected.</param>
    /// <param name="expectedParameters">When given, keys with another n, ell or m are rejected.</param>
    /// <returns>The keys.</returns>
    /// <exception cref="FssKeyFormatException">Malformed, truncated or corrupted data, DCF keys, or the wrong party or parameters.</exception>
    public static new DpfKeyCollection Read(Stream stream, Party? expectedParty = null, FssKeyParameters? expectedParameters = null) =>
        (DpfKeyCollection)FssKeyFormat.Read(stream, FssKeyKind.Dpf, expectedParty, expectedParameters);

    /// <summary>Reads DPF keys from a buffer holding exactly one serialised collection.</summary>
    /// <param name="data">The serialised bytes.</param>
    /// <param name="expectedParty">When given, keys of the other party are rejected.</param>
    /// <param name="expectedParameters">When given, keys with another n, ell or m are rejected.</param>
    /// <returns>The keys.</returns>
    /// <exception cref="FssKeyFormatException">Malformed, truncated, corrupted or over-long data, DCF keys, or the wrong party or parameters.</exception>
    public static new DpfKeyCollection Read(ReadOnlySpan<byte> data, Party? expectedParty = null, FssKeyParameters? expectedParameters = null) =>
        (DpfKeyCollection)FssKeyFormat.Read(data, FssKeyKind.Dpf, expectedParty, expectedParameters);

    /// <summary>
    /// Wraps raw key material (keys back to back, as written by the span overload of <see cref="Dpf.GenerateBatch(FssKeyParameters, ReadOnlySpan{ulong}, ReadOnlySpan{ulong}, AesPrg, Span{byte}, Span{byte}, int)"/>
    /// or <see cref="FssKeyCollection.CopyKeyMaterialTo"/>) into a new collection; the bytes are copied. Raw material carries
    /// no header or checksum: the caller vouches for party and parameters (use <see cref="Read(Stream, Party?, FssKeyParameters?)"/> for untrusted data).
    /// </summary>
    /// <param name="party">The party the keys belong to.</param>
    /// <param name="parameters">n, ell, m of the keys.</param>
    /// <param name="keyMaterial">A whole number of keys of <see cref="Dpf.KeySize"/> bytes.</param>
    /// <returns>The keys (dispose them to wipe the copy).</returns>
    public static DpfKeyCollection FromKeyMaterial(Party party, FssKeyParameters parameters, ReadOnlySpan<byte> keyMaterial)
    {
        party.Validate(nameof(party));
        parameters.Validate(nameof(parameters));
        int keySize = new DpfKeyLayout(parameters).KeySize;
        if (keyMaterial.Length % keySize != 0)
        {
            throw new ArgumentException($"{keyMaterial.Length} bytes are not a whole number of DPF keys of {keySize} bytes ({parameters}).", nameof(keyMaterial));
        }

        int count = keyMaterial.Length / keySize;
        byte[] data = AllocateKeyData(count, keySize);
        keyMaterial.CopyTo(data);
        return new DpfKeyCollection(party, parameters, count, data);
    }

    /// <summary>Copies keys [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) into a new collection.</summary>
    /// <param name="start">First key.</param>
    /// <param name="count">Number of keys.</param>
    /// <returns>A new collection of the same party and parameters (dispose it separately).</returns>
    public DpfKeyCollection Slice(int start, int count) => new(Party, Parameters, count, CopyRange(start, count));

    internal void CheckKeys(int start, int count, string startName) => CheckRange(start, count, startName);
}
