namespace OnnxLM.Tests;

/// <summary>
/// tiny-llama-fp16's exported graph builds its mask for one new token once a past is given: appending several tokens
/// to a session that holds some used to fail inside ONNX Runtime. Sessions now fall back to one token per run for
/// such a graph, with the same logits as one prefill.
/// </summary>
public sealed class MultiTokenAppendTests
{
    [SharedModelFact("tiny-llama-fp16")]
    public async Task SeveralTokensAfterAPastGiveTheSameLogitsAsOnePrefill()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel("tiny-llama-fp16"));
        var ids = model.Tokenizer.Encode("And God said, Let there be light: and there was light.");
        using var stepped = model.CreateSession();
        stepped.Append(ids.AsSpan(0, 3));
        stepped.Append(ids.AsSpan(3, 3));
        stepped.Append(ids.AsSpan(6));
        using var whole = model.CreateSession();
        whole.Append(ids);
        var a = stepped.NextTokenLogits.ToArray();
        var b = whole.NextTokenLogits.ToArray();
        var diff = a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(diff < 2e-2f, $"max abs diff {diff}"); // float16 graph
        Assert.Equal(ids, stepped.Tokens.ToArray());
        Assert.True(model.Runtime.Graph.SingleTokenWithPast); // this export needed the fallback

        // Scoring a multi-token continuation after a shared prefix goes through the same path.
        var scores = await model.ScoreBatchAsync([new ScoreRequest("And God said,", " Let there be"), new ScoreRequest("And God said,", " and it was")]);
        var single = await model.ScoreAsync("And God said,", " Let there be");
        Assert.Equal(single.LogProb, scores[0].LogProb, 2);
    }
}
