using System.CommandLine;
using Microsoft.ML.OnnxRuntime;
using Spectre.Console;

namespace OnnxLM.Cli.Commands;

/// <summary><c>onnxlm inspect</c>: what a model folder holds — configuration, graph inputs and outputs, provider, parameters, tokenizer, chat template.</summary>
internal static class InspectCommand
{
    public static Command Create(CliContext cli)
    {
        var json = new Option<bool>("--json") { Description = "Print the report as JSON" };
        var command = new Command("inspect", "Describe a model: configuration, graph inputs/outputs, provider, parameters, tokenizer and chat template") { json };
        command.SetAction((parse, ct) => cli.RunAsync(parse, () =>
        {
            using var model = cli.LoadModel(parse);
            var info = model.Info;
            using var explainer = model.Explain();
            var breakdown = explainer.Parameters();
            var (parameters, initializers, learned) = (breakdown.Total, breakdown.Groups.Sum(g => g.Tensors), Learned(breakdown));
            var inputs = info.GraphInputs.Select(p => Describe(p.Key, p.Value)).ToList();
            var outputs = info.GraphOutputs.Select(p => Describe(p.Key, p.Value)).ToList();
            var tokenizer = model.HasTokenizer ? model.Tokenizer : null;
            var template = model.HasChatTemplate ? model.ChatTemplate : null;
            var report = new
            {
                architecture = info.Architecture,
                layout = info.FolderLayout.ToString(),
                dtype = info.Dtype,
                variant = info.Variant,
                extra_inputs = info.ExtraInputs,
                graph = info.GraphPath,
                provider = info.ExecutionProvider.ToString(),
                parameters,
                learned_parameters = learned,
                initializers,
                weight_type = info.WeightType,
                weight_bytes = breakdown.Bytes,
                bytes_per_parameter = Math.Round(breakdown.BytesPerParameter, 4),
                layers = info.LayerCount,
                attention_heads = info.AttentionHeadCount,
                kv_heads = info.KeyValueHeadCount,
                head_size = info.HeadSize,
                hidden_size = info.HiddenSize,
                vocabulary_size = info.VocabularySize,
                context_length = info.ContextLength,
                kv_cache = $"{info.KvCacheLayout}, {info.KvCacheDataType}",
                bos_token_id = info.BosTokenId,
                eos_token_ids = info.EosTokenIds,
                inputs = inputs.Select(i => new { name = i.Name, type = i.Type, shape = i.Shape }),
                outputs = outputs.Select(o => new { name = o.Name, type = o.Type, shape = o.Shape }),
                tokenizer = tokenizer is null ? null : new { vocabulary_size = tokenizer.VocabularySize, bos = tokenizer.BosTokenId, eos = tokenizer.EosTokenIds, special_tokens = tokenizer.SpecialTokens.Count },
                chat_template = template is null ? null : new { origin = template.Origin, names = template.Names, end_of_turn_token_ids = model.EndOfTurnTokenIds },
            };
            if (parse.GetValue(json))
            {
                cli.Output.WriteLine(CliContext.ToJson(report));
                return Task.FromResult(0);
            }

            var table = new Table().AddColumn("").AddColumn("").HideHeaders().Border(TableBorder.Rounded);
            void Row(string key, object? value) => table.AddRow(new Text(key), new Text(value?.ToString() ?? "–"));
            Row("architecture", info.Architecture);
            Row("layout", info.FolderLayout);
            if (info.Dtype is not null) Row("dtype", info.Dtype);
            if (info.Variant is not null) Row("variant", info.Variant);
            Row("graph", info.GraphPath);
            if (info.ExtraInputs.Count > 0) Row("extra inputs fed", string.Join(", ", info.ExtraInputs));
            Row("provider", info.ExecutionProvider);
            Row("parameters", $"{learned:N0} learned + {parameters - learned:N0} in position tables and constants = {parameters:N0} values in {initializers} initializers");
            Row("weights", FormattableString.Invariant($"{info.WeightType}: {breakdown.Bytes / 1e6:F1} MB stored, {breakdown.BytesPerParameter:F3} bytes per parameter"));
            Row("layers / heads / kv heads", $"{info.LayerCount} / {info.AttentionHeadCount} / {info.KeyValueHeadCount} (head size {info.HeadSize}, hidden {info.HiddenSize})");
            Row("vocabulary / context", $"{info.VocabularySize} / {info.ContextLength}");
            Row("kv cache", report.kv_cache);
            Row("bos / eos", $"{info.BosTokenId?.ToString() ?? "–"} / {string.Join(", ", info.EosTokenIds)}");
            Row("tokenizer", tokenizer is null ? "none" : $"{tokenizer.VocabularySize} tokens, {tokenizer.SpecialTokens.Count} special");
            Row("chat template", template is null ? "none (the plain User:/Assistant: one is used)" : $"{template.Origin} ({string.Join(", ", template.Names)})");
            cli.Console.Write(table);
            var graph = new Table().AddColumn("graph input / output").AddColumn("type").AddColumn("shape").Border(TableBorder.Simple);
            foreach (var (name, type, shape) in inputs) graph.AddRow(new Text($"in  {name}"), new Text(type), new Text(shape));
            foreach (var (name, type, shape) in outputs) graph.AddRow(new Text($"out {name}"), new Text(type), new Text(shape));
            cli.Console.Write(graph);
            return Task.FromResult(0);
        }));
        return command;
    }

    /// <summary>
    /// The learned parameters: every initializer value but the position tables (rotary cos/sin caches) and constants
    /// the exporter stored in the graph. Model cards count these (a tied output projection once); <c>parameters</c> counts
    /// every stored value, as the file holds them.
    /// </summary>
    internal static long Learned(OnnxLM.Explain.ParameterBreakdown breakdown) =>
        breakdown.Total - breakdown.Groups.Where(g => g.Component.StartsWith("other", StringComparison.Ordinal)).Sum(g => g.Count);

    private static (string Name, string Type, string Shape) Describe(string name, NodeMetadata metadata) =>
        (name, metadata.ElementDataType.ToString(),
         "[" + string.Join(", ", metadata.Dimensions.Select((d, i) => d >= 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture)
             : metadata.SymbolicDimensions.ElementAtOrDefault(i) is { Length: > 0 } symbol ? symbol : "?")) + "]");
}
