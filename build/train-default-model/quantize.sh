#!/usr/bin/env bash
# Writes int8 and int4 copies of models/kjv-tiny to build/work/kjv-tiny-int8 and -int4 (git-ignored). They are not
# committed: models/ has a 25 MB budget and kjv-tiny alone is 20 MB. The weights are read back from the committed
# fp16 graph (its training checkpoint is not committed); from a checkpoint, give its folder instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
source=${1:-models/kjv-tiny}
for q in int8 int4; do
  dotnet run --project src/OnnxLM.Cli -c Release -- convert "$source" "build/work/kjv-tiny-$q" --quantize "$q" --dtype fp16 --context-length 256
done
