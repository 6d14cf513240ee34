using System.Text;
using Yarp.ReverseProxy.Model;

namespace OnnxLM.Gateway.Tests;

/// <summary>The route key and rendezvous order, against properties computed independently.</summary>
public sealed class RoutingKeyTests
{
    private static (string? Key, string? Conversation) Of(string path, string json, string? header = null) =>
        RoutingKey.Of(path, header, Encoding.UTF8.GetBytes(json), 8);

    [Fact]
    public void EveryTurnOfAChatHasTheKeyOfItsFirst()
    {
        const string system = "{\"role\":\"system\",\"content\":\"Be brief.\"}";
        const string first = "{\"role\":\"user\",\"content\":\"Hello\"}";
        var turn1 = Of("/v1/chat/completions", $"{{\"messages\":[{system},{first}]}}");
        var turn3 = Of("/v1/chat/completions", $"{{\"messages\":[{system},{first},{{\"role\":\"assistant\",\"content\":\"Hi\"}},{{\"role\":\"user\",\"content\":\"More\"}}]}}");
        var other = Of("/v1/chat/completions", $"{{\"messages\":[{system},{{\"role\":\"user\",\"content\":\"Goodbye\"}}]}}");
        Assert.NotNull(turn1.Key);
        Assert.Equal(turn1, turn3);
        Assert.NotEqual(turn1.Key, other.Key);
        Assert.NotEqual(turn1.Conversation, other.Conversation);

        // user keys the route; the conversation name stays the prefix's. A header names both.
        var withUser = Of("/v1/chat/completions", $"{{\"user\":\"ann\",\"messages\":[{system},{first}]}}");
        Assert.Equal(("u:ann", turn1.Conversation), withUser);
        Assert.Equal(("c:abc", null), Of("/v1/chat/completions", "{}", header: "abc"));
    }

    [Fact]
    public void CompletionsKeyByTheirPromptsPrefix()
    {
        Assert.Equal("t:In the b", Of("/v1/completions", "{\"prompt\":\"In the beginning\"}").Key);
        Assert.Equal(Of("/v1/completions", "{\"prompt\":\"In the beginning\"}").Key, Of("/v1/completions", "{\"prompt\":\"In the bxyz\"}").Key);
        Assert.Equal("i:1,2,3,4,5,6,7,8", Of("/v1/completions", "{\"prompt\":[1,2,3,4,5,6,7,8,9,10]}").Key);
        Assert.Equal("t:short", Of("/v1/completions", "{\"prompt\":[\"short\",\"other\"]}").Key);
        Assert.Null(Of("/v1/completions", "not json").Key);
        Assert.Null(Of("/v1/models", "{\"prompt\":\"x\"}").Key);
    }

    [Fact]
    public void RemovingAReplicaMovesOnlyItsOwnKeys()
    {
        var five = Enumerable.Range(0, 5).Select(i => new DestinationState($"replica-{i}")).ToList();
        var four = five.Where(d => d.DestinationId != "replica-2").ToList();
        var moved = 0;
        var owned = new int[5];
        for (var k = 0; k < 2000; k++)
        {
            var hash = Hashing.Hash64("key " + k);
            var before = CacheAwarePolicy.Order(hash, five).First();
            var after = CacheAwarePolicy.Order(hash, four).First();
            owned[five.IndexOf(before)]++;
            if (before.DestinationId != "replica-2") Assert.Same(before, after); // a key whose owner stays does not move
            else moved++;
            // Its new owner is its second choice before.
            if (before.DestinationId == "replica-2") Assert.Same(CacheAwarePolicy.Order(hash, five).Skip(1).First(), after);
        }

        // Each replica owns about a fifth of the keys (400 ± 80 of 2,000).
        Assert.All(owned, n => Assert.InRange(n, 320, 480));
        Assert.Equal(owned[2], moved);
    }
}
