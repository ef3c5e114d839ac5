using HssEe.Models;

namespace HssEe.Models.Tests;

public class ExecutionModeTests
{
    [Fact]
    public void The_three_modes_are_distinct_and_stable()
    {
        // The numeric values are part of serialized plans later on: they must not change.
        Assert.Equal(0, (int)ExecutionMode.Plain);
        Assert.Equal(1, (int)ExecutionMode.Ee);
        Assert.Equal(2, (int)ExecutionMode.HssEe);
        Assert.Equal(3, Enum.GetValues<ExecutionMode>().Distinct().Count());
    }
}
