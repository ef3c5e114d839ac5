using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace HssEe.Benchmarks;

/// <summary>
/// The shared benchmark configuration: memory diagnoser, in-process toolchain (BenchmarkDotNet
/// 0.14 has no net10.0 toolchain, and in-process runs need none), and one job: the short job
/// by default, the standard job with <c>--standard</c>, a dry run with <c>--dry</c>
/// (see <see cref="Program"/>).
/// </summary>
public class Config : ManualConfig
{
    /// <summary>Creates the configuration with the job chosen on the command line.</summary>
    public Config()
        : this(SelectedJob)
    {
    }

    /// <summary>Creates the configuration with one given job.</summary>
    /// <param name="job">The job.</param>
    protected Config(Job job)
    {
        AddJob(job);
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.Min);
    }

    /// <summary>Which job <see cref="Config()"/> uses: <c>short</c>, <c>standard</c> or <c>dry</c>.</summary>
    public static string JobKind { get; set; } = "short";

    /// <summary>Short job: 1 launch, 3 warm-up and 5 measured iterations, in process.</summary>
    public static Job ShortJob => Job.ShortRun
        .WithIterationCount(5)
        .WithToolchain(InProcessEmitToolchain.Instance)
        .WithId("Short");

    /// <summary>Standard job: BenchmarkDotNet's defaults (adaptive iteration count), in process.</summary>
    public static Job StandardJob => Job.Default
        .WithToolchain(InProcessEmitToolchain.Instance)
        .WithId("Standard");

    /// <summary>Dry job: one measured invocation, to check that the benchmarks run.</summary>
    public static Job DryJob => Job.Dry
        .WithToolchain(InProcessEmitToolchain.Instance)
        .WithId("Dry");

    private static Job SelectedJob => JobKind switch
    {
        "standard" => StandardJob,
        "dry" => DryJob,
        _ => ShortJob,
    };

    /// <summary>The short job whatever the command line says.</summary>
    public class Short : Config
    {
        /// <summary>Creates it.</summary>
        public Short()
            : base(ShortJob)
        {
        }
    }

    /// <summary>The standard job whatever the command line says.</summary>
    public class Standard : Config
    {
        /// <summary>Creates it.</summary>
        public Standard()
            : base(StandardJob)
        {
        }
    }
}

/// <summary>
/// Adds a <c>GFLOP/s</c> column to a benchmark class that has a public static
/// <c>double FlopsPerOperation(BenchmarkCase)</c> method.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class GflopsColumnAttribute : ColumnConfigBaseAttribute
{
    /// <summary>Creates the attribute.</summary>
    public GflopsColumnAttribute()
        : base(new GflopsColumn())
    {
    }
}

/// <summary>Floating-point (or ring) operations per second, from the mean time of one operation.</summary>
public sealed class GflopsColumn : IColumn
{
    /// <inheritdoc />
    public string Id => nameof(GflopsColumn);

    /// <inheritdoc />
    public string ColumnName => "GFLOP/s";

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => 0;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => "Operations per second (a multiply-add counts 2) over the mean time, in 10^9";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        MethodInfo? counter = benchmarkCase.Descriptor.Type.GetMethod("FlopsPerOperation", BindingFlags.Public | BindingFlags.Static, [typeof(BenchmarkCase)]);
        double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (counter is null || meanNs is not > 0)
        {
            return "-";
        }

        double flops = (double)counter.Invoke(null, [benchmarkCase])!;
        return (flops / meanNs.Value).ToString("F1", CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    /// <inheritdoc />
    public override string ToString() => ColumnName;
}
