namespace HssEe.Models;

/// <summary>The three ways one model definition can be executed.</summary>
public enum ExecutionMode
{
    /// <summary>One party, float32, on the original weights: the reference. The server sees everything.</summary>
    Plain = 0,

    /// <summary>
    /// One party, float32, on weights rewritten with an equivariant-encryption key: the server sees
    /// EE-transformed activations. Offers no protection against a server that knows the original weights.
    /// </summary>
    Ee = 1,

    /// <summary>
    /// Two non-colluding servers on additive shares over Z_2^64 of the EE-transformed input, with
    /// FSS keys from the client for non-linear layers. Each server alone sees uniformly random shares.
    /// </summary>
    HssEe = 2,
}
