using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace HssEe.Core.Tests.Infrastructure
{
    /// <summary>
    /// Re-runs a test body in a child process with hardware intrinsics switched off through the
    /// runtime's <c>DOTNET_Enable...=0</c> settings, so that the 256-bit, 128-bit and scalar code
    /// paths are all exercised on one AVX-512 machine (the idea of ImageSharp's FeatureTestRunner).
    /// </summary>
    /// <remarks>
    /// <para>
    /// The test assembly is an executable (Microsoft.NET.Test.Sdk generates an empty
    /// <c>Main</c>). The child is <c>dotnet exec HssEe.Core.Tests.dll</c> with
    /// <c>DOTNET_STARTUP_HOOKS</c> pointing at the same assembly: the runtime calls
    /// <see cref="StartupHook.Initialize"/> before <c>Main</c>, which finds the body by metadata
    /// token, checks that the disabled instruction set really is off, runs the body and exits.
    /// Only the .NET SDK is needed.
    /// </para>
    /// <para>
    /// The body must be a static method or a lambda that captures nothing (its state would not
    /// cross the process boundary). An exception in the child fails the parent test with the
    /// child's output in the message; so does a child that never reports that the body ran.
    /// </para>
    /// </remarks>
    public static class FeatureTestRunner
    {
        /// <summary>Nothing switched off: the widest path of the machine.</summary>
        public const string None = "none";

        /// <summary>AVX-512 off (<c>DOTNET_EnableAVX512F=0</c>, and <c>DOTNET_EnableAVX512=0</c> which .NET 10 reads): the 256-bit paths.</summary>
        public const string Avx512F = "AVX512F";

        /// <summary>AVX2 (and with it AVX-512 and FMA) off: the 128-bit paths.</summary>
        public const string Avx2 = "AVX2";

        /// <summary>All hardware intrinsics off: the scalar paths.</summary>
        public const string HwIntrinsic = "HWIntrinsic";

        /// <summary>AES-NI off (<c>DOTNET_EnableAES=0</c>): the portable (platform AES) path of the PRG.</summary>
        public const string Aes = "AES";

        internal const string MethodVariable = "HSSEE_FEATURE_TEST_METHOD";
        internal const string FeatureVariable = "HSSEE_FEATURE_TEST_FEATURE";
        internal const string OkMarker = "HSSEE-FEATURE-TEST-OK";

        private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(3);

        /// <summary>Every feature setting, for <c>[MemberData]</c>.</summary>
        public static TheoryData<string> AllFeatures => new() { None, Avx512F, Avx2, HwIntrinsic };

        /// <summary>The feature switched off in this process when it is a feature-test child; <see langword="null"/> otherwise.</summary>
        public static string? CurrentFeature => Environment.GetEnvironmentVariable(FeatureVariable);

        /// <summary>
        /// Runs <paramref name="body"/> in a child process with <paramref name="disabledFeature"/>
        /// switched off, and fails if the body fails there.
        /// </summary>
        /// <param name="body">A static method or a non-capturing lambda of the test assembly.</param>
        /// <param name="disabledFeature">One of <see cref="None"/>, <see cref="Avx512F"/>, <see cref="Avx2"/>, <see cref="HwIntrinsic"/>.</param>
        /// <returns>The child's standard output.</returns>
        public static string RunWithFeatures(Action body, string disabledFeature)
        {
            ArgumentNullException.ThrowIfNull(body);
            MethodInfo method = body.Method;
            if (method.Module != typeof(FeatureTestRunner).Module)
            {
                throw new ArgumentException("The body must be a method of the test assembly.", nameof(body));
            }

            if (body.Target is { } target
                && target.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Length != 0)
            {
                throw new ArgumentException("The body captures state, which cannot cross to the child process; use a static method.", nameof(body));
            }

            string assemblyPath = typeof(FeatureTestRunner).Assembly.Location;
            var start = new ProcessStartInfo(DotnetHostPath())
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = Path.GetDirectoryName(assemblyPath)!,
            };
            start.ArgumentList.Add("exec");
            start.ArgumentList.Add(assemblyPath);
            foreach ((string name, string value) in FeatureSettings(disabledFeature))
            {
                start.Environment[name] = value;
            }

            string? hooks = Environment.GetEnvironmentVariable("DOTNET_STARTUP_HOOKS");
            start.Environment["DOTNET_STARTUP_HOOKS"] = string.IsNullOrEmpty(hooks) ? assemblyPath : hooks + Path.PathSeparator + assemblyPath;
            start.Environment[MethodVariable] = method.MetadataToken.ToString(CultureInfo.InvariantCulture);
            start.Environment[FeatureVariable] = disabledFeature;

            using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the child process.");
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(DefaultTimeout))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                Assert.Fail($"Feature test {method.Name} [{disabledFeature} off] timed out after {DefaultTimeout}.\n{stdout.Result}\n{stderr.Result}");
            }

            process.WaitForExit();
            string output = stdout.Result;
            string errors = stderr.Result;
            if (process.ExitCode != 0 || !output.Contains(OkMarker, StringComparison.Ordinal))
            {
                Assert.Fail($"Feature test {method.DeclaringType?.Name}.{method.Name} [{disabledFeature} off] failed in the child process (exit code {process.ExitCode}).\n--- stdout ---\n{output}\n--- stderr ---\n{errors}");
            }

            return output;
        }

        /// <summary>The runtime settings that switch <paramref name="disabledFeature"/> off.</summary>
        /// <param name="disabledFeature">The feature.</param>
        /// <returns>Environment variables for the child.</returns>
        public static IReadOnlyList<(string Name, string Value)> FeatureSettings(string disabledFeature) => disabledFeature switch
        {
            None => [],

            // .NET 8/9 read DOTNET_EnableAVX512F; .NET 10 folded the AVX-512 subsets into DOTNET_EnableAVX512.
            Avx512F => [("DOTNET_EnableAVX512F", "0"), ("DOTNET_EnableAVX512", "0")],
            Avx2 => [("DOTNET_EnableAVX2", "0")],
            HwIntrinsic => [("DOTNET_EnableHWIntrinsic", "0")],
            Aes => [("DOTNET_EnableAES", "0")],
            _ => throw new ArgumentOutOfRangeException(nameof(disabledFeature), disabledFeature, "Unknown feature."),
        };

        /// <summary>Checks, inside the child, that the disabled feature really is off in this process.</summary>
        /// <param name="disabledFeature">The feature.</param>
        internal static void AssertFeatureIsOff(string disabledFeature)
        {
            switch (disabledFeature)
            {
                case None:
                    break;
                case Avx512F:
                    Assert.False(Vector512.IsHardwareAccelerated, "Vector512 is still accelerated with AVX-512 disabled.");
                    Assert.False(System.Runtime.Intrinsics.X86.Avx512F.IsSupported, "Avx512F is still supported with AVX-512 disabled.");
                    break;
                case Avx2:
                    Assert.False(Vector256.IsHardwareAccelerated, "Vector256 is still accelerated with AVX2 disabled.");
                    Assert.False(System.Runtime.Intrinsics.X86.Avx2.IsSupported, "Avx2 is still supported with AVX2 disabled.");
                    Assert.False(Vector512.IsHardwareAccelerated, "Vector512 is still accelerated with AVX2 disabled.");
                    break;
                case Aes:
                    Assert.False(System.Runtime.Intrinsics.X86.Aes.IsSupported, "AES-NI is still supported with AES disabled.");
                    break;
                case HwIntrinsic:
                    Assert.False(Vector128.IsHardwareAccelerated, "Vector128 is still accelerated with hardware intrinsics disabled.");
                    Assert.False(System.Runtime.Intrinsics.X86.X86Base.IsSupported, "X86Base is still supported with hardware intrinsics disabled.");
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(disabledFeature), disabledFeature, "Unknown feature.");
            }
        }

        /// <summary>The child side: runs the body named by the environment and returns the exit code.</summary>
        /// <returns>0 when the body passed.</returns>
        internal static int RunChild()
        {
            string feature = Environment.GetEnvironmentVariable(FeatureVariable) ?? None;
            string tokenText = Environment.GetEnvironmentVariable(MethodVariable) ?? string.Empty;
            try
            {
                AssertFeatureIsOff(feature);
                int token = int.Parse(tokenText, CultureInfo.InvariantCulture);
                var method = (MethodInfo)(typeof(FeatureTestRunner).Module.ResolveMethod(token)
                    ?? throw new InvalidOperationException($"No method with token {tokenText}."));
                object? target = method.IsStatic ? null : RuntimeHelpers.GetUninitializedObject(method.DeclaringType!);
                var body = (Action)method.CreateDelegate(typeof(Action), target);
                var watch = Stopwatch.StartNew();
                body();
                Console.Out.WriteLine($"{OkMarker} {method.Name} [{feature} off] in {watch.ElapsedMilliseconds} ms; Vector512={Vector512.IsHardwareAccelerated} Vector256={Vector256.IsHardwareAccelerated} Vector128={Vector128.IsHardwareAccelerated}");
                Console.Out.Flush();
                return 0;
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"Feature test [{feature} off] failed: {e}");
                Console.Error.Flush();
                return 1;
            }
        }

        /// <summary>The <c>dotnet</c> host that runs this test process.</summary>
        private static string DotnetHostPath()
        {
            string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(host) && File.Exists(host))
            {
                return host;
            }

            string? current = Environment.ProcessPath;
            if (current is not null && Path.GetFileNameWithoutExtension(current).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            {
                return current;
            }

            return "dotnet";
        }
    }
}

#pragma warning disable CA1050 // The runtime looks up startup hooks by the global type name "StartupHook".

/// <summary>
/// The <c>DOTNET_STARTUP_HOOKS</c> entry point of a feature-test child: runs before the
/// (empty, generated) <c>Main</c> of the test assembly and exits the process when done.
/// </summary>
internal static class StartupHook
{
    /// <summary>Called by the runtime before <c>Main</c>.</summary>
    public static void Initialize()
    {
        if (Environment.GetEnvironmentVariable(HssEe.Core.Tests.Infrastructure.FeatureTestRunner.MethodVariable) is { Length: > 0 })
        {
            Environment.Exit(HssEe.Core.Tests.Infrastructure.FeatureTestRunner.RunChild());
        }
    }
}
#pragma warning restore CA1050
