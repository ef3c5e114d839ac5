using HssEe.Compute;
using HssEe.Core.Tests.Infrastructure;

namespace HssEe.Core.Tests.Compute;

/// <summary>
/// The CPU backend conformance suite re-run with AVX-512, AVX2 or all hardware intrinsics
/// switched off, so that the 512-bit, 256-bit, 128-bit and scalar paths are all tested on
/// one machine.
/// </summary>
public class CpuBackendFeatureTests
{
    public static TheoryData<string> Features => FeatureTestRunner.AllFeatures;

    [Theory]
    [MemberData(nameof(Features))]
    public void Ring_gemm_conforms_with_features_disabled(string disabledFeature)
        => FeatureTestRunner.RunWithFeatures(RingGemmBody, disabledFeature);

    [Theory]
    [MemberData(nameof(Features))]
    public void Float_gemm_conforms_with_features_disabled(string disabledFeature)
        => FeatureTestRunner.RunWithFeatures(FloatGemmBody, disabledFeature);

    [Theory]
    [MemberData(nameof(Features))]
    public void Elementwise_ops_conform_with_features_disabled(string disabledFeature)
        => FeatureTestRunner.RunWithFeatures(ElementwiseBody, disabledFeature);

    private static void RingGemmBody()
    {
        AssertKernelPathMatchesFeature();
        BackendConformance.RingGemmMatchesNaive(new CpuBackend(1), new CpuBackend(2));
    }

    private static void FloatGemmBody()
    {
        AssertKernelPathMatchesFeature();
        BackendConformance.FloatGemmMatchesNaive(new CpuBackend(1), new CpuBackend(2));
    }

    private static void ElementwiseBody()
    {
        AssertKernelPathMatchesFeature();
        BackendConformance.ElementwiseMatchesScalar(new CpuBackend(1));
    }

    /// <summary>In the child: the GEMM kernels must not run a path that was switched off.</summary>
    private static void AssertKernelPathMatchesFeature()
    {
        string isa = CpuBackend.InstructionSet;
        switch (FeatureTestRunner.CurrentFeature)
        {
            case FeatureTestRunner.Avx512F:
                Assert.NotEqual("avx512", isa);
                break;
            case FeatureTestRunner.Avx2:
            case FeatureTestRunner.HwIntrinsic:
                Assert.Equal("scalar", isa);
                break;
        }
    }
}
