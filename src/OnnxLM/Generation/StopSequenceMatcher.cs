namespace OnnxLM;

/// <summary>
/// Finds stop strings in streamed text across token boundaries. Text that could still be the start of a stop
/// string is held back; when a stop string appears, the text before it is released and the rest dropped.
/// </summary>
internal sealed class StopSequenceMatcher(IList<string> stops)
{
    private readonly string[] _stops = stops.Where(s => s.Length > 0).ToArray();
    private string _pending = string.Empty;

    public bool IsActive => _stops.Length > 0;

    /// <summary>Adds text; returns what can be emitted now and the stop string if one completed.</summary>
    public (string Emit, string? Stop) Push(string text)
    {
        _pending += text;
        var earliest = -1;
        string? found = null;
        foreach (var stop in _stops)
        {
            var at = _pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (earliest < 0 || at < earliest))
            {
                (earliest, found) = (at, stop);
            }
        }

        if (found is not null)
        {
            var before = _pending[..earliest];
            _pending = string.Empty;
            return (before, found);
        }

        // Hold back the longest tail that is a proper prefix of some stop string.
        var hold = 0;
        foreach (var stop in _stops)
        {
            for (var length = Math.Min(stop.Length - 1, _pending.Length); length > hold; length--)
            {
                if (_pending.AsSpan(_pending.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    hold = length;
                    break;
                }
            }
        }

        var emit = _pending[..^hold];
        _pending = _pending[^hold..];
        return (emit, null);
    }

    /// <summary>Releases held-back text at the end of generation.</summary>
    public string Flush()
    {
        var rest = _pending;
        _pending = string.Empty;
        return rest;
    }
}
