namespace HssEe.Models.ResNet;

/// <summary>
/// The architecture of a torchvision ResNet (v1.5: in a bottleneck block the stride sits on the 3x3
/// convolution). ResNet-18 and -34 use basic blocks (<c>[2, 2, 2, 2]</c> and <c>[3, 4, 6, 3]</c>),
/// ResNet-50 bottleneck blocks <c>[3, 4, 6, 3]</c> with expansion 4.
/// </summary>
public sealed record ResNetConfig
{
    /// <summary>The depth: 18, 34 or 50.</summary>
    public required int Depth { get; init; }

    /// <summary>Number of classes of the classifier (<c>fc</c>); 1000 for ImageNet.</summary>
    public int NumClasses { get; init; } = 1000;

    /// <summary>
    /// Base width: the channels of the stem and of <c>layer1</c> (64 in torchvision). Stages <c>layer1</c> to
    /// <c>layer4</c> have <c>Width, 2 Width, 4 Width, 8 Width</c> planes. Narrow widths make small test models;
    /// the tensor names stay torchvision's.
    /// </summary>
    public int Width { get; init; } = 64;

    /// <summary>Blocks per stage (<c>layer1</c> .. <c>layer4</c>).</summary>
    public IReadOnlyList<int> BlocksPerStage => Depth switch
    {
        18 => [2, 2, 2, 2],
        34 or 50 => [3, 4, 6, 3],
        _ => throw new InvalidOperationException($"ResNet depth {Depth} is not supported (18, 34 or 50)."),
    };

    /// <summary>True for bottleneck blocks (ResNet-50), false for basic blocks (ResNet-18/34).</summary>
    public bool UsesBottleneck => Depth == 50;

    /// <summary>Channel expansion of a block's output over its planes: 4 for bottleneck blocks, 1 otherwise.</summary>
    public int Expansion => UsesBottleneck ? 4 : 1;

    /// <summary>Channels entering the classifier: <c>8 * Width * Expansion</c> (512 for ResNet-18/34, 2048 for ResNet-50).</summary>
    public int FeatureCount => 8 * Width * Expansion;

    /// <summary>torchvision <c>resnet18</c>.</summary>
    /// <param name="numClasses">Classes (default 1000).</param>
    /// <returns>The configuration.</returns>
    public static ResNetConfig ResNet18(int numClasses = 1000) => new() { Depth = 18, NumClasses = numClasses };

    /// <summary>torchvision <c>resnet34</c>.</summary>
    /// <param name="numClasses">Classes (default 1000).</param>
    /// <returns>The configuration.</returns>
    public static ResNetConfig ResNet34(int numClasses = 1000) => new() { Depth = 34, NumClasses = numClasses };

    /// <summary>torchvision <c>resnet50</c>.</summary>
    /// <param name="numClasses">Classes (default 1000).</param>
    /// <returns>The configuration.</returns>
    public static ResNetConfig ResNet50(int numClasses = 1000) => new() { Depth = 50, NumClasses = numClasses };

    /// <summary>Checks the configuration.</summary>
    /// <exception cref="ArgumentException">The depth is not 18, 34 or 50, or the classes or width are not positive.</exception>
    public void Validate()
    {
        if (Depth is not (18 or 34 or 50))
        {
            throw new ArgumentException($"ResNet depth {Depth} is not supported (18, 34 or 50).");
        }

        if (NumClasses < 1)
        {
            throw new ArgumentException($"ResNet NumClasses must be at least 1, got {NumClasses}.");
        }

        if (Width < 1 || Width > 1 << 16)
        {
            throw new ArgumentException($"ResNet Width must be in [1, 65536], got {Width}.");
        }
    }
}
