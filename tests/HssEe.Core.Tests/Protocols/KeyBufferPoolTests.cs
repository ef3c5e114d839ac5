using HssEe.Protocols;

namespace HssEe.Core.Tests.Protocols;

public class KeyBufferPoolTests
{
    [Fact]
    public void Returned_buffers_are_wiped_and_reused_for_similar_sizes()
    {
        const int size = 3 << 20;
        byte[] first = KeyBufferPool.Rent(size);
        first.AsSpan().Fill(0xA5);
        KeyBufferPool.Return(first);
        Assert.True(first.AsSpan().IndexOfAnyExcept((byte)0) < 0, "a returned buffer still holds key bytes");

        // Another test may take it concurrently; whichever buffer comes back must be all zero.
        byte[] second = KeyBufferPool.Rent(size - 1000);
        Assert.True(second.Length >= size - 1000);
        Assert.True(second.AsSpan(size - 1000).IndexOfAnyExcept((byte)0) < 0, "bytes past the requested length must be zero");
        KeyBufferPool.Return(second);
    }

    [Fact]
    public void Small_and_much_smaller_requests_do_not_take_large_buffers()
    {
        byte[] large = KeyBufferPool.Rent(8 << 20);
        KeyBufferPool.Return(large);
        byte[] small = KeyBufferPool.Rent(2 << 20);
        Assert.NotSame(large, small);
        Assert.InRange(small.Length, 2 << 20, 3 << 20); // a pooled buffer at most 1.5 times the request
        KeyBufferPool.Return(small);
        byte[] tiny = KeyBufferPool.Rent(100);
        Assert.Equal(100, tiny.Length);
    }

    [Fact]
    public void The_pool_never_retains_more_than_its_cap()
    {
        Assert.InRange(KeyBufferPool.RetainedBytes, 0, KeyBufferPool.MaxRetainedBytes);
        Assert.True(KeyBufferPool.MaxRetainedBytes <= 4L << 30);
    }

    [Fact]
    public void A_partial_return_wipes_the_stated_range()
    {
        var buffer = new byte[KeyBufferPool.MinimumPooledBytes];
        buffer.AsSpan(100, 1000).Fill(7);
        KeyBufferPool.Return(buffer, 100, 1100);
        Assert.True(buffer.AsSpan().IndexOfAnyExcept((byte)0) < 0);
    }
}
