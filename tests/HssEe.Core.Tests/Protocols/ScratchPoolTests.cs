using HssEe.Protocols;

namespace HssEe.Core.Tests.Protocols;

public class ScratchPoolTests
{
    [Fact]
    public void Large_arrays_are_wiped_on_return_and_come_back_zero()
    {
        const int length = 3 << 17; // 3 MiB of ulongs
        ulong[] first = ScratchPool<ulong>.Rent(length);
        Assert.True(first.Length >= length);
        first.AsSpan().Fill(0xA5A5A5A5A5A5A5A5UL);
        ScratchPool<ulong>.Return(first);
        Assert.True(first.AsSpan().IndexOfAnyExcept(0UL) < 0, "a returned array still holds values");

        // Another test may take it concurrently; whichever array comes back must be all zero and large enough.
        ulong[] second = ScratchPool<ulong>.Rent(length - 100);
        Assert.True(second.Length >= length - 100);
        Assert.True(second.AsSpan().IndexOfAnyExcept(0UL) < 0, "a rented array must be zero");
        ScratchPool<ulong>.Return(second);
    }

    [Fact]
    public void Small_arrays_go_through_the_shared_pool_and_are_zero_when_rented()
    {
        byte[] small = ScratchPool<byte>.Rent(1000);
        Assert.True(small.Length >= 1000);
        Assert.True(small.AsSpan(0, 1000).IndexOfAnyExcept((byte)0) < 0);
        small.AsSpan().Fill(9);
        ScratchPool<byte>.Return(small);
        Assert.True(small.AsSpan().IndexOfAnyExcept((byte)0) < 0, "a returned small array must be wiped too");
    }

    [Fact]
    public void A_much_smaller_request_does_not_take_a_large_array_and_the_cap_holds()
    {
        ulong[] large = ScratchPool<ulong>.Rent(4 << 20);
        ScratchPool<ulong>.Return(large);
        ulong[] smaller = ScratchPool<ulong>.Rent(1 << 20);
        Assert.NotSame(large, smaller);
        Assert.InRange(smaller.Length, 1 << 20, (1 << 20) + (1 << 19));
        ScratchPool<ulong>.Return(smaller);
        Assert.InRange(ScratchPool<ulong>.RetainedBytes, 0, ScratchPool<ulong>.MaxRetainedBytes);
        Assert.True(ScratchPool<ulong>.MaxRetainedBytes <= 1L << 30);
        Assert.Throws<ArgumentOutOfRangeException>(() => ScratchPool<ulong>.Rent(-1));
    }
}
