using System.Text.Json;

namespace OnnxLM.Chat;

/// <summary>
/// A model's chat template: the Jinja template in its tokenizer_config.json (one string, or named templates such
/// as <c>default</c> and <c>tool_use</c>), a <c>chat_template.jinja</c> or <c>chat_template.json</c> file, rendered
/// with the model's special tokens the way transformers' <c>apply_chat_template</c> does. Parsed once; thread-safe.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The name of the template used when no other applies.</summary>
    public const string DefaultName = "default";

    /// <summary>The name of the template transformers picks when tools are passed and the model has one by that name.</summary>
    public const string ToolUseName = "tool_use";

    /// <summary>
    /// The template of models that have none (kjv-tiny): an optional system text, then <c>User: …</c> and
    /// <c>Assistant: …</c> lines, and <c>Assistant:</c> as the generation prompt. Contents are trimmed, so a reply
    /// generated after "Assistant:" (which starts with its space) renders back as the same tokens.
    /// </summary>
    public const string PlainSource =
        "{% for message in messages %}" +
        "{% if message.role == 'system' %}{{ message.content | trim }}\n\n" +
        "{% elif message.role == 'user' %}User: {{ message.content | trim }}\n" +
        "{% elif message.role == 'assistant' %}Assistant: {{ message.content | trim }}\n" +
        "{% else %}{{ message.role | capitalize }}: {{ message.content | trim }}\n{% endif %}" +
        "{% endfor %}" +
        "{% if add_generation_prompt %}Assistant:{% endif %}";

    /// <summary>The string attributes of transformers' <c>special_tokens_map</c>, in its order.</summary>
    private static readonly string[] SpecialTokenNames = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    private readonly IReadOnlyDictionary<string, JinjaTemplate> _templates;

    private ChatTemplate(IReadOnlyDictionary<string, JinjaTemplate> templates, IReadOnlyDictionary<string, string> specialTokens, string? origin)
    {
        _templates = templates;
        SpecialTokens = specialTokens;
        Origin = origin;
    }

    /// <summary>The names of the templates (<c>default</c>, and e.g. <c>tool_use</c>, <c>rag</c>).</summary>
    public IReadOnlyCollection<string> Names => (IReadOnlyCollection<string>)_templates.Keys;

    /// <summary>The source of the default template.</summary>
    public string Source => _templates[DefaultName].Source;

    /// <summary>
    /// The special-token variables the template is rendered with, those of transformers' <c>special_tokens_map</c>:
    /// <c>bos_token</c>, <c>eos_token</c>, <c>unk_token</c>, <c>sep_token</c>, <c>pad_token</c>, <c>cls_token</c>,
    /// <c>mask_token</c> where the model has them (an AddedToken object in the files gives its <c>content</c>).
    /// </summary>
    public IReadOnlyDictionary<string, string> SpecialTokens { get; }

    /// <summary>Where the template was read from (a file path), or null for one made from a string.</summary>
    public string? Origin { get; }

    /// <summary>
    /// Whether the default template loops over a message's <c>content</c> (<c>for part in message['content']</c>), so it
    /// takes content as a list of parts (<see cref="ChatMessage.ContentParts"/>), as Gemma-3's and multimodal templates
    /// do; false for templates that take content as a string. Servers read it to pass OpenAI content parts as parts or
    /// as joined text, as vLLM's automatic content format does.
    /// </summary>
    public bool ReadsContentParts => _templates[DefaultName].LoopsOver("content");

    /// <summary>The template for models without one (<see cref="PlainSource"/>).</summary>
    public static ChatTemplate Plain { get; } = Create(PlainSource);

    /// <summary>Makes a chat template from its source.</summary>
    /// <param name="source">The Jinja template.</param>
    /// <param name="specialTokens">Variables such as <c>bos_token</c> and <c>eos_token</c> (null for none).</param>
    /// <param name="options">Parsing settings and render bounds; null for transformers' settings.</param>
    /// <exception cref="TemplateSyntaxException">The template is not valid.</exception>
    /// <exception cref="TemplateLimitExceededException">The template nests deeper than <see cref="TemplateOptions.MaxDepth"/>.</exception>
    public static ChatTemplate Create(string source, IReadOnlyDictionary<string, string>? specialTokens = null, TemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ChatTemplate(new Dictionary<string, JinjaTemplate> { [DefaultName] = JinjaTemplate.Parse(source, options) },
            specialTokens ?? new Dictionary<string, string>(), null);
    }

    /// <summary>This template with <paramref name="defaults"/> added for the special tokens it does not already have.</summary>
    internal ChatTemplate WithDefaultTokens(IReadOnlyDictionary<string, string> defaults)
    {
        var tokens = new Dictionary<string, string>(defaults);
        foreach (var (name, value) in SpecialTokens) tokens[name] = value;
        return new ChatTemplate(_templates, tokens, Origin);
    }

    /// <summary>Whether <paramref name="folder"/> has a chat template (<see cref="FromFolder"/> would find one).</summary>
    public static bool Exists(string folder) =>
        File.Exists(Path.Combine(folder, "chat_template.jinja")) || File.Exists(Path.Combine(folder, "chat_template.json"))
        || (File.Exists(Path.Combine(folder, "tokenizer_config.json")) && ReadConfig(Path.Combine(folder, "tokenizer_config.json")).TryGetProperty("chat_template", out var t)
            && t.ValueKind is JsonValueKind.String or JsonValueKind.Array);

    /// <summary>
    /// Reads the chat template of a model or tokenizer folder: <c>chat_template.jinja</c>, else <c>chat_template.json</c>,
    /// else the <c>chat_template</c> of <c>tokenizer_config.json</c>; special tokens from tokenizer_config.json, overridden
    /// by <c>special_tokens_map.json</c> where it names them (as transformers loads them), each a string or an object with <c>content</c>.
    /// </summary>
    /// <returns>The template, or null when the folder has none.</returns>
    /// <exception cref="ModelFormatException">A file is unreadable or its chat template field has the wrong shape.</exception>
    /// <exception cref="TemplateSyntaxException">The template is not valid Jinja.</exception>
    /// <exception cref="TemplateLimitExceededException">The template nests deeper than <see cref="TemplateOptions.MaxDepth"/>.</exception>
    public static ChatTemplate? FromFolder(string folder, TemplateOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        var config = File.Exists(configPath) ? ReadConfig(configPath) : default;
        var tokens = new Dictionary<string, string>();
        var mapPath = Path.Combine(folder, "special_tokens_map.json");
        foreach (var source in (JsonElement[])[config, File.Exists(mapPath) ? ReadConfig(mapPath) : default])
        {
            if (source.ValueKind != JsonValueKind.Object) continue;
            foreach (var name in SpecialTokenNames)
            {
                if (source.TryGetProperty(name, out var token) && TokenText(token) is { } text) tokens[name] = text;
            }
        }

        var jinjaFile = Path.Combine(folder, "chat_template.jinja");
        var jsonFile = Path.Combine(folder, "chat_template.json");
        JsonElement field;
        string origin;
        if (File.Exists(jinjaFile))
        {
            return new ChatTemplate(new Dictionary<string, JinjaTemplate> { [DefaultName] = Parse(ReadText(jinjaFile), jinjaFile, options) }, tokens, jinjaFile);
        }

        if (File.Exists(jsonFile))
        {
            origin = jsonFile;
            if (!ReadConfig(jsonFile).TryGetProperty("chat_template", out field))
            {
                throw new ModelFormatException($"Chat template file '{jsonFile}' has no 'chat_template' field.", jsonFile);
            }
        }
        else if (config.ValueKind == JsonValueKind.Object && config.TryGetProperty("chat_template", out field) && field.ValueKind != JsonValueKind.Null)
        {
            origin = configPath;
        }
        else
        {
            return null;
        }

        return new ChatTemplate(ParseField(field, origin, options), tokens, origin);
    }

    /// <summary>The string form, or the list of <c>{"name", "template"}</c> that tokenizer_config.json allows.</summary>
    private static Dictionary<string, JinjaTemplate> ParseField(JsonElement field, string origin, TemplateOptions? options)
    {
        var templates = new Dictionary<string, JinjaTemplate>(StringComparer.Ordinal);
        if (field.ValueKind == JsonValueKind.String)
        {
            templates[DefaultName] = Parse(field.GetString()!, origin, options);
            return templates;
        }

        if (field.ValueKind != JsonValueKind.Array)
        {
            throw new ModelFormatException($"'{origin}': chat_template must be a string or a list of {{\"name\", \"template\"}}, not {field.ValueKind}.", origin);
        }

        foreach (var entry in field.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                || !entry.TryGetProperty("template", out var template) || template.ValueKind != JsonValueKind.String)
            {
                throw new ModelFormatException($"'{origin}': every entry of chat_template must have a string 'name' and 'template'.", origin);
            }

            templates[name.GetString()!] = Parse(template.GetString()!, $"{origin} ({name.GetString()})", options);
        }

        if (!templates.ContainsKey(DefaultName))
        {
            if (templates.Count == 0) throw new ModelFormatException($"'{origin}': chat_template is an empty list.", origin);
            templates[DefaultName] = templates.Values.First();
        }

        return templates;
    }

    private static JinjaTemplate Parse(string source, string origin, TemplateOptions? options)
    {
        try
        {
            return JinjaTemplate.Parse(source, options);
        }
        catch (TemplateSyntaxException ex)
        {
            throw new TemplateSyntaxException($"{ex.Reason} In the chat template of '{origin}'.", ex.Line, ex.Column);
        }
        catch (TemplateLimitExceededException ex)
        {
            throw new TemplateLimitExceededException($"{ex.Reason} In the chat template of '{origin}'.", ex.Line, ex.Column);
        }
    }

    private static string ReadText(string path)
    {
        try
        {
            return ModelFile.ReadAllText(path, ModelFile.MaxConfigBytes);
        }
        catch (IOException ex)
        {
            throw new ModelFormatException($"Cannot read '{path}': {ex.Message}", path, ex);
        }
    }

    private static JsonElement ReadConfig(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(ReadText(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            return doc.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException($"'{path}' is not valid JSON: {ex.Message}", path, ex);
        }
    }

    /// <summary>A special token as tokenizer_config.json writes it: a string, or an AddedToken object with <c>content</c>.</summary>
    private static string? TokenText(JsonElement token) => token.ValueKind switch
    {
        JsonValueKind.String => token.GetString(),
        JsonValueKind.Object when token.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => null,
    };

    /// <summary>
    /// Renders a conversation into the prompt text the model was trained on, as transformers' <c>apply_chat_template</c>
    /// (<c>tokenize=False</c>), with its defaults: no generation prompt unless asked, and with tools (even an empty
    /// list) the <c>tool_use</c> template when the model has one.
    /// </summary>
    /// <remarks>
    /// The template sees the variables transformers gives it: the special tokens (<see cref="SpecialTokens"/>),
    /// <c>messages</c>, <c>tools</c> (the list, empty included, or <c>none</c> when <paramref name="tools"/> is null),
    /// <c>documents</c> (<c>none</c>), <c>add_generation_prompt</c>, then <paramref name="variables"/>, which may set any
    /// of them. <c>add_generation_prompt</c> defaults to false here, as in transformers (earlier OnnxLM versions defaulted to true);
    /// <see cref="LanguageModel.ApplyChatTemplate"/>, <see cref="LanguageModel.EncodeChat"/> and the chat methods,
    /// which prompt the model for a reply, still add it.
    /// </remarks>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">End with the header that starts the assistant's reply (<c>add_generation_prompt</c>); default false, as transformers.</param>
    /// <param name="tools">Tools the model may call (<c>tools</c>), or null for none (the template sees <c>none</c>).</param>
    /// <param name="variables">More template variables (<c>enable_thinking</c>, <c>documents</c>, <c>date_string</c>…), or null.</param>
    /// <param name="clock">The clock <c>strftime_now</c> reads for this render, in <see cref="TemplateOptions.TimeZone"/>; null for <see cref="TemplateOptions.Clock"/>.</param>
    /// <param name="cancellationToken">Stops the render with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="ArgumentException">A message or tool is null or inconsistent (both content and content parts, an extra field repeating an own one).</exception>
    /// <exception cref="TemplateRaisedException">The template refused the conversation (its own message, e.g. roles that do not alternate).</exception>
    /// <exception cref="TemplateLimitExceededException">Rendering went past a bound of <see cref="TemplateOptions"/> (steps, output, depth, time).</exception>
    /// <exception cref="TemplateException">Rendering failed.</exception>
    public string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt = false, IEnumerable<ChatTool>? tools = null,
        IReadOnlyDictionary<string, object?>? variables = null, TimeProvider? clock = null, CancellationToken cancellationToken = default) =>
        Render(messages, addGenerationPrompt, tools, variables, clock, cancellationToken, out _);

    /// <summary>
    /// <see cref="Render(IEnumerable{ChatMessage}, bool, IEnumerable{ChatTool}?, IReadOnlyDictionary{string, object?}?, TimeProvider?, CancellationToken)"/>,
    /// handing back the interpreter whose counters tell what the render used.
    /// </summary>
    internal string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt, IEnumerable<ChatTool>? tools,
        IReadOnlyDictionary<string, object?>? variables, TimeProvider? clock, CancellationToken cancellationToken, out Jinja.Interpreter interpreter)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var toolList = tools?.Select(t => (object?)(t ?? throw new ArgumentException("tools contains null.", nameof(tools))).ToTemplateValue()).ToList();
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, token) in SpecialTokens) values[name] = token;
        values["messages"] = messages.Select(m => (object?)(m ?? throw new ArgumentException("messages contains null.", nameof(messages))).ToTemplateValue()).ToList();
        values["tools"] = toolList;
        values["documents"] = null;
        values["add_generation_prompt"] = addGenerationPrompt;
        if (variables is not null)
        {
            foreach (var (name, value) in variables) values[name] = value;
        }

        var template = toolList is not null && _templates.TryGetValue(ToolUseName, out var toolUse) ? toolUse : _templates[DefaultName];
        return template.Render(values, clock, cancellationToken, out interpreter);
    }

    /// <summary>Renders with the template named <paramref name="name"/> and exactly the given variables (for templates that take other inputs).</summary>
    /// <exception cref="KeyNotFoundException">There is no template of that name (see <see cref="Names"/>).</exception>
    /// <exception cref="TemplateException">Rendering failed, or went past a bound.</exception>
    public string RenderNamed(string name, IReadOnlyDictionary<string, object?> variables, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(variables);
        if (!_templates.TryGetValue(name, out var template))
        {
            throw new KeyNotFoundException($"The chat template has no template named '{name}'; it has {string.Join(", ", _templates.Keys)}.");
        }

        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, token) in SpecialTokens) values[key] = token;
        foreach (var (key, value) in variables) values[key] = value;
        return template.Render(values, cancellationToken);
    }
}
