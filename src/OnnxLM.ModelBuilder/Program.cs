using OnnxLM.ModelBuilder.Conversion;
using OnnxLM.ModelBuilder.Tokenization;

// dotnet run --project src/OnnxLM.ModelBuilder -- <hf-folder> <out-folder> [options]   converts a checkpoint
// dotnet run --project src/OnnxLM.ModelBuilder -- train-bpe <corpus> <out-folder> [options]   trains a tokenizer
return args is ["train-bpe", ..]
    ? TrainBpeCommand.Run(args[1..])
    : ConvertCommand.Run(args);
