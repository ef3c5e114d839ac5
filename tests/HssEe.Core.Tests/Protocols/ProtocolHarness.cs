using HssEe.Protocols;
using HssEe.Ring;
using HssEe.Runtime;
using HssEe.Sharing;

namespace HssEe.Core.Tests.Protocols;

/// <summary>Deals a plan and runs both parties in one process.</summary>
internal static class ProtocolHarness
{
    public static (MemoryStream A, MemoryStream B, DealerReport Report) Deal(Plan plan)
    {
        var a = new MemoryStream();
        var b = new MemoryStream();
        DealerReport report = Dealer.Generate(plan, a, b);
        a.Position = 0;
        b.Position = 0;
        return (a, b, report);
    }

    public static async Task<(TwoPartyResult<T, T> Run, IReadOnlyList<StepCost> CostsA)> RunAsync<T>(Plan plan, Func<PartySession, CancellationToken, Task<T>> body)
    {
        (MemoryStream ka, MemoryStream kb, _) = Deal(plan);
        IReadOnlyList<StepCost> costsA = [];
        var run = await TwoPartySimulation.RunAsync(async (channel, ct) =>
        {
            using var session = new PartySession(plan, channel.Party, channel.Party == Party.A ? ka : kb, channel);
            T result = await body(session, ct);
            session.Complete();
            if (channel.Party == Party.A)
            {
                costsA = session.Costs;
            }

            return result;
        });
        return (run, costsA);
    }

    /// <summary>Splits and hands each party its share by party (a tiny stand-in for the client).</summary>
    public static Func<Party, Share> Shared(float[] values, TensorShape shape, FixedPointFormat format)
    {
        (Share a, Share b) = SecretSharing.Split(values, shape, format);
        return p => p == Party.A ? a : b;
    }
}
