using HssEe.Ring;

namespace HssEe.Models.Engine;

/// <summary>
/// The operations a model definition is written against. One definition (LLaMA, ResNet, T5) runs in
/// every mode by being handed a different engine: <see cref="PlainEngine"/> (float32, Plain and EE
/// modes) or <see cref="HssEngine"/> (shares; the same engine code first records the plan, then
/// executes it, so the order of FSS steps always matches the dealer's).
/// </summary>
/// <remarks>
/// Layout conventions: activations are row-major with the feature axis last (<c>[rows, features]</c>;
/// images channels-last <c>[H*W, C]</c>). Local operations (<see cref="Add"/>, <see cref="Gather"/>, ...)
/// cost nothing online; the <c>...Async</c> operations may talk to the other party.
/// </remarks>
/// <typeparam name="T">The engine's tensor type.</typeparam>
internal abstract class Engine<T>
    where T : class
{
    /// <summary>The shape of a tensor.</summary>
    public abstract TensorShape ShapeOf(T x);

    /// <summary>Same elements, new shape (element counts must agree).</summary>
    public abstract T Reshape(T x, TensorShape shape);

    /// <summary><c>y = x W^T + b</c> over the last axis; <c>x [.., in]</c>, <c>W [out, in]</c>.</summary>
    public abstract ValueTask<T> LinearAsync(T x, LinearLayer layer);

    /// <summary>Element-wise sum of two tensors of the same shape.</summary>
    public abstract T Add(T a, T b);

    /// <summary>Adds public constants (same element count as <paramref name="x"/>).</summary>
    public abstract T AddPublic(T x, float[] constants);

    /// <summary>Multiplies element-wise by public constants (same element count).</summary>
    public abstract T MultiplyPublic(T x, float[] constants);

    /// <summary>Multiplies by a public scalar.</summary>
    public abstract T Scale(T x, double factor);

    /// <summary>
    /// Local re-indexing: <c>y[i] = index[i] &gt;= 0 ? x[index[i]] : pad</c> (transposes, slices, head
    /// splits, im2col, pooling windows).
    /// </summary>
    public abstract T Gather(T x, int[] index, TensorShape shape, float pad = 0);

    /// <summary>Concatenates flat (along the first axis): <c>[a; b]</c> with the given result shape.</summary>
    public abstract T Concat(T a, T b, TensorShape shape);

    /// <summary>Sums over the last axis: <c>[.., k] -&gt; [..]</c> (result shape given).</summary>
    public abstract T SumLastAxis(T x, TensorShape shape);

    /// <summary>Element-wise ReLU (exact).</summary>
    public abstract ValueTask<T> ReluAsync(T x, string label);

    /// <summary>Element-wise SiLU.</summary>
    public abstract ValueTask<T> SiluAsync(T x, string label);

    /// <summary>Element-wise GeLU: erf form, or the tanh approximation (Hugging Face <c>gelu_new</c>).</summary>
    public abstract ValueTask<T> GeluAsync(T x, bool tanhApproximation, string label);

    /// <summary>Element-wise product of two tensors (shares in HSS-EE).</summary>
    public abstract ValueTask<T> MultiplyAsync(T a, T b, string label);

    /// <summary>Batched matrix product <c>[B, m, k] x [B, k, n] -&gt; [B, m, n]</c>.</summary>
    public abstract ValueTask<T> BatchMatMulAsync(T a, T b, string label);

    /// <summary>Softmax along the last axis of <c>[.., q, k]</c>; causal masks key j for query i when j &gt; i + k - q.</summary>
    public abstract ValueTask<T> SoftmaxAsync(T x, bool causal, string label);

    /// <summary>RMS normalisation over the last axis without gain (gains are folded into the next linear layer).</summary>
    public abstract ValueTask<T> RmsNormAsync(T x, double epsilon, string label);

    /// <summary>Brings a value to the engine's working scale (a no-op in float; one truncation in HSS-EE when the value carries extra fractional bits).</summary>
    public abstract ValueTask<T> RescaleAsync(T x, string label);

    /// <summary>Maximum over the last axis: <c>[.., k] -&gt; [..]</c> (result shape given).</summary>
    public abstract ValueTask<T> MaxLastAxisAsync(T x, TensorShape shape, string label);
}
