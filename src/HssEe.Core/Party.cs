namespace HssEe;

/// <summary>One of the two computing servers of a two-party (HSS) run.</summary>
public enum Party
{
    /// <summary>Server A (party 0). By convention the party that adds public constants.</summary>
    A = 0,

    /// <summary>Server B (party 1).</summary>
    B = 1,
}

/// <summary>Helpers for <see cref="Party"/>.</summary>
public static class PartyExtensions
{
    /// <summary>The other server.</summary>
    /// <param name="party">A party.</param>
    /// <returns><see cref="Party.B"/> for <see cref="Party.A"/> and vice versa.</returns>
    public static Party Peer(this Party party) => party switch
    {
        Party.A => Party.B,
        Party.B => Party.A,
        _ => throw new ArgumentOutOfRangeException(nameof(party), party, "Party must be A or B."),
    };

    internal static void Validate(this Party party, string paramName)
    {
        if (party is not (Party.A or Party.B))
        {
            throw new ArgumentOutOfRangeException(paramName, party, "Party must be A or B.");
        }
    }
}
