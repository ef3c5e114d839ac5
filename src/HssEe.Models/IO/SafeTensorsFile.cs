using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace HssEe.Models.IO;

/// <summary>
/// A read-only safetensors file (Hugging Face format: an 8-byte little-endian header length, a UTF-8
/// JSON header, then the tensor bytes), memory-mapped by <see cref="Open"/> or held in memory by
/// <see cref="FromBytes"/>. The whole header is validated on opening: dtypes, shapes, and data
/// offsets that must tile the data buffer exactly. Reads copy and convert into new arrays; they may
/// run concurrently from several threads. <see cref="Dispose"/> unmaps the file; reads afterwards
/// throw <see cref="ObjectDisposedException"/> (<see cref="Tensors"/> and <see cref="Metadata"/>
/// stay readable).
/// </summary>
public sealed unsafe class SafeTensorsFile : IWeightSource, IDisposable
{
    /// <summary>Elements converted per step, so that a span never exceeds 2 GiB of mapped bytes.</summary>
    internal const int ChunkElements = 1 << 20;

    private readonly SafeTensorsHeader _header;
    private readonly string? _source;
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly SafeMemoryMappedViewHandle? _handle;
    private readonly long _pointerOffset;
    private byte[]? _bytes;
    private int _disposed;

    private SafeTensorsFile(SafeTensorsHeader header, string? source, byte[]? bytes, MemoryMappedFile? map, MemoryMappedViewAccessor? view)
    {
        _header = header;
        _source = source;
        _bytes = bytes;
        _map = map;
        _view = view;
        if (view is not null)
        {
            _handle = view.SafeMemoryMappedViewHandle;
            _pointerOffset = view.PointerOffset;
        }
    }

    /// <summary>The tensors by name, as the header describes them.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors => _header.Tensors;

    /// <summary>The header's <c>__metadata__</c> string entries; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _header.Metadata;

    /// <summary>The tensor names, in the order of their data in the file.</summary>
    public IEnumerable<string> Names => _header.FileOrder;

    /// <summary>
    /// Opens and memory-maps a safetensors file read-only, and validates its header. The file stays
    /// open (shared for reading) until <see cref="Dispose"/>.
    /// </summary>
    /// <param name="path">The file path; it names the file in error messages.</param>
    /// <exception cref="SafeTensorsFormatException">The file is not a well-formed safetensors file.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            long length = stream.Length;
            if (length < 8)
            {
                // An empty file cannot be mapped; report the format problem instead.
                SafeTensorsHeader.ReadHeaderLength(default, length, path);
            }

            map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            SafeMemoryMappedViewHandle handle = view.SafeMemoryMappedViewHandle;
            byte* p = null;
            handle.AcquirePointer(ref p);
            SafeTensorsHeader header;
            try
            {
                header = ParseHeader(p + view.PointerOffset, length, path);
            }
            finally
            {
                handle.ReleasePointer();
            }

            return new SafeTensorsFile(header, path, null, map, view);
        }
        catch
        {
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads a safetensors file held in memory (an embedded resource, a download) and validates its
    /// header. The array is used in place, not copied: do not modify it while this object is in use.
    /// </summary>
    /// <param name="data">The whole file.</param>
    /// <param name="name">A name for error messages (e.g. the resource name); null for none.</param>
    /// <exception cref="SafeTensorsFormatException">The bytes are not a well-formed safetensors file.</exception>
    public static SafeTensorsFile FromBytes(byte[] data, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        fixed (byte* p = data)
        {
            return new SafeTensorsFile(ParseHeader(p, data.Length, name), name, data, null, null);
        }
    }

    /// <inheritdoc/>
    public bool Contains(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _header.Tensors.ContainsKey(name);
    }

    /// <inheritdoc/>
    public IReadOnlyList<int> GetShape(string name) => Info(name).Shape;

    /// <inheritdoc/>
    public float[] ReadSingle(string name)
    {
        SafeTensorInfo info = Info(name);
        if (!info.DType.IsFloat())
        {
            throw new InvalidDataException(
                $"{SourceName}: tensor '{name}' has dtype {info.DType.Name()}; ReadSingle reads F32, F16, BF16 and F64 tensors (use ReadInt64 for integer tensors)");
        }

        var result = new float[ArrayLength(info)];
        Read(info, result.AsSpan(), static (dtype, src, dst) => SafeTensorsConversions.ToSingle(dtype, src, dst));
        return result;
    }

    /// <summary>Reads an integer tensor (I64, or I32 / I8 / U8 widened) as a new int64 array in row-major order.</summary>
    /// <param name="name">The tensor name.</param>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    /// <exception cref="InvalidDataException">The tensor's dtype is a floating-point type.</exception>
    public long[] ReadInt64(string name)
    {
        SafeTensorInfo info = Info(name);
        if (info.DType.IsFloat())
        {
            throw new InvalidDataException(
                $"{SourceName}: tensor '{name}' has dtype {info.DType.Name()}; ReadInt64 reads I64, I32, I8 and U8 tensors (use ReadSingle for floating-point tensors)");
        }

        var result = new long[ArrayLength(info)];
        Read(info, result.AsSpan(), static (dtype, src, dst) => SafeTensorsConversions.ToInt64(dtype, src, dst));
        return result;
    }

    /// <summary>Unmaps and closes the file (or releases the byte array). Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _bytes = null;
        // A read in flight holds a reference on the view handle: the unmapping waits for it.
        _view?.Dispose();
        _map?.Dispose();
    }

    private string SourceName => _source ?? "safetensors data";

    private delegate void Converter<T>(SafeTensorDType dtype, ReadOnlySpan<byte> src, Span<T> dst);

    private static SafeTensorsHeader ParseHeader(byte* file, long fileLength, string? source)
    {
        long n = SafeTensorsHeader.ReadHeaderLength(new ReadOnlySpan<byte>(file, 8), fileLength, source);
        byte[] json = new ReadOnlySpan<byte>(file + 8, (int)n).ToArray();
        return SafeTensorsHeader.Parse(json, 8 + n, fileLength - 8 - n, source);
    }

    private SafeTensorInfo Info(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _header.Tensors.TryGetValue(name, out SafeTensorInfo? info)
            ? info
            : throw new KeyNotFoundException($"{SourceName}: no tensor named '{name}' (the file has {_header.Tensors.Count} tensors)");
    }

    private int ArrayLength(SafeTensorInfo info) =>
        info.ElementCount <= Array.MaxLength
            ? (int)info.ElementCount
            : throw new InvalidDataException(
                $"{SourceName}: tensor '{info.Name}' has {info.ElementCount} elements, more than a .NET array can hold");

    private void Read<T>(SafeTensorInfo info, Span<T> destination, Converter<T> convert)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        int size = info.DType.Size();
        long start = _header.DataStart + info.DataOffset;
        byte[]? bytes = _bytes;
        if (_handle is null)
        {
            ObjectDisposedException.ThrowIf(bytes is null, this);
            for (int i = 0; i < destination.Length; i += ChunkElements)
            {
                int m = Math.Min(ChunkElements, destination.Length - i);
                convert(info.DType, bytes.AsSpan((int)(start + ((long)i * size)), m * size), destination.Slice(i, m));
            }

            return;
        }

        byte* p = null;
        try
        {
            _handle.AcquirePointer(ref p);
        }
        catch (ObjectDisposedException)
        {
            // Disposed between the check above and here.
            throw new ObjectDisposedException(GetType().FullName);
        }

        try
        {
            byte* data = p + _pointerOffset + start;
            for (int i = 0; i < destination.Length; i += ChunkElements)
            {
                int m = Math.Min(ChunkElements, destination.Length - i);
                convert(info.DType, new ReadOnlySpan<byte>(data + ((long)i * size), m * size), destination.Slice(i, m));
            }
        }
        finally
        {
            _handle.ReleasePointer();
        }
    }
}
