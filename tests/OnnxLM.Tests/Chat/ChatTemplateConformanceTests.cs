using System.Text.Json;
using OnnxLM.Chat;

namespace OnnxLM.Tests;

/// <summary>
/// Real chat templates of 22 model families rendered for the same conversations as @huggingface/jinja renders them
/// (tests/data/chat-templates/fixtures.json, made by build/fixtures/chat_template_fixtures.js): every render exact to
/// the character, every refusal the template's own raise_exception message. Each case goes through the public API
/// as a caller writes it (null content, content parts, reasoning_content, extra message and tool fields, an empty tools
/// list, variables, a clock for the render, Render's defaults) and the reference gets exactly the variables transformers'
/// apply_chat_template would give the template.
/// </summary>
public sealed class ChatTemplateConformanceTests
{
    private static readonly JsonElement Fixtures = LoadFixtures();

    private static JsonElement LoadFixtures()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "data", "chat-templates", "fixtures.json")));
        return doc.RootElement.Clone();
    }

    public static TheoryData<string> Families() => [.. Fixtures.GetProperty("families").EnumerateArray().Select(f => f.GetProperty("family").GetString()!)];

    /// <summary>The instant the fixture script gave strftime_now, as a clock in UTC.</summary>
    internal sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }

    internal static TemplateOptions Options => new() { Clock = new FixedClock(Fixtures.GetProperty("now").GetDateTimeOffset()) };

    /// <summary>The family's template, read from where the fixture script read it; null (with the reason) when absent.</summary>
    internal static ChatTemplate? Load(JsonElement family, out string reason)
    {
        var source = family.GetProperty("source").GetString()!;
        var kind = source[..source.IndexOf(':')];
        var where = source[(source.IndexOf(':') + 1)..];
        var nodeModules = Path.Combine(TestPaths.RepoRoot, "build", "fixtures", "node_modules");
        var tokens = new Dictionary<string, string>();
        if (family.GetProperty("bos_token").GetString() is { } bos) tokens["bos_token"] = bos;
        if (family.GetProperty("eos_token").GetString() is { } eos) tokens["eos_token"] = eos;
        var path = kind switch
        {
            "committed" => Path.Combine(TestPaths.RepoRoot, "tests", "data", "chat-templates", where, "chat_template.jinja"),
            "extracted" => Path.Combine(nodeModules, ".chat-templates", where + ".jinja"),
            "shared" => Path.Combine(TestPaths.SharedModelsRoot, where),
            _ => Path.Combine(nodeModules, where),
        };
        reason = kind == "shared"
            ? $"third-party model file {path} not found (../shared/models beside the repository)"
            : $"{path} not found (run `npm ci` in build/fixtures to install the chat templates that cannot be committed)";
        if (!File.Exists(path)) return null;
        return kind is "npm" or "shared"
            ? ChatTemplate.FromFolder(Path.GetDirectoryName(path)!, Options)
            : ChatTemplate.Create(File.ReadAllText(path), tokens, Options);
    }

    private static readonly HashSet<string> MessageFields = ["role", "content", "reasoning_content", "tool_calls", "tool_call_id", "name"];

    private static readonly HashSet<string> FunctionFields = ["name", "description", "parameters"];

    /// <summary>The case's OpenAI-format messages as <see cref="ChatMessage"/>s: content a string, null or a list of parts; other fields as additional properties.</summary>
    internal static List<ChatMessage> Messages(JsonElement messages) => [.. messages.EnumerateArray().Select(m =>
    {
        var calls = m.TryGetProperty("tool_calls", out var tc)
            ? tc.EnumerateArray().Select(c => new ChatToolCall(
                c.GetProperty("function").GetProperty("name").GetString()!,
                c.GetProperty("function").GetProperty("arguments"),
                c.TryGetProperty("id", out var id) ? id.GetString() : null)).ToList()
            : null;
        var content = m.TryGetProperty("content", out var c) ? c : default;
        var extra = m.EnumerateObject().Where(p => !MessageFields.Contains(p.Name)).ToDictionary(p => p.Name, p => (object?)p.Value);
        return new ChatMessage(m.GetProperty("role").GetString()!, content.ValueKind == JsonValueKind.String ? content.GetString() : null)
        {
            ContentParts = content.ValueKind == JsonValueKind.Array
                ? [.. content.EnumerateArray().Select(part => (IReadOnlyDictionary<string, object?>)part.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value))]
                : null,
            ReasoningContent = m.TryGetProperty("reasoning_content", out var reasoning) ? reasoning.GetString() : null,
            ToolCalls = calls,
            ToolCallId = m.TryGetProperty("tool_call_id", out var callId) ? callId.GetString() : null,
            Name = m.TryGetProperty("name", out var name) ? name.GetString() : null,
            AdditionalProperties = extra.Count > 0 ? extra : null,
        };
    })];

    /// <summary>The case's tools (an empty list stays a list), fields of <c>function</c> beyond a plain one as additional properties; null when the case has none.</summary>
    internal static List<ChatTool>? Tools(JsonElement c) => c.TryGetProperty("tools", out var tools)
        ? [.. tools.EnumerateArray().Select(t => t.GetProperty("function")).Select(f =>
        {
            var extra = f.EnumerateObject().Where(p => !FunctionFields.Contains(p.Name)).ToDictionary(p => p.Name, p => (object?)p.Value);
            return new ChatTool(f.GetProperty("name").GetString()!, f.GetProperty("description").GetString(), f.GetProperty("parameters"))
            {
                AdditionalProperties = extra.Count > 0 ? extra : null,
            };
        })]
        : null;

    /// <summary>The clock of a case that gives its own <c>now</c>, else null (the template's clock).</summary>
    internal static TimeProvider? Clock(JsonElement c) => c.TryGetProperty("now", out var now) ? new FixedClock(now.GetDateTimeOffset()) : null;

    /// <summary>
    /// Renders a case through the public API as a caller would write it: arguments a case does not give are left to
    /// ChatTemplate.Render's defaults, which must be transformers' (the reference used them).
    /// </summary>
    internal static string RenderCase(ChatTemplate template, JsonElement c)
    {
        var messages = Messages(c.GetProperty("messages"));
        var variables = c.TryGetProperty("extra", out var extra) ? extra.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value) : null;
        return c.TryGetProperty("add_generation_prompt", out var prompt)
            ? template.Render(messages, prompt.GetBoolean(), Tools(c), variables, Clock(c))
            : template.Render(messages, tools: Tools(c), variables: variables, clock: Clock(c));
    }

    /// <summary>
    /// What real templates use of the render bounds, for every family and case, and for a 1,000-message conversation:
    /// the defaults of <see cref="TemplateOptions"/> must leave a wide margin (at least 10 times) over all of them.
    /// </summary>
    [Fact]
    public void RealTemplatesStayFarInsideTheBounds()
    {
        var defaults = new TemplateOptions();
        var cases = Fixtures.GetProperty("cases").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);
        var (steps, depth, calls, measured) = (0L, 0, 0L, new List<string>());
        var longChat = Enumerable.Range(0, 1000).Select(i => i % 2 == 0 ? ChatMessage.User($"Question {i} about the book of Genesis, chapter {i % 50}.") : ChatMessage.Assistant($"Answer {i}: in the beginning God created the heaven and the earth.")).ToList();
        foreach (var family in Fixtures.GetProperty("families").EnumerateArray())
        {
            var template = Load(family, out _);
            if (template is null) continue;
            var name = family.GetProperty("family").GetString()!;
            foreach (var c in family.GetProperty("results").EnumerateArray().Select(r => cases[r.GetProperty("case").GetString()!]))
            {
                var variables = c.TryGetProperty("extra", out var extra) ? extra.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value) : null;
                try
                {
                    template.Render(Messages(c.GetProperty("messages")), true, Tools(c), variables, Clock(c), default, out var used);
                    (steps, depth) = (Math.Max(steps, used.Steps), Math.Max(depth, used.PeakDepth));
                    measured.Add($"{name}/{c.GetProperty("name").GetString()}: {used.Steps} steps, depth {used.PeakDepth}");
                }
                catch (TemplateRaisedException)
                {
                }
            }

            try
            {
                template.Render(longChat, true, null, null, null, default, out var used);
                calls = Math.Max(calls, used.Steps);
                measured.Add($"{name}/1000 messages: {used.Steps} steps, depth {used.PeakDepth}");
                depth = Math.Max(depth, used.PeakDepth);
            }
            catch (TemplateRaisedException)
            {
            }
        }

        var report = $"largest: {steps} steps (short cases), {calls} steps (1,000 messages), depth {depth}\n" + string.Join("\n", measured);
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "onnxlm-template-usage.txt"), report);
        Assert.True(calls * 10 <= defaults.MaxSteps, report);
        Assert.True(depth * 10 <= defaults.MaxDepth, report);
    }

    [SkippableTheory]
    [MemberData(nameof(Families))]
    public void RendersExactlyAsTheReference(string familyName)
    {
        var family = Fixtures.GetProperty("families").EnumerateArray().Single(f => f.GetProperty("family").GetString() == familyName);
        var template = Load(family, out var reason);
        Skip.If(template is null, reason);

        Assert.Equal(family.GetProperty("bos_token").GetString(), template.SpecialTokens.GetValueOrDefault("bos_token"));
        Assert.Equal(family.GetProperty("eos_token").GetString(), template.SpecialTokens.GetValueOrDefault("eos_token"));
        // Every special token the reference rendered with (tokenizer_config.json, then special_tokens_map.json, objects read for their content).
        Assert.Equal(
            family.GetProperty("special_tokens").EnumerateObject().Select(p => $"{p.Name}={p.Value.GetString()}").Order(StringComparer.Ordinal),
            template.SpecialTokens.Select(p => $"{p.Key}={p.Value}").Order(StringComparer.Ordinal));
        var cases = Fixtures.GetProperty("cases").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);
        var failures = new List<string>();
        foreach (var result in family.GetProperty("results").EnumerateArray())
        {
            var caseName = result.GetProperty("case").GetString()!;
            var c = cases[caseName];
            string? actual = null;
            string? raised = null;
            try
            {
                actual = RenderCase(template, c);
            }
            catch (TemplateRaisedException ex)
            {
                raised = ex.Reason;
            }
            catch (TemplateException ex)
            {
                failures.Add($"{caseName}: {ex.Message}");
                continue;
            }

            if (result.TryGetProperty("raises", out var expectedError))
            {
                if (raised != expectedError.GetString()) failures.Add($"{caseName}: expected raise_exception(\"{expectedError.GetString()}\"), got {(raised is null ? "a render" : $"\"{raised}\"")}");
            }
            else if (raised is not null)
            {
                failures.Add($"{caseName}: raised \"{raised}\", expected a render");
            }
            else if (actual != result.GetProperty("expected").GetString())
            {
                var expected = result.GetProperty("expected").GetString()!;
                var at = 0;
                while (at < Math.Min(expected.Length, actual!.Length) && expected[at] == actual[at]) at++;
                failures.Add($"{caseName}: differs at {at}: expected …{JsonSerializer.Serialize(expected[Math.Max(0, at - 30)..Math.Min(expected.Length, at + 40)])}… got …{JsonSerializer.Serialize(actual[Math.Max(0, at - 30)..Math.Min(actual.Length, at + 40)])}…");
            }
        }

        Assert.True(failures.Count == 0, $"{familyName}:\n" + string.Join("\n", failures));
    }
}
