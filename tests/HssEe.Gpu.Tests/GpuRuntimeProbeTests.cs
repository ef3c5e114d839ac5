using HssEe.Gpu;

namespace HssEe.Gpu.Tests;

public class GpuRuntimeProbeTests
{
    [Fact]
    public void Probe_never_throws_and_is_self_consistent()
    {
        GpuRuntimeReport report = GpuRuntimes.Probe();
        Assert.True(report.CudaDeviceCount >= 0);
        Assert.True(report.OpenClPlatformCount >= 0);
        Assert.Equal(report.CudaDriverLoaded && report.NvrtcLoaded && report.CudaDeviceCount > 0, report.CudaAvailable);
        Assert.Equal(report.OpenClLoaded && report.OpenClPlatformCount > 0, report.OpenClAvailable);
        if (!report.CudaDriverLoaded)
        {
            Assert.Equal(0, report.CudaDeviceCount);
            Assert.Contains(report.Notes, n => n.Contains("CUDA driver", StringComparison.Ordinal));
        }

        if (!report.OpenClLoaded)
        {
            Assert.Equal(0, report.OpenClPlatformCount);
            Assert.Contains(report.Notes, n => n.Contains("OpenCL", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Pocl_is_found_when_installed()
    {
        // On machines where pocl-opencl-icd is installed (it registers in /etc/OpenCL/vendors),
        // the probe must see at least one platform.
        bool poclInstalled = Directory.Exists("/etc/OpenCL/vendors")
            && Directory.GetFiles("/etc/OpenCL/vendors", "*pocl*").Length > 0
            && (File.Exists("/usr/lib/x86_64-linux-gnu/libOpenCL.so.1") || File.Exists("/usr/lib/aarch64-linux-gnu/libOpenCL.so.1"));
        GpuRuntimeReport report = GpuRuntimes.Probe();
        if (poclInstalled)
        {
            Assert.True(report.OpenClAvailable, string.Join("; ", report.Notes));
        }
        else
        {
            Assert.False(report.OpenClAvailable && report.OpenClPlatformCount == 0);
        }
    }
}
