using System.CommandLine;
using OnnxLM.Sampling;

namespace OnnxLM.Cli.Commands;

/// <summary>The sampling options generate, chat and eval share, and the <see cref="GenerationOptions"/> they make.</summary>
internal sealed class GenerationOptionSet
{
    private readonly Option<int> _maxNewTokens = new("--max-new-tokens", "-n") { Description = "Tokens to generate", DefaultValueFactory = _ => 100 };
    private readonly Option<float> _temperature = new("--temperature", "-t") { Description = "0 = greedy", DefaultValueFactory = _ => 0.8f };
    private readonly Option<int> _topK = new("--top-k") { Description = "Keep the k most likely tokens (0 = off)" };
    private readonly Option<float> _topP = new("--top-p") { Description = "Nucleus sampling threshold in (0, 1]", DefaultValueFactory = _ => 0.95f };
    private readonly Option<float> _minP = new("--min-p") { Description = "Keep tokens at least p times as likely as the top one (0 = off)" };
    private readonly Option<float> _typicalP = new("--typical-p") { Description = "Locally typical sampling mass (1 = off)", DefaultValueFactory = _ => 1f };
    private readonly Option<float> _repetitionPenalty = new("--repetition-penalty") { Description = "Hugging Face repetition penalty (1 = off)", DefaultValueFactory = _ => 1f };
    private readonly Option<float> _presencePenalty = new("--presence-penalty") { Description = "OpenAI presence penalty" };
    private readonly Option<float> _frequencyPenalty = new("--frequency-penalty") { Description = "OpenAI frequency penalty" };
    private readonly Option<int> _noRepeatNGram = new("--no-repeat-ngram-size") { Description = "Never repeat an n-gram of this size (0 = off)" };
    private readonly Option<float> _dry = new("--dry-multiplier") { Description = "DRY repetition penalty strength (0 = off)" };
    private readonly Option<float> _xtc = new("--xtc-probability") { Description = "XTC: chance of removing the top choices (0 = off)" };
    private readonly Option<int> _mirostat = new("--mirostat") { Description = "Mirostat version 1 or 2 (0 = off)" };
    private readonly Option<string[]> _stop = new("--stop") { Description = "Stop when the output contains this text (repeatable)", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string> _samplerOrder = new("--sampler-order") { Description = "Order of the sampling stages: hf or llama.cpp", DefaultValueFactory = _ => "hf" };
    private readonly Option<int?> _seed = new("--seed", "-s") { Description = "Random seed for reproducible sampling" };
    private readonly Option<string?> _regex = new("--regex") { Description = "Constrain the output to match this regular expression" };
    private readonly Option<string[]> _choice = new("--choice") { Description = "Constrain the output to one of these strings (repeatable)" };
    private readonly Option<bool> _jsonOutput = new("--json-output") { Description = "Constrain the output to a JSON object" };
    private readonly Option<string?> _jsonSchema = new("--json-schema") { Description = "Constrain the output to JSON valid against the schema in this file" };
    private readonly Option<string?> _grammar = new("--grammar") { Description = "Constrain the output to the GBNF grammar in this file (llama.cpp's format; its rule 'root')" };

    public GenerationOptionSet()
    {
        _samplerOrder.AcceptOnlyFromAmong("hf", "llama.cpp");
    }

    public Option<int> MaxNewTokens => _maxNewTokens;

    public void AddTo(Command command)
    {
        foreach (var option in (Option[])[_maxNewTokens, _temperature, _topK, _topP, _minP, _typicalP, _repetitionPenalty, _presencePenalty,
                     _frequencyPenalty, _noRepeatNGram, _dry, _xtc, _mirostat, _stop, _samplerOrder, _seed, _regex, _choice, _jsonOutput, _jsonSchema, _grammar])
        {
            command.Options.Add(option);
        }
    }

    /// <summary>The options of the command line; an out-of-range value fails as a usage error naming the option.</summary>
    public GenerationOptions Create(ParseResult parse)
    {
        try
        {
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(_maxNewTokens),
                Temperature = parse.GetValue(_temperature),
                TopK = parse.GetValue(_topK),
                TopP = parse.GetValue(_topP),
                MinP = parse.GetValue(_minP),
                TypicalP = parse.GetValue(_typicalP),
                RepetitionPenalty = parse.GetValue(_repetitionPenalty),
                PresencePenalty = parse.GetValue(_presencePenalty),
                FrequencyPenalty = parse.GetValue(_frequencyPenalty),
                NoRepeatNGramSize = parse.GetValue(_noRepeatNGram),
                DryMultiplier = parse.GetValue(_dry),
                XtcProbability = parse.GetValue(_xtc),
                Mirostat = parse.GetValue(_mirostat),
                Seed = parse.GetValue(_seed),
                SamplerOrder = parse.GetValue(_samplerOrder) == "llama.cpp" ? GenerationOptions.LlamaCppSamplerOrder : GenerationOptions.HuggingFaceSamplerOrder,
            };
            foreach (var stop in parse.GetValue(_stop) ?? []) options.StopSequences.Add(stop);
            var constraints = (parse.GetValue(_regex) is not null ? 1 : 0) + ((parse.GetValue(_choice)?.Length ?? 0) > 0 ? 1 : 0) + (parse.GetValue(_jsonOutput) ? 1 : 0)
                + (parse.GetValue(_jsonSchema) is not null ? 1 : 0) + (parse.GetValue(_grammar) is not null ? 1 : 0);
            if (constraints > 1) throw new UsageException("give at most one of --regex, --choice, --json-output, --json-schema and --grammar.");
            try
            {
                if (parse.GetValue(_regex) is { } regex) options.Constraint = Constraints.OutputConstraint.Regex(regex);
                if (parse.GetValue(_choice) is { Length: > 0 } choices) options.Constraint = Constraints.OutputConstraint.Choice(choices);
                if (parse.GetValue(_jsonOutput)) options.Constraint = Constraints.OutputConstraint.Json();
                if (parse.GetValue(_jsonSchema) is { } file)
                {
                    using var schema = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
                    options.Constraint = Constraints.OutputConstraint.JsonSchema(schema.RootElement.Clone());
                }

                if (parse.GetValue(_grammar) is { } grammar) options.Constraint = Constraints.OutputConstraint.Grammar(File.ReadAllText(grammar));
            }
            catch (InvalidOptionException e)
            {
                throw UsageException.For(e, ConstraintFlag(e.OptionName));
            }
            catch (IOException e)
            {
                throw new UsageException(e.Message);
            }
            catch (NotSupportedException e)
            {
                throw new UsageException($"--json-schema: {e.Message}");
            }

            return options;
        }
        catch (InvalidOptionException e)
        {
            throw UsageException.For(e);
        }
    }

    /// <summary>The flag that gave a constraint, from the factory parameter its compiler names.</summary>
    private static string ConstraintFlag(string parameter) => parameter switch
    {
        "pattern" => "regex",
        "choices" => "choice",
        "schema" => "json-schema",
        _ => "grammar",
    };
}
