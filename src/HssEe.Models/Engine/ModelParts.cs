using HssEe.Ee;
using HssEe.Models.IO;

namespace HssEe.Models.Engine;

/// <summary>Loading and key checks shared by the model definitions.</summary>
internal static class ModelWeights
{
    /// <summary>Reads a float tensor after checking its shape (the error names the tensor and both shapes).</summary>
    public static float[] Read(IWeightSource weights, string name, params int[] shape)
    {
        IReadOnlyList<int> actual = weights.GetShape(name);
        if (!actual.SequenceEqual(shape))
        {
            throw new FormatException($"Tensor '{name}' has shape [{string.Join(", ", actual)}], expected [{string.Join(", ", shape)}].");
        }

        return weights.ReadSingle(name);
    }

    /// <summary>Throws unless <paramref name="key"/> has every boundary of <paramref name="expected"/>, exactly.</summary>
    public static void CheckKey(EeKey key, EeKeySpec expected, string model)
    {
        foreach (EeBoundary b in expected)
        {
            if (!key.Spec.TryGetBoundary(b.Name, out EeBoundary? actual) || !actual.Equals(b))
            {
                throw new ArgumentException($"The EE key does not fit this {model}: boundary '{b.Name}' should be {b}, the key has {(actual is null ? "none" : actual.ToString())}.", nameof(key));
            }
        }
    }
}

/// <summary>
/// Gather index maps between the projection layout <c>[positions, heads * headDim]</c> and the per-head
/// layouts attention multiplies. With grouped-query attention, query head <c>h</c> reads key/value head
/// <c>h / (heads / kvHeads)</c> (Hugging Face <c>repeat_kv</c>).
/// </summary>
internal static class HeadLayout
{
    /// <summary><c>[n, h * hd] -&gt; [h, n, hd]</c>.</summary>
    public static int[] Split(int n, int h, int hd) => ByHead(n, h, h, hd);

    /// <summary><c>[total, kvh * hd] -&gt; [h, total, hd]</c> (values, repeated per query group).</summary>
    public static int[] ByHead(int total, int h, int kvh, int hd)
    {
        int g = h / kvh;
        var idx = new int[h * total * hd];
        for (int hh = 0; hh < h; hh++)
        {
            int kvHead = hh / g;
            for (int t = 0; t < total; t++)
            {
                for (int j = 0; j < hd; j++)
                {
                    idx[(((hh * total) + t) * hd) + j] = (t * kvh * hd) + (kvHead * hd) + j;
                }
            }
        }

        return idx;
    }

    /// <summary><c>[total, kvh * hd] -&gt; [h, hd, total]</c> (keys, transposed, repeated per query group).</summary>
    public static int[] Transposed(int total, int h, int kvh, int hd)
    {
        int g = h / kvh;
        var idx = new int[h * hd * total];
        for (int hh = 0; hh < h; hh++)
        {
            int kvHead = hh / g;
            for (int j = 0; j < hd; j++)
            {
                for (int t = 0; t < total; t++)
                {
                    idx[(((hh * hd) + j) * total) + t] = (t * kvh * hd) + (kvHead * hd) + j;
                }
            }
        }

        return idx;
    }

    /// <summary><c>[h, n, hd] -&gt; [n, h * hd]</c>.</summary>
    public static int[] Merge(int n, int h, int hd)
    {
        var idx = new int[n * h * hd];
        for (int t = 0; t < n; t++)
        {
            for (int hh = 0; hh < h; hh++)
            {
                for (int j = 0; j < hd; j++)
                {
                    idx[(t * h * hd) + (hh * hd) + j] = (((hh * n) + t) * hd) + j;
                }
            }
        }

        return idx;
    }
}
