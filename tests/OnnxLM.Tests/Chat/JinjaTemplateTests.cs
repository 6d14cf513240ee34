using System.Text.Json;
using OnnxLM.Chat;

namespace OnnxLM.Tests;

/// <summary>The Jinja engine construct by construct, against hand-written expectations (Jinja's documented semantics).</summary>
[Collection(TimedCollection.Name)]
public sealed class JinjaTemplateTests
{
    private static string Render(string template, string variablesJson = "{}", TemplateOptions? options = null)
    {
        using var doc = JsonDocument.Parse(variablesJson);
        var variables = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        return JinjaTemplate.Parse(template, options).Render(variables);
    }

    [Theory]
    // output, literals, operators
    [InlineData("a{{ 1 + 2 * 3 }}b", "{}", "a7b")]
    [InlineData("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 4 / 2 }}", "{}", "3 -4 1 2 3.5 1024 2.0")]
    [InlineData("{{ 'a' ~ 1 ~ none ~ x }}|{{ 'x' + 'y' }}|{{ 'ab' * 3 }}|{{ 'n' + 1 }}", "{}", "a1|xy|ababab|n1")]
    [InlineData("{{ [1, 2] + [3] }} {{ {'a': 1, 'b': [true, none]} }}", "{}", "[1, 2, 3] {\"a\": 1, \"b\": [true, null]}")]
    [InlineData("{{ 'he said \"hi\"\\n' }}", "{}", "he said \"hi\"\n")]
    [InlineData("{{ 1.5 }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ true }} {{ none }}", "{}", "1.5 1.0 0.30000000000000004 1e+20 true ")]
    [InlineData("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'b' in 'abc' }} {{ 2 not in [1, 3] }} {{ 'k' in {'k': 1} }}", "{}", "true false true true true")]
    [InlineData("{{ not 0 and 'x' or 'y' }} {{ '' or 'fallback' }} {{ 0 and 1 }}", "{}", "x fallback 0")]
    [InlineData("{{ 'yes' if x else 'no' }} {{ 'only' if false }}.", "{\"x\": [1]}", "yes .")]
    // variables, attribute and item access, undefined
    [InlineData("{{ m.role }} {{ m['content'] }} {{ m.missing }} {{ m.missing.deeper }} {{ xs[-1] }} {{ xs[5] }}", "{\"m\": {\"role\": \"user\", \"content\": \"hi\"}, \"xs\": [1, 2, 3]}", "user hi   3 ")]
    [InlineData("{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ 'héllo'[1:3] }} {{ 'abc'[::-1] }}", "{\"xs\": [1, 2, 3, 4]}", "[2, 3, 4] [1, 2, 3] [4, 3, 2, 1] [1, 3] él cba")]
    // whitespace control, trim_blocks and lstrip_blocks
    [InlineData("a  {%- if true -%}  b  {%- endif -%}  c", "{}", "abc")]
    [InlineData("<\n  {% if true %}\n    x\n  {% endif %}\n>", "{}", "<\n    x\n>")]
    [InlineData("a {{- ' b ' -}} c\n", "{}", "a b c")]
    [InlineData("{# comment #}x{#- gone -#}  y", "{}", "xy")]
    [InlineData("{% raw %}{{ not evaluated }}{% endraw %}", "{}", "{{ not evaluated }}")]
    // statements
    [InlineData("{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}", "{\"x\": 2}", "two")]
    [InlineData("{% for m in ms %}{{ loop.index }}/{{ loop.length }}:{{ m }}{% if not loop.last %},{% endif %}{% endfor %}", "{\"ms\": [\"a\", \"b\", \"c\"]}", "1/3:a,2/3:b,3/3:c")]
    [InlineData("{% for m in ms %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.previtem }}|{{ loop.nextitem }};{% endfor %}", "{\"ms\": [\"a\", \"b\"]}", "02true|b;11falsea|;")]
    [InlineData("{% for x in xs if x > 1 %}{{ x }}{{ loop.length }} {% else %}none{% endfor %}", "{\"xs\": [1, 2, 3]}", "22 32 ")]
    [InlineData("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", "{}", "empty")]
    [InlineData("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}", "{\"d\": {\"b\": 1, \"a\": 2}}", "b=1;a=2;ba")]
    [InlineData("{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", "{\"xs\": [1, 2, 3, 4, 5]}", "13")]
    [InlineData("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", "{}", "1")]
    [InlineData("{% set ns = namespace(found=false, n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% set ns.found = true %}{% endfor %}{{ ns.found }} {{ ns.n }}", "{}", "true 3")]
    [InlineData("{% set a, b = 1, 2 %}{{ b }}{{ a }}{% set t %}in {{ a }}{% endset %}[{{ t }}]", "{}", "21[in 1]")]
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', punct='?') }}", "{}", "Hi Ann! Hi Bo?")]
    [InlineData("{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}inside{% endcall %}", "{}", "[inside]")]
    [InlineData("{% filter upper %}shout {{ 'this' }}{% endfilter %}", "{}", "SHOUT THIS")]
    [InlineData("{% generation %}kept{% endgeneration %}", "{}", "kept")]
    // tests
    [InlineData("{{ x is defined }} {{ y is defined }} {{ n is none }} {{ s is string }} {{ 3 is number }} {{ d is mapping }} {{ xs is iterable }}", "{\"x\": 1, \"n\": null, \"s\": \"\", \"d\": {}, \"xs\": []}", "true false true true true true true")]
    [InlineData("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ x is equalto 2 }} {{ x is not sameas none }} {{ true is true }} {{ 1 is boolean }}", "{\"x\": 2}", "true true true true true true false")]
    // filters
    [InlineData("{{ '  pad  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'Hello' | upper }}{{ 'Hello' | lower }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}", "{}", "pad|hi|HELLOhello|Hello World|Hello")]
    [InlineData("{{ xs | length }} {{ xs | first }} {{ xs | last }} {{ xs | join(', ') }} {{ xs | reverse | list }} {{ xs | sort }} {{ xs | sort(reverse=true) | first }}", "{\"xs\": [3, 1, 2]}", "3 3 2 3, 1, 2 [2, 1, 3] [1, 2, 3] 3")]
    [InlineData("{{ x | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ none | default('d') }}", "{}", "d  d ")]
    [InlineData("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('+') }} {{ ms | rejectattr('role', 'equalto', 'user') | list | length }}", "{\"ms\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"b\"}]}", "a+b 1")]
    [InlineData("{{ ms | selectattr('x') | list | length }} {{ ['a', 'b'] | map('upper') | join }} {{ [1, 2, 3] | select('odd') | list }}", "{\"ms\": [{\"x\": true}, {\"x\": false}, {}]}", "1 AB [1, 3]")]
    [InlineData("{{ 'a-b-c' | replace('-', '+') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ [1, 1, 2] | unique | list }} {{ 'one two  three' | wordcount }}", "{}", "a+b+c bba [1, 2] 3")]
    [InlineData("{{ '42' | int + 1 }} {{ '3.7' | int }} {{ 'x' | int }} {{ '2.5' | float }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ [1, 2] | sum }}", "{}", "43 3 0 2.5 3 2.57 3.0 3")]
    [InlineData("{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}", "{}", "a\n  b\n\n  c|  a\n  b")]
    [InlineData("{{ d | items | list }} {{ d | dictsort | first }} {{ d | length }} {{ 'x' | string }}{{ 5 | string }}", "{\"d\": {\"b\": 1, \"a\": 2}}", "[[\"b\", 1], [\"a\", 2]] [\"a\", 2] 2 x5")]
    [InlineData("{{ v | tojson }}", "{\"v\": {\"a\": [1, 2.5, \"é\\n\\\"\"], \"b\": null, \"c\": {}}}", "{\"a\": [1, 2.5, \"é\\n\\\"\"], \"b\": null, \"c\": {}}")]
    [InlineData("{{ v | tojson(indent=2) }}", "{\"v\": {\"a\": [1, 2], \"b\": []}}", "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": []\n}")]
    [InlineData("{{ v | tojson(separators=(',', ':'), sort_keys=true) }} {{ 'é' | tojson(ensure_ascii=true) }}", "{\"v\": {\"b\": 1, \"a\": 2}}", "{\"a\":2,\"b\":1} \"\\u00e9\"")]
    [InlineData("{{ '<a href=\"x\">' | e }} {{ 'ok' | safe }}", "{}", "&lt;a href=&#34;x&#34;&gt; ok")]
    // string and dict methods
    [InlineData("{{ ' x '.strip() }}|{{ 'xyx'.strip('x') }}|{{ '\\nab'.lstrip('\\n') }}|{{ 'ab  '.rstrip() }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}", "{}", "x|y|ab|ab|truetrue")]
    [InlineData("{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ 'Hi'.upper() }}{{ 'Hi'.lower() }} {{ 'a-a'.replace('a', 'b') }}", "{}", "[\"a\", \"b\", \"c\"] [\"a\", \"b\", \"\", \"c\"] [\"a\", \"b,c\"] HIhi b-b")]
    [InlineData("{{ d.get('a') }} {{ d.get('z', 'none') }} {{ d.keys() | list }} {{ d.values() | list }} {{ ', '.join(['x', 'y']) }}", "{\"d\": {\"a\": 1}}", "1 none [\"a\"] [1] x, y")]
    // globals
    [InlineData("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }} {{ dict(a=1)['a'] }}", "{}", "[0, 1, 2] [1, 3, 5] [3, 2, 1] 1")]
    public void RendersAsJinjaDoes(string template, string variables, string expected) =>
        Assert.Equal(expected, Render(template, variables));

    [Fact]
    public void StrftimeNowReadsTheInjectedClock()
    {
        var options = new TemplateOptions { Clock = new ChatTemplateConformanceTests.FixedClock(new DateTimeOffset(2026, 3, 7, 15, 4, 5, TimeSpan.Zero)) };
        Assert.Equal("07 Mar 2026 | March 7, 2026 15:04:05 Sat 03PM %",
            Render("{{ strftime_now('%d %b %Y') }} | {{ strftime_now('%B %-d, %Y %H:%M:%S %a %I%p %%') }}", options: options));
    }

    [Fact]
    public void RaiseExceptionCarriesTheTemplatesMessage()
    {
        var ex = Assert.Throws<TemplateRaisedException>(() =>
            Render("line one\n{% if messages[0].role != 'system' %}{{ raise_exception('System message first!') }}{% endif %}", "{\"messages\": [{\"role\": \"user\"}]}"));
        Assert.Equal("System message first!", ex.Reason);
        Assert.Equal(2, ex.Line);
    }

    [Theory]
    [InlineData("{% if x %}unclosed", "Unexpected end of template: expected '{% elif %}' or '{% else %}' or '{% endif %}'", 1, 19)]
    [InlineData("ok\n{{ 1 + }}", "Unexpected '}}' in an expression", 2, 8)]
    [InlineData("{% for x in %}{% endfor %}", "Unexpected '%}' in an expression", 1, 13)]
    [InlineData("{% include 'other.jinja' %}", "Unknown or unsupported tag 'include'", 1, 4)]
    [InlineData("{% extends 'base' %}", "Unknown or unsupported tag 'extends'", 1, 4)]
    [InlineData("{{ 'never closed }}", "The string literal is never closed", 1, 4)]
    [InlineData("{% endif %}", "Unexpected '{% endif %}' without an opening tag", 1, 4)]
    [InlineData("{{ x ! y }}", "Unexpected character '!' inside a expression", 1, 6)]
    public void BadSyntaxNamesTheLineAndColumn(string template, string message, int line, int column)
    {
        var ex = Assert.Throws<TemplateSyntaxException>(() => JinjaTemplate.Parse(template));
        Assert.StartsWith(message, ex.Reason);
        Assert.Equal((line, column), (ex.Line, ex.Column));
    }

    [Theory]
    [InlineData("{{ x | nosuchfilter }}", "No filter named 'nosuchfilter'.")]
    [InlineData("{{ x is nosuchtest }}", "No test named 'nosuchtest'.")]
    [InlineData("{{ [1] - 1 }}", "unsupported operand types for -: list and integer")]
    [InlineData("{{ nothing() }}", "'nothing' is undefined and cannot be called.")]
    [InlineData("{% set a, b = [1, 2, 3] %}", "Cannot unpack 3 values into 2 variables.")]
    [InlineData("{{ 9223372036854775807 + 1 }}", "Arithmetic operation resulted in an overflow.")]
    [InlineData("{{ 1 // 0 }}", "integer division by zero")]
    public void RuntimeErrorsAreTypedWithThePosition(string template, string message)
    {
        var ex = Assert.Throws<TemplateException>(() => Render(template));
        Assert.Equal(message, ex.Reason);
        Assert.Equal(1, ex.Line);
    }

    [Theory]
    [InlineData("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "Macro calls nest deeper than 64")]
    [InlineData("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}", "The template took more than 1000000 steps (TemplateOptions.MaxSteps")]
    [InlineData("{{ range(100000000000) | length }}", "range() of 100000000000 items is longer than TemplateOptions.MaxOutputLength (4194304)")]
    [InlineData("{% set s = 'x' * 1000 %}{% for i in range(100000) %}{{ s }}{% endfor %}", "The template produced more than 4194304 characters")]
    [InlineData("{{ 'ab' * 1000000000000 }}", "The template produced more than 4194304 characters")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "The template produced more than 4194304 characters")]
    public void HostileTemplatesStopAtTheBounds(string template, string message)
    {
        var ex = Assert.Throws<TemplateLimitExceededException>(() => Render(template));
        Assert.StartsWith(message, ex.Reason);
    }

    [Fact]
    public void DeepNestingIsALimitNotAStackOverflow()
    {
        var ex = Assert.Throws<TemplateLimitExceededException>(() => JinjaTemplate.Parse("{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}"));
        Assert.StartsWith("The template nests deeper than 256 levels (TemplateOptions.MaxDepth)", ex.Reason);
        Assert.Throws<TemplateLimitExceededException>(() => JinjaTemplate.Parse(string.Concat(Enumerable.Repeat("{% if x %}", 5000))));
    }

    private const int Links = 30_000;

    private static string Repeat(string link, int count = Links) => string.Concat(Enumerable.Repeat(link, count));

    /// <summary>
    /// Hostile shapes at 30,000 links. Before the depth bound covered chains, each of the expression chains parsed (in a
    /// loop) and then overflowed the stack when rendered (a recursion per link), killing the process; the nested blocks
    /// and literals were refused with a syntax error, and a macro whose body nests 150 lists overflowed by recursing.
    /// </summary>
    public static TheoryData<string, string> DeepTemplates() => new()
    {
        { "+ chain", "{{ 1" + Repeat(" + 1") + " }}" },
        { "~ chain", "{{ 'a'" + Repeat(" ~ 'a'") + " }}" },
        { "or chain", "{{ false" + Repeat(" or false") + " }}" },
        { "and chain", "{{ true" + Repeat(" and true") + " }}" },
        { "** chain", "{{ 1" + Repeat(" ** 1") + " }}" },
        { "|upper chain", "{{ 'a'" + Repeat("|upper") + " }}" },
        { "is chain", "{{ x" + Repeat(" is defined") + " }}" },
        { ".x chain", "{{ x" + Repeat(".x") + " }}" },
        { "[0] chain", "{{ x" + Repeat("[0]") + " }}" },
        { "f()() chain", "{{ f" + Repeat("()") + " }}" },
        { "if-else chain", "{{ 1" + Repeat(" if x") + " }}" },
        { "nested if", Repeat("{% if true %}") + "x" + Repeat("{% endif %}") },
        { "nested for", Repeat("{% for i in [1] %}") + "x" + Repeat("{% endfor %}") },
        { "nested filter blocks", Repeat("{% filter upper %}") + "x" + Repeat("{% endfilter %}") },
        { "nested set blocks", Repeat("{% set s %}") + "x" + Repeat("{% endset %}") },
        { "nested macros", Repeat("{% macro m() %}") + "x" + Repeat("{% endmacro %}") },
        { "nested lists", "{{ " + Repeat("[") + "1" + Repeat("]") + " }}" },
        { "nested dicts", "{{ " + Repeat("{'a': ") + "1" + Repeat("}") + " }}" },
        { "nested parentheses", "{{ " + Repeat("(") + "1" + Repeat(")") + " }}" },
        { "nested not", "{{ " + Repeat("not ") + "1 }}" },
        { "nested unary minus", "{{ " + Repeat("- ") + "1 }}" },
        { "macro recursion through nested lists", "{% macro f(n) %}{{ " + Repeat("[", 150) + "f(n - 1) if n > 0" + Repeat("]", 150) + " }}{% endmacro %}{{ f(60) }}" },
    };

    [Theory]
    [MemberData(nameof(DeepTemplates))]
    public void DeepTemplatesStopAtTheDepthBoundQuickly(string shape, string template)
    {
        var ex = StopsWithinASecond(template, shape);
        Assert.Contains("nests deeper than 256 levels", ex.Reason);
        Assert.Contains("(TemplateOptions.MaxDepth", ex.Reason);
    }

    [Fact]
    public void TheDepthBoundIsAnOption()
    {
        var chain = "{{ 1" + Repeat(" + 1", 299) + " }}";
        Assert.Throws<TemplateLimitExceededException>(() => JinjaTemplate.Parse(chain));
        Assert.Equal("300", JinjaTemplate.Parse(chain, new TemplateOptions { MaxDepth = 400 }).Render());
        // Within the parse bound, but deeper at render time: 8 calls of a macro whose body nests 40 lists.
        var recursive = "{% macro f(n) %}{{ " + Repeat("[", 40) + "f(n - 1) if n > 0" + Repeat("]", 40) + " }}{% endmacro %}{{ f(8)[:3] }}";
        var ex = Assert.Throws<TemplateLimitExceededException>(() => JinjaTemplate.Parse(recursive).Render());
        Assert.StartsWith("The template nests deeper than 256 levels while rendering", ex.Reason);
        Assert.Equal("[[[", JinjaTemplate.Parse(recursive, new TemplateOptions { MaxDepth = 1000 }).Render());
    }

    public static TheoryData<string, string> CostlyTemplates() => new()
    {
        // 2^40 macro calls; before the work budget counted calls this ran for hours.
        { "{% macro f(n) %}{% if n > 0 %}{% set _ = f(n-1) %}{% set _ = f(n-1) %}{% endif %}{% endmacro %}{{ f(40) }}", "The template took more than 1000000 steps (TemplateOptions.MaxSteps" },
        // A filter over a 4 Mi-character string a million times: each one costs its size, so this stops after a few.
        { "{% set s = 'x' * 4000000 %}{% for i in range(100000) %}{% set t = s | upper %}{% endfor %}", "The template took more than 1000000 steps (TemplateOptions.MaxSteps" },
        { "{% set s = 'x' * 4000000 %}{% for i in range(100000) %}{% set t = s.count('y') %}{% endfor %}", "The template took more than 1000000 steps (TemplateOptions.MaxSteps" },
        // A loop can nest a value far deeper than any literal; comparing it used to recurse once per level.
        { "{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x == ns.x }}", "A value nests deeper than 128 levels" },
        { "{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ [ns.x, ns.x] | sort }}", "A value nests deeper than 128 levels" },
    };

    [Theory]
    [MemberData(nameof(CostlyTemplates))]
    public void CostlyTemplatesStopAtTheWorkBudgetQuickly(string template, string message)
    {
        var ex = StopsWithinASecond(template, template);
        Assert.StartsWith(message, ex.Reason);
    }

    /// <summary>Parses and renders <paramref name="template"/> as a chat template, which must stop at a limit within a second.</summary>
    private static TemplateLimitExceededException StopsWithinASecond(string template, string label)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var ex = Assert.Throws<TemplateLimitExceededException>(() => ChatTemplate.Create(template).Render([ChatMessage.User("hi")]));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{label}: {clock.Elapsed}");
        return ex;
    }

    private const string Endless = "{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}";

    [Fact]
    public void CancellationStopsARender()
    {
        var unbounded = new TemplateOptions { MaxSteps = long.MaxValue, MaxRenderTime = Timeout.InfiniteTimeSpan };
        var template = ChatTemplate.Create(Endless, options: unbounded);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.ThrowsAny<OperationCanceledException>(() => template.Render([ChatMessage.User("hi")], cancellationToken: cts.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), clock.Elapsed.ToString());
        Assert.ThrowsAny<OperationCanceledException>(() => JinjaTemplate.Parse("no work").Render(null, new CancellationToken(canceled: true)));
    }

    /// <summary>A clock that moves one second each time it is read.</summary>
    private sealed class RacingClock : TimeProvider
    {
        private long _now;

        public override long GetTimestamp() => _now += TimestampFrequency;
    }

    [Fact]
    public void TheTimeLimitStopsARender()
    {
        var options = new TemplateOptions { MaxSteps = long.MaxValue, MaxRenderTime = TimeSpan.FromSeconds(5), Clock = new RacingClock() };
        var ex = Assert.Throws<TemplateLimitExceededException>(() => JinjaTemplate.Parse(Endless, options).Render());
        Assert.Equal("The template took longer than 5 s to render (TemplateOptions.MaxRenderTime).", ex.Reason);
        Assert.Equal("ok", JinjaTemplate.Parse("ok", options).Render()); // a render too short to look at the clock
    }

    [Fact]
    public void OnlyPlainDataIsPassedIn()
    {
        var template = JinjaTemplate.Parse("{{ x }}");
        var ex = Assert.Throws<ArgumentException>(() => template.Render([new("x", new FileInfo("/etc/passwd"))]));
        Assert.Contains("FileInfo is not supported", ex.Message);
        Assert.Equal("{\"a\": [1, \"b\"]}", template.Render([new("x", new Dictionary<string, object?> { ["a"] = new object?[] { 1, "b" } })]));
    }

    [Fact]
    public void OptionsValidate()
    {
        Assert.Throws<InvalidOptionException>(() => new TemplateOptions { MaxOutputLength = 0 });
        Assert.Throws<InvalidOptionException>(() => new TemplateOptions { MaxSteps = 0 });
        Assert.Throws<InvalidOptionException>(() => new TemplateOptions { MaxDepth = 0 });
        Assert.Throws<InvalidOptionException>(() => new TemplateOptions { MaxDepth = 10_001 });
        Assert.Throws<InvalidOptionException>(() => new TemplateOptions { MaxCallDepth = 5000 });
        Assert.Throws<InvalidOptionException>(() => new TemplateOptions { MaxRenderTime = TimeSpan.Zero });
        Assert.Throws<ArgumentNullException>(() => new TemplateOptions { Clock = null! });
        Assert.Equal(Timeout.InfiniteTimeSpan, new TemplateOptions { MaxRenderTime = Timeout.InfiniteTimeSpan }.MaxRenderTime);
#pragma warning disable CS0618 // the obsolete alias still sets the one work budget
        Assert.Equal(5000, new TemplateOptions { MaxIterations = 5000 }.MaxSteps);
#pragma warning restore CS0618
        var defaults = new TemplateOptions();
        Assert.Equal((1_000_000L, 4 * 1024 * 1024, 256, 64, TimeSpan.FromSeconds(10)),
            (defaults.MaxSteps, defaults.MaxOutputLength, defaults.MaxDepth, defaults.MaxCallDepth, defaults.MaxRenderTime));
        var noTrim = new TemplateOptions { TrimBlocks = false, LStripBlocks = false };
        Assert.Equal("<\n  \n    x\n  \n>", Render("<\n  {% if true %}\n    x\n  {% endif %}\n>", options: noTrim));
    }
}
