namespace HssEe.Fss;

/// <summary>The function family of an FSS key collection (stored in the serialised header).</summary>
public enum FssKeyKind : byte
{
    /// <summary>Distributed point function: f(x) = beta if x == alpha, else 0.</summary>
    Dpf = 1,

    /// <summary>Distributed comparison function: f(x) = beta if x &lt; alpha, else 0.</summary>
    Dcf = 2,
}
