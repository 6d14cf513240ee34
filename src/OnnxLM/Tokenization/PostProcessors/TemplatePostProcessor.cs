namespace OnnxLM.Tokenization;

/// <summary>
/// Adds special tokens around a single sequence: TemplateProcessing's "single" template (pieces that are either a
/// special token, with all its ids, or the sequence), and RobertaProcessing / BertProcessing as the CLS … SEP
/// templates they are. Nothing is added when special tokens are not asked for.
/// </summary>
internal sealed class TemplatePostProcessor(IReadOnlyList<TemplatePostProcessor.Part> single) : IPostProcessor
{
    /// <summary>One piece of a template: the encoded sequence (<see cref="Ids"/> null) or special tokens.</summary>
    public sealed record Part(IReadOnlyList<int>? Ids, IReadOnlyList<string>? Tokens);

    public IReadOnlyList<Part> Single => single;

    /// <summary>The ids the template puts before the sequence (BOS for Llama-style templates).</summary>
    public IEnumerable<int> Prefix => single.TakeWhile(p => p.Ids is not null).SelectMany(p => p.Ids!);

    /// <summary>The ids the template puts after the sequence.</summary>
    public IEnumerable<int> Suffix => single.Reverse().TakeWhile(p => p.Ids is not null).Reverse().SelectMany(p => p.Ids!);

    public void Process(List<EncodedToken> tokens, bool addSpecialTokens)
    {
        if (!addSpecialTokens)
        {
            return;
        }

        var sequence = tokens.ToArray();
        tokens.Clear();
        foreach (var part in single)
        {
            if (part.Ids is null)
            {
                tokens.AddRange(sequence);
                continue;
            }

            // Added special tokens cover no text; Hugging Face reports them at (0, 0) wherever they stand.
            for (var i = 0; i < part.Ids.Count; i++)
            {
                tokens.Add(new EncodedToken(part.Ids[i], part.Tokens?[i] ?? string.Empty, 0, 0));
            }
        }
    }
}
