using System.Runtime.InteropServices;

namespace HssEe.Gpu;

/// <summary>What the GPU runtime probe found on this machine.</summary>
/// <param name="CudaDriverLoaded">True when the CUDA driver library (libcuda / nvcuda) could be loaded.</param>
/// <param name="CudaDeviceCount">CUDA devices reported by <c>cuDeviceGetCount</c> after <c>cuInit</c>; 0 when unavailable.</param>
/// <param name="NvrtcLoaded">True when the NVRTC run-time compiler library could be loaded.</param>
/// <param name="OpenClLoaded">True when an OpenCL ICD loader (libOpenCL) could be loaded.</param>
/// <param name="OpenClPlatformCount">OpenCL platforms reported by <c>clGetPlatformIDs</c> (pocl counts); 0 when unavailable.</param>
/// <param name="Notes">Human-readable reasons for what is missing.</param>
public sealed record GpuRuntimeReport(
    bool CudaDriverLoaded,
    int CudaDeviceCount,
    bool NvrtcLoaded,
    bool OpenClLoaded,
    int OpenClPlatformCount,
    IReadOnlyList<string> Notes)
{
    /// <summary>True when at least one CUDA device can be used.</summary>
    public bool CudaAvailable => CudaDriverLoaded && NvrtcLoaded && CudaDeviceCount > 0;

    /// <summary>True when at least one OpenCL platform is installed.</summary>
    public bool OpenClAvailable => OpenClLoaded && OpenClPlatformCount > 0;
}

/// <summary>
/// Finds the vendor GPU runtimes that the HssEe GPU backends bind directly through P/Invoke:
/// the CUDA driver API with NVRTC, and OpenCL (pocl provides a CPU implementation). The
/// backends themselves are the subject of a later release; this probe never throws.
/// </summary>
public static class GpuRuntimes
{
    private const int CudaSuccess = 0;
    private const int ClSuccess = 0;

    /// <summary>Probes the machine for CUDA and OpenCL runtimes.</summary>
    /// <returns>What was found, with notes on what is missing.</returns>
    public static GpuRuntimeReport Probe()
    {
        var notes = new List<string>();
        (bool cuda, int cudaDevices) = ProbeCuda(notes);
        bool nvrtc = TryLoadAny(out nint nvrtcHandle, NvrtcNames());
        if (nvrtc)
        {
            NativeLibrary.Free(nvrtcHandle);
        }
        else
        {
            notes.Add("NVRTC (libnvrtc) not found: CUDA kernels cannot be compiled at run time.");
        }

        (bool openCl, int platforms) = ProbeOpenCl(notes);
        return new GpuRuntimeReport(cuda, cudaDevices, nvrtc, openCl, platforms, notes);
    }

    private static unsafe (bool Loaded, int Devices) ProbeCuda(List<string> notes)
    {
        if (!TryLoadAny(out nint lib, OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"]))
        {
            notes.Add("CUDA driver (libcuda) not found.");
            return (false, 0);
        }

        // The driver stays loaded for the process: unloading a CUDA driver after cuInit is not supported.
        if (!NativeLibrary.TryGetExport(lib, "cuInit", out nint init) || !NativeLibrary.TryGetExport(lib, "cuDeviceGetCount", out nint count))
        {
            notes.Add("CUDA driver lacks cuInit/cuDeviceGetCount.");
            return (true, 0);
        }

        int rc = ((delegate* unmanaged<uint, int>)init)(0);
        if (rc != CudaSuccess)
        {
            notes.Add($"cuInit failed with CUDA error {rc}.");
            return (true, 0);
        }

        int devices = 0;
        rc = ((delegate* unmanaged<int*, int>)count)(&devices);
        if (rc != CudaSuccess)
        {
            notes.Add($"cuDeviceGetCount failed with CUDA error {rc}.");
            return (true, 0);
        }

        return (true, devices);
    }

    private static unsafe (bool Loaded, int Platforms) ProbeOpenCl(List<string> notes)
    {
        if (!TryLoadAny(out nint lib, OperatingSystem.IsWindows() ? ["OpenCL.dll"] : ["libOpenCL.so.1", "libOpenCL.so"]))
        {
            notes.Add("OpenCL ICD loader (libOpenCL) not found; install ocl-icd-libopencl1 and an implementation such as pocl-opencl-icd.");
            return (false, 0);
        }

        if (!NativeLibrary.TryGetExport(lib, "clGetPlatformIDs", out nint getPlatforms))
        {
            notes.Add("libOpenCL lacks clGetPlatformIDs.");
            return (true, 0);
        }

        uint platforms = 0;
        int rc = ((delegate* unmanaged<uint, nint*, uint*, int>)getPlatforms)(0, null, &platforms);
        if (rc != ClSuccess)
        {
            // -1001 (CL_PLATFORM_NOT_FOUND_KHR) means the loader found no installed implementation.
            notes.Add($"clGetPlatformIDs returned {rc}: no OpenCL implementation is installed.");
            return (true, 0);
        }

        return (true, (int)platforms);
    }

    private static string[] NvrtcNames() => OperatingSystem.IsWindows()
        ? ["nvrtc64_120_0.dll", "nvrtc64_112_0.dll"]
        : ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"];

    private static bool TryLoadAny(out nint handle, params string[] names)
    {
        foreach (string name in names)
        {
            if (NativeLibrary.TryLoad(name, out handle))
            {
                return true;
            }
        }

        handle = 0;
        return false;
    }
}
