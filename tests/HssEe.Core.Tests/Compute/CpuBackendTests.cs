using HssEe.Compute;

namespace HssEe.Core.Tests.Compute;

public class CpuBackendTests
{
    public static TheoryData<string> Operations => new(BackendConformance.ElementwiseOperations);

    [Fact]
    public void Ring_gemm_is_bit_identical_to_the_naive_loop_on_odd_shapes()
        => BackendConformance.RingGemmMatchesNaive(ComputeBackend.Cpu, new CpuBackend(1), new CpuBackend(3));

    [Fact]
    public void Float_gemm_is_within_the_summation_error_bound_on_odd_shapes()
        => BackendConformance.FloatGemmMatchesNaive(ComputeBackend.Cpu, new CpuBackend(1), new CpuBackend(3));

    [Theory]
    [MemberData(nameof(Operations))]
    public void Elementwise_operation_matches_the_scalar_definition_for_every_length_in_place(string op)
        => BackendConformance.ElementwiseMatchesScalar(ComputeBackend.Cpu, op);

    [Theory]
    [MemberData(nameof(Operations))]
    public void Large_elementwise_operation_split_over_threads_matches_the_scalar_definition(string op)
    {
        int seed = BackendConformance.NewSeed();
        var random = new Random(seed);
        const int length = 400_003; // several 2^17-element chunks, not a multiple of 8
        ulong[] x = BackendConformance.RandomRing(random, length);
        ulong[] y = BackendConformance.RandomRing(random, length);
        ulong scalar = (ulong)random.NextInt64();
        var expected = new ulong[length];
        for (int i = 0; i < length; i++)
        {
            expected[i] = BackendConformance.Reference(op, x[i], y[i], scalar);
        }

        foreach (int threads in new[] { 1, 2, 3 })
        {
            var backend = new CpuBackend(threads);
            var destination = new ulong[length];
            BackendConformance.Apply(backend, op, x, y, scalar, destination);
            Assert.True(expected.AsSpan().SequenceEqual(destination), $"{op}, {threads} threads, out of place (seed {seed})");
            ulong[] inPlace = (ulong[])x.Clone();
            BackendConformance.Apply(backend, op, inPlace, y, scalar, inPlace);
            Assert.True(expected.AsSpan().SequenceEqual(inPlace), $"{op}, {threads} threads, in place (seed {seed})");
        }
    }

    [Fact]
    public void Results_do_not_depend_on_the_thread_count()
    {
        int seed = BackendConformance.NewSeed();
        var random = new Random(seed);
        const int m = 131, k = 1031, n = 1999;
        ulong[] a = BackendConformance.RandomRing(random, m * k);
        ulong[] w = BackendConformance.RandomRing(random, n * k);
        float[] af = BackendConformance.RandomFloats(random, m * k);
        float[] wf = BackendConformance.RandomFloats(random, n * k);
        var ring1 = new ulong[m * n];
        var float1 = new float[m * n];
        new CpuBackend(1).RingGemm(a, w, ring1, m, k, n);
        new CpuBackend(1).FloatGemm(af, wf, float1, m, k, n);
        foreach (int threads in new[] { 2, 3, 8 })
        {
            var backend = new CpuBackend(threads);
            var ring = new ulong[m * n];
            var floats = new float[m * n];
            backend.RingGemm(a, w, ring, m, k, n);
            backend.FloatGemm(af, wf, floats, m, k, n);
            Assert.True(ring1.AsSpan().SequenceEqual(ring), $"ring, {threads} threads (seed {seed})");
            Assert.True(float1.AsSpan().SequenceEqual(floats), $"float, {threads} threads (seed {seed})");
        }

        // Spot-check the ring result against the definition.
        for (int t = 0; t < 64; t++)
        {
            int i = random.Next(m);
            int j = random.Next(n);
            ulong sum = 0;
            for (int p = 0; p < k; p++)
            {
                sum = unchecked(sum + (a[(i * k) + p] * w[(j * k) + p]));
            }

            Assert.True(sum == ring1[(i * n) + j], $"[{i}, {j}] (seed {seed})");
        }
    }

    [Fact]
    public void Gemm_with_empty_depth_writes_zeros()
    {
        var c = new ulong[] { 1, 2, 3, 4, 5, 6 };
        ComputeBackend.Cpu.RingGemm([], [], c, 2, 0, 3);
        Assert.All(c, v => Assert.Equal(0UL, v));
        var cf = new float[] { 1, 2, 3, 4, 5, 6 };
        ComputeBackend.Cpu.FloatGemm([], [], cf, 3, 0, 2);
        Assert.All(cf, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Name_states_the_instruction_set_and_thread_count()
    {
        Assert.Matches(@"^cpu\((avx512|avx2|vector512|vector256|scalar), 1 thread\)$", new CpuBackend(1).Name);
        Assert.Matches(@"^cpu\((avx512|avx2|vector512|vector256|scalar), 5 threads\)$", new CpuBackend(5).Name);
        Assert.Equal($"cpu({CpuBackend.InstructionSet}, {Environment.ProcessorCount} {(Environment.ProcessorCount == 1 ? "thread" : "threads")})", ComputeBackend.Cpu.Name);
        Assert.Equal(ComputeBackend.Cpu.Name, ComputeBackend.Cpu.ToString());
        Assert.Same(ComputeBackend.Cpu, ComputeBackend.Cpu);
        Assert.Equal(Environment.ProcessorCount, new CpuBackend().MaxDegreeOfParallelism);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-2)]
    [InlineData(int.MinValue)]
    public void Constructor_rejects_a_bad_thread_count(int threads)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new CpuBackend(threads));
        Assert.Equal("maxDegreeOfParallelism", e.ParamName);
    }

    [Fact]
    public void Gemm_rejects_negative_dimensions()
    {
        var backend = ComputeBackend.Cpu;
        Assert.Equal("m", Assert.Throws<ArgumentOutOfRangeException>(() => backend.RingGemm([], [], [], -1, 0, 0)).ParamName);
        Assert.Equal("k", Assert.Throws<ArgumentOutOfRangeException>(() => backend.RingGemm([], [], [], 0, -1, 0)).ParamName);
        Assert.Equal("n", Assert.Throws<ArgumentOutOfRangeException>(() => backend.FloatGemm([], [], [], 0, 0, -1)).ParamName);
    }

    [Theory]
    [InlineData(5, 6, 6, "a")]
    [InlineData(7, 6, 6, "a")]
    [InlineData(6, 5, 6, "w")]
    [InlineData(6, 6, 5, "c")]
    [InlineData(6, 6, 7, "c")]
    public void Gemm_rejects_wrong_lengths(int aLength, int wLength, int cLength, string paramName)
    {
        // m = 2, k = 3, n = 2 needs a: 6, w: 6, c: 4 (c lengths shifted by -2 below).
        cLength -= 2;
        var backend = ComputeBackend.Cpu;
        var ring = Assert.Throws<ArgumentException>(() => backend.RingGemm(new ulong[aLength], new ulong[wLength], new ulong[cLength], 2, 3, 2));
        Assert.Equal(paramName, ring.ParamName);
        var single = Assert.Throws<ArgumentException>(() => backend.FloatGemm(new float[aLength], new float[wLength], new float[cLength], 2, 3, 2));
        Assert.Equal(paramName, single.ParamName);
    }

    [Fact]
    public void Gemm_rejects_a_destination_overlapping_an_input()
    {
        var backend = ComputeBackend.Cpu;
        var buffer = new ulong[16];
        var w = new ulong[4];
        Assert.Equal("c", Assert.Throws<ArgumentException>(() => backend.RingGemm(buffer.AsSpan(0, 4), w, buffer.AsSpan(3, 4), 2, 2, 2)).ParamName);
        Assert.Equal("c", Assert.Throws<ArgumentException>(() => backend.RingGemm(buffer.AsSpan(0, 4), buffer.AsSpan(8, 4), buffer.AsSpan(8, 4), 2, 2, 2)).ParamName);
        var floats = new float[16];
        Assert.Equal("c", Assert.Throws<ArgumentException>(() => backend.FloatGemm(floats.AsSpan(0, 4), floats.AsSpan(4, 4), floats.AsSpan(2, 4), 2, 2, 2)).ParamName);

        // Adjacent, non-overlapping slices of one buffer are fine.
        backend.RingGemm(buffer.AsSpan(0, 4), buffer.AsSpan(4, 4), buffer.AsSpan(8, 4), 2, 2, 2);
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public void Elementwise_rejects_wrong_lengths(string op)
    {
        var backend = ComputeBackend.Cpu;
        if (op is "Add" or "Subtract" or "Multiply")
        {
            var e = Assert.Throws<ArgumentException>(() => BackendConformance.Apply(backend, op, new ulong[4], new ulong[5], 3, new ulong[4]));
            Assert.Equal("y", e.ParamName);
        }

        var d = Assert.Throws<ArgumentException>(() => BackendConformance.Apply(backend, op, new ulong[4], new ulong[4], 3, new ulong[3]));
        Assert.Equal("destination", d.ParamName);
        var longer = Assert.Throws<ArgumentException>(() => BackendConformance.Apply(backend, op, new ulong[4], new ulong[4], 3, new ulong[5]));
        Assert.Equal("destination", longer.ParamName);
    }

    [Fact]
    public void Elementwise_rejects_a_partially_overlapping_destination()
    {
        var backend = ComputeBackend.Cpu;
        var buffer = new ulong[32];
        var other = new ulong[8];
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => backend.RingAdd(buffer.AsSpan(0, 8), other, buffer.AsSpan(1, 8))).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => backend.RingSubtract(other, buffer.AsSpan(4, 8), buffer.AsSpan(0, 8))).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => backend.RingMultiply(buffer.AsSpan(0, 8), buffer.AsSpan(0, 8), buffer.AsSpan(7, 8))).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => backend.RingMultiplyScalar(buffer.AsSpan(2, 8), 5, buffer.AsSpan(0, 8))).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => backend.RingNegate(buffer.AsSpan(0, 8), buffer.AsSpan(3, 8))).ParamName);

        // Exactly in place is allowed.
        buffer.AsSpan().Fill(3);
        backend.RingMultiplyScalar(buffer.AsSpan(0, 8), 5, buffer.AsSpan(0, 8));
        Assert.Equal(15UL, buffer[7]);
        Assert.Equal(3UL, buffer[8]);
    }
}
