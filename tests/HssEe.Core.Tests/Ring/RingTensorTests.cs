using System.Numerics.Tensors;
using HssEe.Ring;

namespace HssEe.Core.Tests.Ring;

public class RingTensorTests
{
    [Fact]
    public void Tensor_round_trip_keeps_shape_and_values()
    {
        var t = RingTensor.FromSpan([1, 2, 3, 4, 5, ulong.MaxValue], new TensorShape(2, 3));
        Tensor<ulong> x = t.ToTensor();
        Assert.Equal([2, 3], x.Lengths.ToArray());
        RingTensor back = RingTensor.FromTensor(x.AsReadOnlyTensorSpan());
        Assert.Equal(t.Shape, back.Shape);
        Assert.Equal(t.Span.ToArray(), back.Span.ToArray());
    }

    [Fact]
    public void Shape_mismatches_name_both_shapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => new RingTensor(new ulong[5], new TensorShape(2, 3)));
        Assert.Contains("[2, 3]", ex.Message, StringComparison.Ordinal);
        var r = Assert.Throws<ArgumentException>(() => new RingTensor(new TensorShape(2, 3)).Reshape(new TensorShape(4, 2)));
        Assert.Contains("[2, 3]", r.Message, StringComparison.Ordinal);
        Assert.Contains("[4, 2]", r.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new TensorShape(2, -1));
    }

    [Fact]
    public void ToString_shows_only_the_shape_and_Clear_wipes()
    {
        var t = RingTensor.FromSpan([0xDEADBEEF, 42], new TensorShape(2));
        Assert.Equal("RingTensor[2]", t.ToString());
        t.Clear();
        Assert.All(t.Span.ToArray(), v => Assert.Equal(0UL, v));
    }

    [Fact]
    public void Reshape_shares_storage_and_shape_indexing_counts_from_the_end()
    {
        var t = new RingTensor(new TensorShape(2, 3, 4));
        RingTensor v = t.Reshape(new TensorShape(6, 4));
        v.Span[5] = 7;
        Assert.Equal(7UL, t.Span[5]);
        Assert.Equal(4, t.Shape[-1]);
        Assert.Equal(2, t.Shape[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Shape[3]);
    }
}
