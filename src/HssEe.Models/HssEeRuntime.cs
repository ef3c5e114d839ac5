using System.Diagnostics;
using HssEe.Models.Engine;
using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Runtime;
using HssEe.Sharing;

namespace HssEe.Models;

/// <summary>The cost of one private inference step (or a sum of steps).</summary>
/// <param name="Elapsed">Wall-clock time of the two servers' online phase.</param>
/// <param name="OnlineBytes">Payload bytes the two servers sent each other.</param>
/// <param name="Rounds">Communication rounds (message depth).</param>
/// <param name="KeyBytes">Bytes of FSS keys and Beaver material the client dealt to both servers.</param>
/// <param name="KeyGeneration">Time the client spent dealing those keys (offline).</param>
public readonly record struct InferenceCost(TimeSpan Elapsed, long OnlineBytes, int Rounds, long KeyBytes, TimeSpan KeyGeneration)
{
    /// <summary>Adds two costs.</summary>
    /// <param name="a">First.</param>
    /// <param name="b">Second.</param>
    /// <returns>The sum.</returns>
    public static InferenceCost operator +(InferenceCost a, InferenceCost b) =>
        new(a.Elapsed + b.Elapsed, a.OnlineBytes + b.OnlineBytes, a.Rounds + b.Rounds, a.KeyBytes + b.KeyBytes, a.KeyGeneration + b.KeyGeneration);

    /// <summary>Adds two costs.</summary>
    /// <param name="other">The other cost.</param>
    /// <returns>The sum.</returns>
    public InferenceCost Add(InferenceCost other) => this + other;

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Elapsed.TotalMilliseconds:F1} ms online, {CostReport.FormatBytes(OnlineBytes)} online, {Rounds} rounds, {CostReport.FormatBytes(KeyBytes)} keys ({KeyGeneration.TotalMilliseconds:F0} ms to deal)";
}

/// <summary>Key bundles the client dealt for one plan (single use), held in 16 MiB chunks (a bundle may exceed 2 GB).</summary>
internal sealed class DealtKeys
{
    private KeyBuffer? _a;
    private KeyBuffer? _b;

    private DealtKeys(Plan plan, KeyBuffer a, KeyBuffer b, TimeSpan elapsed)
    {
        Plan = plan;
        _a = a;
        _b = b;
        KeyBytes = a.Length + b.Length;
        Elapsed = elapsed;
    }

    public Plan Plan { get; }

    public long KeyBytes { get; }

    public TimeSpan Elapsed { get; }

    /// <summary>
    /// <b>Benchmarks only.</b> When set, bundles are spilled to delete-on-close files in this folder instead
    /// of memory, so that runs whose keys exceed the machine's memory (ResNet-18 at 224 x 224: about 16 GB)
    /// can be measured. Key material then touches the disk unencrypted and is not wiped from it: never set
    /// this outside a benchmark.
    /// </summary>
    internal static string? SpillDirectoryForBenchmarks { get; set; }

    public static DealtKeys Deal(Plan plan, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var sw = Stopwatch.StartNew();
        string? spill = SpillDirectoryForBenchmarks;
        KeyBuffer a = spill is null ? new ChunkedBuffer() : new FileKeyBuffer(spill);
        KeyBuffer b = spill is null ? new ChunkedBuffer() : new FileKeyBuffer(spill);
        Dealer.Generate(plan, a, b, progress, cancellationToken);
        a.Flush();
        b.Flush();
        return new DealtKeys(plan, a, b, sw.Elapsed);
    }

    /// <summary>Hands both bundles out once, as streams read from their start; the second call throws.</summary>
    public (KeyBuffer A, KeyBuffer B) Take()
    {
        KeyBuffer? a = Interlocked.Exchange(ref _a, null), b = Interlocked.Exchange(ref _b, null);
        return a is null || b is null ? throw new InvalidOperationException("These key bundles were already used; every step needs fresh keys.") : (a, b);
    }
}

/// <summary>A key bundle being written once by the dealer, then read once by a server.</summary>
internal abstract class KeyBuffer : Stream
{
    /// <summary>Ends writing and returns the bundle as a stream read from its start.</summary>
    public abstract Stream OpenRead();

    /// <summary>Wipes (memory) or deletes (file) the bundle.</summary>
    public abstract void Clear();
}

/// <summary>A bundle in a delete-on-close temporary file (see <see cref="DealtKeys.SpillDirectoryForBenchmarks"/>).</summary>
internal sealed class FileKeyBuffer(string directory) : KeyBuffer
{
    private readonly FileStream _file = new(
        Path.Combine(directory, "hssee-keys-" + Guid.NewGuid().ToString("N") + ".tmp"),
        FileMode.CreateNew,
        FileAccess.ReadWrite,
        FileShare.None,
        1 << 20,
        FileOptions.DeleteOnClose | FileOptions.SequentialScan);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => _file.Length;

    public override long Position
    {
        get => _file.Position;
        set => throw new NotSupportedException();
    }

    public override Stream OpenRead()
    {
        _file.Flush();
        _file.Position = 0;
        return this;
    }

    public override void Clear() => _file.Dispose();

    public override void Write(byte[] buffer, int offset, int count) => _file.Write(buffer, offset, count);

    public override void Write(ReadOnlySpan<byte> buffer) => _file.Write(buffer);

    public override int Read(byte[] buffer, int offset, int count) => _file.Read(buffer, offset, count);

    public override int Read(Span<byte> buffer) => _file.Read(buffer);

    public override void Flush() => _file.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

}

/// <summary>A write-once, read-once byte buffer of any length, kept in 16 MiB chunks.</summary>
internal sealed class ChunkedBuffer : KeyBuffer
{
    private const int ChunkSize = 1 << 24;
    private readonly List<byte[]> _chunks = [];
    private long _length;
    private long _position;
    private bool _reading;

    public override bool CanRead => _reading;

    public override bool CanSeek => false;

    public override bool CanWrite => !_reading;

    public override long Length => _length;

    public override long Position
    {
        get => _reading ? _position : _length;
        set => throw new NotSupportedException();
    }

    /// <summary>Ends writing and returns this buffer as a stream read from its start.</summary>
    public override Stream OpenRead()
    {
        _reading = true;
        _position = 0;
        return this;
    }

    /// <summary>Zeroes and drops the chunks.</summary>
    public override void Clear()
    {
        foreach (byte[] chunk in _chunks)
        {
            Array.Clear(chunk);
        }

        _chunks.Clear();
        _length = 0;
        _position = 0;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_reading)
        {
            throw new NotSupportedException("The buffer is being read.");
        }

        while (!buffer.IsEmpty)
        {
            int at = (int)(_length % ChunkSize);
            if (at == 0 && _length / ChunkSize == _chunks.Count)
            {
                _chunks.Add(GC.AllocateUninitializedArray<byte>(ChunkSize));
            }

            int n = Math.Min(buffer.Length, ChunkSize - at);
            buffer[..n].CopyTo(_chunks[(int)(_length / ChunkSize)].AsSpan(at));
            buffer = buffer[n..];
            _length += n;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (!_reading)
        {
            throw new NotSupportedException("The buffer is being written.");
        }

        int total = 0;
        while (!buffer.IsEmpty && _position < _length)
        {
            int at = (int)(_position % ChunkSize);
            int n = (int)Math.Min(Math.Min(buffer.Length, ChunkSize - at), _length - _position);
            _chunks[(int)(_position / ChunkSize)].AsSpan(at, n).CopyTo(buffer);
            buffer = buffer[n..];
            _position += n;
            total += n;
        }

        return total;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>
/// Two in-process servers joined by a <see cref="PartyChannel"/> pair that persists across steps (the
/// servers keep state, e.g. a KV cache, between steps). Each step: both servers open a
/// <see cref="PartySession"/> on their bundle, run the model definition on an <see cref="HssEngine"/>,
/// and return their share of the output. A failing server aborts the channel so that its peer fails
/// fast instead of waiting for its timeout.
/// </summary>
internal sealed class HssEeRuntime : IAsyncDisposable
{
    private readonly PartyChannel _a;
    private readonly PartyChannel _b;
    private readonly Compute.ComputeBackend? _backend;

    public HssEeRuntime(int fractionalBits, TimeSpan? receiveTimeout = null, Compute.ComputeBackend? backend = null)
    {
        FractionalBits = fractionalBits;
        (InProcessChannel linkA, InProcessChannel linkB) = InProcessChannel.CreatePair();
        _a = new PartyChannel(Party.A, linkA, receiveTimeout);
        _b = new PartyChannel(Party.B, linkB, receiveTimeout);
        _backend = backend;
    }

    public int FractionalBits { get; }

    /// <summary>Records a plan by running <paramref name="forward"/> on symbolic values.</summary>
    public Plan BuildPlan(TensorShape inputShape, Func<HssEngine, SecretTensor, ValueTask<SecretTensor>> forward)
    {
        var builder = new PlanBuilder(FractionalBits);
        HssEngine engine = HssEngine.ForPlanning(builder);
        ValueTask<SecretTensor> run = forward(engine, engine.Symbolic(inputShape));
        if (!run.IsCompleted)
        {
            throw new InvalidOperationException("Planning must complete synchronously.");
        }

        _ = run.Result;
        return builder.Build();
    }

    /// <summary>Runs one step on both servers and returns both output shares with the step's cost.</summary>
    public async Task<(Share A, Share B, InferenceCost Cost)> RunAsync(
        DealtKeys keys,
        Share inputA,
        Share inputB,
        Func<Party, HssEngine, SecretTensor, ValueTask<SecretTensor>> forward,
        CancellationToken cancellationToken)
    {
        (KeyBuffer bundleA, KeyBuffer bundleB) = keys.Take();
        ChannelStatistics beforeA = _a.Statistics, beforeB = _b.Statistics;
        var sw = Stopwatch.StartNew();
        Task<Share> a = ServeAsync(_a, keys.Plan, bundleA, inputA, forward, cancellationToken);
        Task<Share> b = ServeAsync(_b, keys.Plan, bundleB, inputB, forward, cancellationToken);
        try
        {
            await Task.WhenAll(a, b).ConfigureAwait(false);
        }
        catch (Exception) when (a.IsFaulted || b.IsFaulted)
        {
            // Report the root cause (the server that failed first), not the peer's "aborted" echo.
            Exception root = (a.IsFaulted && a.Exception!.InnerException is not PeerFailedException ? a.Exception : b.Exception ?? a.Exception)!.InnerException!;
            throw new TwoPartyException($"Private inference step failed ({keys.Plan}): {root.Message}", root);
        }

        sw.Stop();
        ChannelStatistics afterA = _a.Statistics, afterB = _b.Statistics;
        long online = afterA.BytesSent - beforeA.BytesSent + afterB.BytesSent - beforeB.BytesSent;
        int rounds = Math.Max(afterA.Rounds - beforeA.Rounds, afterB.Rounds - beforeB.Rounds);
        return (a.Result, b.Result, new InferenceCost(sw.Elapsed, online, rounds, keys.KeyBytes, keys.Elapsed));
    }

    private async Task<Share> ServeAsync(
        PartyChannel channel,
        Plan plan,
        KeyBuffer bundle,
        Share input,
        Func<Party, HssEngine, SecretTensor, ValueTask<SecretTensor>> forward,
        CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            using var session = new PartySession(plan, channel.Party, bundle.OpenRead(), channel, _backend);
            HssEngine engine = HssEngine.ForExecution(FractionalBits, session, _backend, cancellationToken);
            SecretTensor y = await forward(channel.Party, engine, engine.Input(input)).ConfigureAwait(false);
            session.Complete();
            return y.Share ?? throw new InvalidOperationException("The model returned a symbolic value while executing.");
        }
        catch (Exception ex) when (ex is not PeerFailedException)
        {
            await channel.AbortAsync(ex).ConfigureAwait(false);
            throw;
        }
        finally
        {
            bundle.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _a.DisposeAsync().ConfigureAwait(false);
        await _b.DisposeAsync().ConfigureAwait(false);
    }
}
