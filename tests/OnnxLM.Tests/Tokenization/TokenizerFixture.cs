using System.Text.Json;

namespace OnnxLM.Tests;

/// <summary>Expected ids made by independent implementations (build/fixtures): Hugging Face tokenizers and C++ SentencePiece.</summary>
public sealed record TokenizerFixture(string Source, string Model, TokenizerFixture.Case[] Cases)
{
    /// <summary>
    /// One text: ids without and with special tokens, decode(ids), decode(idsWithSpecial) and the same skipping special
    /// tokens, and the UTF-16 offsets of each token of the encoding with special tokens (fields a reference lacks are null).
    /// </summary>
    public sealed record Case(string Text, int[] Ids, string Decoded, int[]? IdsWithSpecial = null, string? DecodedWithSpecial = null,
        string? DecodedSkip = null, int[][]? Offsets = null);

    private static readonly JsonSerializerOptions Options = new() { PropertyNameCaseInsensitive = true };

    public static TokenizerFixture Load(string model) =>
        JsonSerializer.Deserialize<TokenizerFixture>(File.ReadAllText(TestPaths.TestData($"tokenizer/{model}.json")), Options)!;

    /// <summary>The folder holding the model's tokenizer: the repo's own model or a shared one.</summary>
    public static string Folder(string model) => model == "kjv-tiny" ? TestPaths.RepoModel(model) : TestPaths.SharedModel(model);
}
