using System.Globalization;
using System.Text;

namespace OnnxLM.Chat.Jinja;

/// <summary>
/// Splits a template into text and the tokens inside <c>{{ }}</c> and <c>{% %}</c>, applying Jinja's whitespace
/// control as it goes: <c>-</c> on a tag strips the whitespace beside it, <c>+</c> turns lstrip/trim off for that
/// tag, <c>lstrip_blocks</c> removes the indentation before a block tag or comment that starts its line,
/// <c>trim_blocks</c> removes the newline after one, and one trailing newline of the template is dropped (Jinja's
/// <c>keep_trailing_newline = False</c>). Comments are dropped; <c>{% raw %}</c> content is kept as text.
/// </summary>
internal sealed class Lexer
{
    private static readonly string[] Operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    private readonly string _source;
    private readonly TemplateOptions _options;
    private readonly int[] _lineStarts;
    private readonly List<Token> _tokens = [];
    private int _pos;

    private Lexer(string source, TemplateOptions options)
    {
        _source = source.EndsWith('\n') ? source[..^1] : source;
        _options = options;
        var starts = new List<int> { 0 };
        for (var i = 0; i < _source.Length; i++)
        {
            if (_source[i] == '\n') starts.Add(i + 1);
        }

        _lineStarts = [.. starts];
    }

    public static List<Token> Tokenize(string source, TemplateOptions options)
    {
        var lexer = new Lexer(source, options);
        lexer.Run();
        return lexer._tokens;
    }

    private (int Line, int Column) Position(int offset)
    {
        var line = Array.BinarySearch(_lineStarts, offset);
        if (line < 0) line = ~line - 1;
        return (line + 1, offset - _lineStarts[line] + 1);
    }

    private TemplateSyntaxException Error(string message, int offset)
    {
        var (line, column) = Position(offset);
        return new TemplateSyntaxException(message, line, column);
    }

    private void Add(TokenKind kind, string value, int offset)
    {
        var (line, column) = Position(offset);
        _tokens.Add(new Token(kind, value, line, column));
    }

    private void Run()
    {
        var s = _source;
        while (_pos < s.Length)
        {
            var tag = FindTag(_pos);
            var textEnd = tag < 0 ? s.Length : tag;
            var text = s[_pos..textEnd];
            if (tag < 0)
            {
                AddText(text, _pos);
                break;
            }

            var kind = s[tag + 1];
            var modifier = tag + 2 < s.Length ? s[tag + 2] : '\0';
            if (modifier == '-')
            {
                text = text.TrimEnd();
            }
            else if (modifier != '+' && kind != '{' && _options.LStripBlocks)
            {
                text = StripIndentation(text, _pos);
            }

            AddText(text, _pos);
            _pos = tag + 2 + (modifier is '-' or '+' ? 1 : 0);
            switch (kind)
            {
                case '#':
                    LexComment(tag);
                    break;
                case '%':
                    if (TryLexRaw(tag)) break;
                    Add(TokenKind.BlockBegin, "{%", tag);
                    LexInside(block: true, tag);
                    break;
                default:
                    Add(TokenKind.VariableBegin, "{{", tag);
                    LexInside(block: false, tag);
                    break;
            }
        }

        Add(TokenKind.End, "", s.Length);
    }

    private int FindTag(int from)
    {
        for (var i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
        {
            if (_source[i + 1] is '{' or '%' or '#') return i;
        }

        return -1;
    }

    private void AddText(string text, int offset)
    {
        if (text.Length > 0) Add(TokenKind.Text, text, offset);
    }

    /// <summary>lstrip_blocks: the spaces and tabs between the start of the line and the tag go.</summary>
    private string StripIndentation(string text, int textStart)
    {
        var lineStart = text.LastIndexOf('\n') + 1;
        if (lineStart == 0 && textStart > 0 && _source[textStart - 1] != '\n')
        {
            return text; // the line began before this text, at another tag
        }

        for (var i = lineStart; i < text.Length; i++)
        {
            if (text[i] is not (' ' or '\t')) return text;
        }

        return text[..lineStart];
    }

    /// <summary>After a block tag or comment: <c>-</c> eats all following whitespace, otherwise trim_blocks one newline.</summary>
    private void AfterTag(char modifier, bool block)
    {
        if (modifier == '-')
        {
            while (_pos < _source.Length && char.IsWhiteSpace(_source[_pos])) _pos++;
        }
        else if (block && modifier != '+' && _options.TrimBlocks && _pos < _source.Length && _source[_pos] == '\n')
        {
            _pos++;
        }
    }

    private void LexComment(int tag)
    {
        var close = _source.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (close < 0) throw Error("The comment is never closed with '#}'.", tag);
        var modifier = close > _pos && _source[close - 1] is '-' or '+' ? _source[close - 1] : '\0';
        _pos = close + 2;
        AfterTag(modifier, block: true);
    }

    /// <summary><c>{% raw %}…{% endraw %}</c>: everything between is text.</summary>
    private bool TryLexRaw(int tag)
    {
        var i = _pos;
        while (i < _source.Length && char.IsWhiteSpace(_source[i])) i++;
        if (string.CompareOrdinal(_source, i, "raw", 0, 3) != 0) return false;
        i += 3;
        while (i < _source.Length && char.IsWhiteSpace(_source[i])) i++;
        var modifier = i < _source.Length && _source[i] is '-' or '+' ? _source[i++] : '\0';
        if (string.CompareOrdinal(_source, i, "%}", 0, 2) != 0) return false;
        _pos = i + 2;
        AfterTag(modifier, block: true);
        for (var search = _pos; ;)
        {
            var open = FindTag(search);
            if (open < 0) throw Error("'{% raw %}' is never closed with '{% endraw %}'.", tag);
            var j = open + 2;
            var strip = j < _source.Length && _source[j] == '-';
            if (strip || (j < _source.Length && _source[j] == '+')) j++;
            while (j < _source.Length && char.IsWhiteSpace(_source[j])) j++;
            if (_source[open + 1] == '%' && string.CompareOrdinal(_source, j, "endraw", 0, 6) == 0)
            {
                j += 6;
                while (j < _source.Length && char.IsWhiteSpace(_source[j])) j++;
                var endModifier = j < _source.Length && _source[j] is '-' or '+' ? _source[j++] : '\0';
                if (string.CompareOrdinal(_source, j, "%}", 0, 2) == 0)
                {
                    var text = _source[_pos..open];
                    AddText(strip ? text.TrimEnd() : text, _pos);
                    _pos = j + 2;
                    AfterTag(endModifier, block: true);
                    return true;
                }
            }

            search = open + 2;
        }
    }

    private void LexInside(bool block, int tag)
    {
        var s = _source;
        var braces = 0;
        while (true)
        {
            while (_pos < s.Length && char.IsWhiteSpace(s[_pos])) _pos++;
            if (_pos >= s.Length)
            {
                throw Error(block ? "The block tag is never closed with '%}'." : "The expression is never closed with '}}'.", tag);
            }

            var c = s[_pos];
            var close = block ? "%}" : "}}";
            if ((c is '-' or '+') && string.CompareOrdinal(s, _pos + 1, close, 0, 2) == 0 && (block || braces == 0))
            {
                Add(block ? TokenKind.BlockEnd : TokenKind.VariableEnd, close, _pos);
                _pos += 3;
                AfterTag(c, block);
                return;
            }

            if (string.CompareOrdinal(s, _pos, close, 0, 2) == 0 && (block || braces == 0))
            {
                Add(block ? TokenKind.BlockEnd : TokenKind.VariableEnd, close, _pos);
                _pos += 2;
                AfterTag('\0', block);
                return;
            }

            if (c is '\'' or '"')
            {
                LexString(c);
            }
            else if (char.IsAsciiDigit(c))
            {
                LexNumber();
            }
            else if (char.IsLetter(c) || c == '_')
            {
                var start = _pos;
                while (_pos < s.Length && (char.IsLetterOrDigit(s[_pos]) || s[_pos] == '_')) _pos++;
                Add(TokenKind.Name, s[start.._pos], start);
            }
            else
            {
                var op = Array.Find(Operators, o => string.CompareOrdinal(s, _pos, o, 0, o.Length) == 0)
                    ?? throw Error($"Unexpected character '{c}' inside a {(block ? "block tag" : "expression")}.", _pos);
                if (op == "{") braces++;
                else if (op == "}") braces--;
                Add(TokenKind.Operator, op, _pos);
                _pos += op.Length;
            }
        }
    }

    private void LexString(char quote)
    {
        var start = _pos++;
        var value = new StringBuilder();
        while (true)
        {
            if (_pos >= _source.Length) throw Error("The string literal is never closed.", start);
            var c = _source[_pos++];
            if (c == quote) break;
            if (c != '\\')
            {
                value.Append(c);
                continue;
            }

            if (_pos >= _source.Length) throw Error("The string literal is never closed.", start);
            var e = _source[_pos++];
            switch (e)
            {
                case 'n': value.Append('\n'); break;
                case 't': value.Append('\t'); break;
                case 'r': value.Append('\r'); break;
                case 'b': value.Append('\b'); break;
                case 'f': value.Append('\f'); break;
                case 'v': value.Append('\v'); break;
                case '0': value.Append('\0'); break;
                case '\\' or '\'' or '"': value.Append(e); break;
                case '\n': break; // a line continuation
                case 'x' or 'u' or 'U':
                    var digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (_pos + digits > _source.Length
                        || !int.TryParse(_source.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code)
                        || !Rune.IsValid(code))
                    {
                        throw Error($"Invalid escape '\\{e}' in a string literal.", _pos - 2);
                    }

                    value.Append(char.ConvertFromUtf32(code));
                    _pos += digits;
                    break;
                default:
                    value.Append('\\').Append(e); // Python keeps unknown escapes as written
                    break;
            }
        }

        Add(TokenKind.String, value.ToString(), start);
    }

    private void LexNumber()
    {
        var start = _pos;
        while (_pos < _source.Length && (char.IsAsciiDigit(_source[_pos]) || _source[_pos] == '_')) _pos++;
        var isFloat = false;
        // "1.5" is a float; "x.0" after a dot is attribute access and lexes as a name, "1." needs a digit after it.
        if (_pos + 1 < _source.Length && _source[_pos] == '.' && char.IsAsciiDigit(_source[_pos + 1])
            && !(_tokens.Count > 0 && _tokens[^1].IsOperator(".")))
        {
            isFloat = true;
            _pos++;
            while (_pos < _source.Length && (char.IsAsciiDigit(_source[_pos]) || _source[_pos] == '_')) _pos++;
        }

        if (_pos < _source.Length && _source[_pos] is 'e' or 'E')
        {
            var save = _pos++;
            if (_pos < _source.Length && _source[_pos] is '+' or '-') _pos++;
            if (_pos < _source.Length && char.IsAsciiDigit(_source[_pos]))
            {
                isFloat = true;
                while (_pos < _source.Length && char.IsAsciiDigit(_source[_pos])) _pos++;
            }
            else
            {
                _pos = save;
            }
        }

        Add(isFloat ? TokenKind.Float : TokenKind.Integer, _source[start.._pos].Replace("_", ""), start);
    }
}
