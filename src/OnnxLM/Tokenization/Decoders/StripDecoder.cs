namespace OnnxLM.Tokenization;

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of a character from every token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            var from = 0;
            // A continuation keeps the space the start of a text would lose.
            var maxStart = continuation && i == 0 ? 0 : start;
            while (from < Math.Min(maxStart, t.Length) && t[from] == content) from++;
            var to = t.Length;
            for (var k = 0; k < stop && to > from && t[to - 1] == content; k++) to--;
            tokens[i] = t[from..to];
        }
    }
}
