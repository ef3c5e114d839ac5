// A user's view of the packages: only public API, referenced from the local package feed.
using HssEe;
using HssEe.Gpu;
using HssEe.Models;
using HssEe.Ring;
using HssEe.Runtime;
using HssEe.Sharing;

var format = new FixedPointFormat(12);
float[] input = [1.25f, -3.5f, 0.75f, 2f];
(Share a, Share b) = SecretSharing.Split(input, new TensorShape(2, 2), format);

// Both servers apply the same public linear layer to their own share, in one process.
RingTensor weights = format.Encode([0.5f, -1f, 2f, 0.25f], new TensorShape(2, 2));
var run = await TwoPartySimulation.RunAsync(
    (channel, ct) => Task.FromResult((channel.Party == Party.A ? a : b).MatMulPublic(weights, format.FractionalBits)),
    options: new TwoPartyOptions { ReceiveTimeout = TimeSpan.FromSeconds(10) });

float[] output = SecretSharing.ReconstructToSingle(run.A, run.B);
float[] expected = [(1.25f * 0.5f) + (-3.5f * -1f), (1.25f * 2f) + (-3.5f * 0.25f), (0.75f * 0.5f) + (2f * -1f), (0.75f * 2f) + (2f * 0.25f)];
for (int i = 0; i < expected.Length; i++)
{
    if (Math.Abs(output[i] - expected[i]) > 1e-3)
    {
        Console.Error.WriteLine($"consumer: element {i} is {output[i]}, expected {expected[i]}");
        return 1;
    }
}

float[] roundTrip = SecretSharing.ReconstructToSingle(a, b);
if (!roundTrip.SequenceEqual(input))
{
    Console.Error.WriteLine("consumer: share/reconstruct round trip failed");
    return 1;
}

GpuRuntimeReport gpu = GpuRuntimes.Probe();
Console.WriteLine($"consumer: share/reconstruct and linear layer OK ({run.Cost}); mode {ExecutionMode.HssEe}; CUDA devices {gpu.CudaDeviceCount}, OpenCL platforms {gpu.OpenClPlatformCount}");
return 0;
