#!/usr/bin/env bash
# Writes a GroupQueryAttention copy of models/kjv-tiny to build/work/kjv-tiny-gqa (git-ignored): the same fp16 weights,
# read back from the committed graph, with each layer's attention one com.microsoft.GroupQueryAttention node, so OnnxLM
# (and ONNX Runtime GenAI) append to one shared cache buffer in place. Extra arguments go to convert (e.g. --quantize int4,
# with a different output: OUT=build/work/kjv-tiny-gqa-int4).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-build/work/kjv-tiny-gqa}
dotnet run --project src/OnnxLM.Cli -c Release -- convert models/kjv-tiny "$out" --attention gqa --dtype fp16 --context-length 256 "$@"
