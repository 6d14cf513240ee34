namespace OnnxLM.Gateway.Tests;

/// <summary>Three replicas behind the gateway: multi-turn conversations stay where their cache is.</summary>
public sealed class CacheAwareRoutingTests
{
    [Fact]
    public async Task EveryTurnOfAConversationLandsOnOneReplicaAndReusesItsCache()
    {
        await using var cluster = await Cluster.StartAsync();
        var turns = new Turn[30][];
        await Parallel.ForEachAsync(Enumerable.Range(0, 30), new ParallelOptions { MaxDegreeOfParallelism = 5 }, async (id, _) =>
        {
            var messages = Cluster.Opening(id);
            turns[id] = new Turn[4];
            for (var turn = 0; turn < 4; turn++)
            {
                var answer = await cluster.ChatAsync(messages);
                turns[id][turn] = answer;
                messages.Add(new { role = "assistant", content = answer.Reply });
                messages.Add(new { role = "user", content = $"And then, part {turn + 2}?" });
            }
        });

        var table = string.Join("\n", turns.Select((t, id) => $"{id}: " + string.Join(" | ", t.Select(x => $"{x.Backend?[^5..]} {x.CachedTokens}/{x.PromptTokens}"))));
        for (var id = 0; id < 30; id++)
        {
            var backends = turns[id].Select(t => t.Backend).Distinct().ToList();
            Assert.True(backends.Count == 1, $"conversation {id} was served by {string.Join(", ", backends)}");
            Assert.Contains(backends[0], cluster.Addresses);
            // A new conversation: at most the system message another conversation's cached session shares with it.
            Assert.True(turns[id][0].CachedTokens < turns[id][0].PromptTokens, $"conversation {id} turn 1\n{table}");
            for (var turn = 1; turn < 4; turn++)
            {
                var t = turns[id][turn];
                // The replica held the conversation: at least the previous turn's prompt is served from its cache, never the whole prompt.
                Assert.True(t.CachedTokens >= turns[id][turn - 1].PromptTokens - 1 && t.CachedTokens < t.PromptTokens,
                    $"conversation {id} turn {turn + 1}: {t.CachedTokens} of {t.PromptTokens} prompt tokens cached; the previous turn's prompt had {turns[id][turn - 1].PromptTokens}\n{table}");
            }
        }

        // Rendezvous hashing spreads the 30 conversations over all three replicas.
        Assert.Equal(3, turns.Select(t => t[0].Backend).Distinct().Count());
    }
}
