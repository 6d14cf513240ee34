#!/usr/bin/env bash
# Issue 29's `scale` benchmark in one command: writes the random-weight checkpoints that are missing
# (build/make-checkpoint.cs), converts the ONNX folders that are missing (onnxlm convert: <checkpoint>-fp32, -fp16, -int4),
# then runs `OnnxLM.Benchmarks scale` per checkpoint (it writes the GGUF files it needs beside them, <checkpoint>-gguf/),
# printing markdown tables; each family's output is also kept in <models>/<family>-scale.md.
#   benchmarks/scale.sh                       # Qwen2.5-0.5B shape, then Llama-3.2-1B shape
#   benchmarks/scale.sh qwen2.5-0.5b          # one family
# Environment: SCALE_MODELS (folder of checkpoints and conversions; default build/work/scale-models), THREADS (2),
# ROUNDS (3), PRECISIONS (fp32,fp16,int4), ATTENTION (convert's --attention: auto, the default, writes GroupQueryAttention
# at these sizes; standard for the standard-operator graphs), SCALE_ARGS (more options for the benchmark: --long 1024 --decode 64 ...).
# Steps that need more than 3 GiB run under flock /tmp/bigmem.lock when flock exists (one such job machine-wide).
# Disk: about 13 GB for the 0.5B family and 25 GB for the 1B family (checkpoint, three ONNX folders, three GGUF files).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
models=${SCALE_MODELS:-$root/build/work/scale-models}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
precisions=${PRECISIONS:-fp32,fp16,int4}
families=("$@")
[ ${#families[@]} -eq 0 ] && families=(qwen2.5-0.5b llama-3.2-1b)

heavy() { if command -v flock > /dev/null; then flock /tmp/bigmem.lock "$@"; else "$@"; fi; }

dotnet build "$root/src/OnnxLM.Cli" -c Release --nologo -v quiet > /dev/null
dotnet build "$root/benchmarks/OnnxLM.Benchmarks" -c Release --nologo -v quiet > /dev/null
cli="$root/src/OnnxLM.Cli/bin/Release/net10.0/OnnxLM.Cli.dll"
bench="$root/benchmarks/OnnxLM.Benchmarks/bin/Release/net10.0/OnnxLM.Benchmarks.dll"
mkdir -p "$models"

for family in "${families[@]}"; do
  checkpoint="$models/$family-random"
  if [ ! -f "$checkpoint/config.json" ]; then
    echo "writing $checkpoint" >&2
    dotnet run "$root/build/make-checkpoint.cs" -- "$family" "$checkpoint" >&2
  fi
  for precision in ${precisions//,/ }; do
    folder="$checkpoint-$precision"
    [ -f "$folder/genai_config.json" ] && continue
    case "$precision" in
      fp32) options=() ;;
      fp16) options=(--dtype fp16) ;;
      int4) options=(--quantize int4 --block-size 32) ;;
      *) echo "unknown precision $precision (fp32, fp16, int4)" >&2; exit 2 ;;
    esac
    echo "converting $folder" >&2
    heavy dotnet "$cli" convert "$checkpoint" "$folder" --attention "${ATTENTION:-auto}" "${options[@]}" >&2
  done
  # shellcheck disable=SC2086
  heavy dotnet "$bench" scale "$checkpoint" --threads "$threads" --rounds "$rounds" --precisions "$precisions" ${SCALE_ARGS:-} \
    | tee "$models/$family-scale.md"
done
