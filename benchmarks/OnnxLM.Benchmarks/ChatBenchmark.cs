using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OnnxLM;
using OnnxLM.Chat;

/// <summary>
/// chat-template: (1) render time of a 6-message tool-calling conversation with real templates, OnnxLM's engine and
/// @huggingface/jinja (node, build/fixtures/bench_chat_templates.js) side by side on the same variables, renders
/// checked equal; (2) prefill tokens a 10-turn ChatSession on kjv-tiny saves by reusing its cache, and its time
/// against prefilling every turn from scratch.
/// </summary>
internal static class ChatBenchmark
{
    private const int Runs = 2000;

    public static async Task<int> RunAsync()
    {
        var root = Benchmarks.RepoRoot();
        RenderTimes(root);
        await CacheReuseAsync(root);
        return 0;
    }

    private static readonly JsonElement Tools = JsonDocument.Parse("""
        [{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city.",
          "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}},
         {"type": "function", "function": {"name": "get_time", "description": "Current time in a time zone.",
          "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}]
        """).RootElement;

    private static List<ChatMessage> Conversation() =>
    [
        ChatMessage.System("You are a helpful assistant that can call tools."),
        ChatMessage.User("What is the weather in Paris?"),
        ChatMessage.Assistant("", new ChatToolCall("get_weather", JsonDocument.Parse("{\"location\": \"Paris, France\", \"unit\": \"celsius\"}").RootElement, "call12345")),
        ChatMessage.Tool("{\"temperature\": 21, \"sky\": \"clear\"}", "call12345", "get_weather"),
        ChatMessage.Assistant("It is 21 °C and clear in Paris."),
        ChatMessage.User("And what time is it there?"),
    ];

    private static void RenderTimes(string root)
    {
        var nodeModules = Path.Combine(root, "build", "fixtures", "node_modules");
        var templates = new List<(string Name, string Path)>
        {
            ("qwen2.5", Path.Combine(root, "tests", "data", "chat-templates", "qwen2.5", "chat_template.jinja")),
            ("mistral-v0.3", Path.Combine(root, "tests", "data", "chat-templates", "mistral-v0.3", "chat_template.jinja")),
            ("qwen3", Path.Combine(root, "tests", "data", "chat-templates", "qwen3", "chat_template.jinja")),
            ("granite", Path.Combine(root, "tests", "data", "chat-templates", "granite", "chat_template.jinja")),
            ("llama3.1", Path.Combine(nodeModules, ".chat-templates", "llama3.1.jinja")),
        };
        templates.RemoveAll(t => !File.Exists(t.Path));
        var tools = Tools.EnumerateArray().Select(t => t.GetProperty("function"))
            .Select(f => new ChatTool(f.GetProperty("name").GetString()!, f.GetProperty("description").GetString(), f.GetProperty("parameters"))).ToList();
        var messages = Conversation();
        var variables = new Dictionary<string, object?> { ["date_string"] = "05 Jan 2026" };
        var tokens = new Dictionary<string, string> { ["bos_token"] = "<s>", ["eos_token"] = "</s>" };

        // The same variables for the reference, as transformers passes them.
        var probe = ChatTemplate.Create("{{ {'messages': messages, 'tools': tools, 'add_generation_prompt': add_generation_prompt, 'bos_token': bos_token, 'eos_token': eos_token, 'date_string': date_string} | tojson }}", tokens);
        var referenceVariables = JsonDocument.Parse(probe.Render(messages, true, tools, variables)).RootElement;
        var input = Path.GetTempFileName();
        File.WriteAllText(input, JsonSerializer.Serialize(templates.Select(t => new { name = t.Name, template = File.ReadAllText(t.Path), variables = referenceVariables })));

        var reference = new Dictionary<string, (double Us, double ParseUs, string Hash)>();
        try
        {
            var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, WorkingDirectory = Path.Combine(root, "build", "fixtures") };
            foreach (var a in (string[])["bench_chat_templates.js", input, Runs.ToString(CultureInfo.InvariantCulture)]) start.ArgumentList.Add(a);
            using var node = Process.Start(start)!;
            for (var line = node.StandardOutput.ReadLine(); line is not null; line = node.StandardOutput.ReadLine())
            {
                var parts = line.Split(' ');
                reference[parts[0]] = (double.Parse(parts[1], CultureInfo.InvariantCulture), double.Parse(parts[2], CultureInfo.InvariantCulture), parts[3]);
            }

            node.WaitForExit();
        }
        finally
        {
            File.Delete(input);
        }

        Console.WriteLine($"render: 6 messages (system, user, assistant tool call, tool result, assistant, user), 2 tools; median of {Runs} renders after a warm-up; {Environment.ProcessorCount} cores; .NET {Environment.Version}");
        Console.WriteLine();
        Console.WriteLine("| template | chars | OnnxLM parse µs | OnnxLM render µs | @huggingface/jinja parse µs | @huggingface/jinja render µs | ratio (jinja/OnnxLM render) | same text |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---|");
        foreach (var (name, path) in templates)
        {
            var source = File.ReadAllText(path);
            var clock = Stopwatch.StartNew();
            var template = ChatTemplate.Create(source, tokens);
            var parseUs = clock.Elapsed.TotalMicroseconds;
            var text = template.Render(messages, true, tools, variables);
            var times = new double[Runs];
            for (var i = 0; i < Runs; i++)
            {
                clock.Restart();
                text = template.Render(messages, true, tools, variables);
                times[i] = clock.Elapsed.TotalMicroseconds;
            }

            Array.Sort(times);
            var median = times[Runs / 2];
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
            var (refUs, refParse, refHash) = reference.GetValueOrDefault(name, (double.NaN, double.NaN, ""));
            Console.WriteLine(FormattableString.Invariant(
                $"| {name} | {source.Length} | {parseUs:F0} | {median:F1} | {refParse:F0} | {refUs:F1} | {refUs / median:F2}x | {(hash == refHash ? "yes" : "NO")} |"));
        }

        Console.WriteLine();
    }

    private static async Task CacheReuseAsync(string root)
    {
        using var model = LanguageModel.Load(Path.Combine(root, "models", "kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        string[] turns =
        [
            "In the beginning", "And God said", "Let there be light", "And the evening and the morning", "And God made the firmament",
            "And the LORD spake unto Moses", "Thou shalt not", "Blessed are the meek", "The LORD is my shepherd", "And it came to pass",
        ];
        var options = new GenerationOptions { Temperature = 0, MaxNewTokens = 8 }; // 10 turns fit kjv-tiny's 256-token context
        var sessionOptions = new ChatSessionOptions { SystemPrompt = "The words of the King James Bible.", Overflow = ChatOverflow.Throw };

        // Warm up both paths once.
        using (var warm = model.CreateChat(sessionOptions)) await warm.SendAsync(turns[0], options);
        await model.GenerateAsync(model.EncodeChat([ChatMessage.User(turns[0])]), options);

        using var chat = model.CreateChat(sessionOptions);
        var (prompted, prefilled) = (0, 0);
        var clock = Stopwatch.StartNew();
        var prompts = new List<int[]>();
        Console.WriteLine("| turn | prompt tokens | reused from cache | prefilled |");
        Console.WriteLine("|---:|---:|---:|---:|");
        for (var i = 0; i < turns.Length; i++)
        {
            prompts.Add(model.EncodeChat([.. chat.Messages, ChatMessage.User(turns[i])]));
            var reply = await chat.SendAsync(turns[i], options);
            (prompted, prefilled) = (prompted + reply.PromptTokenCount, prefilled + reply.PrefilledTokenCount);
            Console.WriteLine($"| {i + 1} | {reply.PromptTokenCount} | {reply.ReusedTokenCount} | {reply.PrefilledTokenCount} |");
        }

        var sessionTime = clock.Elapsed;
        clock.Restart();
        foreach (var prompt in prompts) await model.GenerateAsync(prompt, options);
        var freshTime = clock.Elapsed;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"10 turns, greedy, 8 new tokens each: {prompted} prompt tokens, {prefilled} prefilled ({100.0 * (prompted - prefilled) / prompted:F0} % saved); ChatSession {sessionTime.TotalMilliseconds:F0} ms vs a fresh prefill per turn {freshTime.TotalMilliseconds:F0} ms ({freshTime / sessionTime:F2}x)"));
    }
}
