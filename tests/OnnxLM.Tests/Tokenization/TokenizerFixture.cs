using System.Text.Json;

namespace OnnxLM.Tests;

/// <summary>Expected ids made by independent implementations (build/fixtures): Hugging Face tokenizers and C++ SentencePiece.</summary>
public sealed record TokenizerFixture(string Source, string Model, TokenizerFixture.Case[] Cases)
{
    public sealed record Case(string Text, int[] Ids, string Decoded);

    private static readonly JsonSerializerOptions Options = new() { PropertyNameCaseInsensitive = true };

    public static TokenizerFixture Load(string model) =>
        JsonSerializer.Deserialize<TokenizerFixture>(File.ReadAllText(TestPaths.TestData($"tokenizer/{model}.json")), Options)!;

    /// <summary>The folder holding the model's tokenizer: the repo's own model or a shared one.</summary>
    public static string Folder(string model) => model == "kjv-tiny" ? TestPaths.RepoModel(model) : TestPaths.SharedModel(model);
}
