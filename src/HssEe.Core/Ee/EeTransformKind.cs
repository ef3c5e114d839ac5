namespace HssEe.Ee;

/// <summary>
/// The kind of secret transform used at one feature-space boundary of a model. Which kind may be
/// used where is decided by the operators the boundary passes through (DESIGN.md section 4):
/// element-wise non-linearities need permutations (ReLU also tolerates positive scalings), norms
/// and attention tolerate rotations, RoPE tolerates per-pair rotations.
/// </summary>
/// <remarks>The numeric values are part of the serialised key format and never change.</remarks>
public enum EeTransformKind
{
    /// <summary>A uniform permutation of the features (unbiased Fisher-Yates). Commutes with every element-wise operator.</summary>
    Permutation = 1,

    /// <summary>A diagonal scaling with positive entries drawn log-uniformly in [0.5, 2). Commutes with ReLU (positively homogeneous).</summary>
    PositiveScaling = 2,

    /// <summary>A permutation followed by a positive diagonal scaling (a positive monomial matrix). Commutes with ReLU; used on conv channels with batch norm folded.</summary>
    ScaledPermutation = 3,

    /// <summary>A Haar-random orthogonal matrix. Commutes with RMSNorm (gain folded) and preserves dot products (attention scores).</summary>
    Orthogonal = 4,

    /// <summary>A Haar-random orthogonal matrix among those that fix the all-ones vector. Commutes with LayerNorm (gain and bias folded).</summary>
    OrthogonalFixingOnes = 5,

    /// <summary>
    /// Independent uniform 2-D rotations of the pairs <c>(2i, 2i+1)</c> of every head, and a uniform
    /// permutation of whole heads. Commutes with interleaved RoPE and preserves per-head q·k scores.
    /// </summary>
    PairRotations = 6,

    /// <summary>
    /// As <see cref="PairRotations"/>, with the pairs <c>(i, i + headDim/2)</c> of the "rotate half"
    /// RoPE convention (Hugging Face LLaMA).
    /// </summary>
    PairRotationsHalfSplit = 7,
}
