using HssEe.Ee;

namespace HssEe.Models.Engine;

/// <summary>The argument checks shared by the Plain / EE / HSS-EE factories of the sessions and runners.</summary>
internal static class ModeGuard
{
    /// <summary>Plain mode runs a model that is not encrypted.</summary>
    public static void Plain(object? model, bool isEncrypted, string paramName)
    {
        ArgumentNullException.ThrowIfNull(model, paramName);
        if (isEncrypted)
        {
            throw new ArgumentException("Plain mode runs the original (unencrypted) model.", paramName);
        }
    }

    /// <summary>EE mode runs the owner's encrypted model with the client's key.</summary>
    public static void Ee(object? encryptedModel, bool isEncrypted, EeKey? key, string encryptMethod, string paramName)
    {
        ArgumentNullException.ThrowIfNull(encryptedModel, paramName);
        ArgumentNullException.ThrowIfNull(key);
        if (!isEncrypted)
        {
            throw new ArgumentException($"EE mode needs the encrypted model ({encryptMethod}).", paramName);
        }
    }

    /// <summary>HSS-EE mode: as EE, with a fixed-point scale in [<paramref name="minBits"/>, 16].</summary>
    public static void HssEe(object? encryptedModel, bool isEncrypted, EeKey? key, string encryptMethod, int fractionalBits, int minBits, string paramName)
    {
        ArgumentNullException.ThrowIfNull(encryptedModel, paramName);
        ArgumentNullException.ThrowIfNull(key);
        if (!isEncrypted)
        {
            throw new ArgumentException($"HSS-EE mode needs the encrypted model ({encryptMethod}).", paramName);
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(fractionalBits, minBits);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(fractionalBits, 16);
    }
}
