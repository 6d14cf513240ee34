#!/usr/bin/env bash
# Builds models/kjv-tiny from scratch: KJV text -> BPE tokenizer (C#) -> PyTorch training -> ONNX (C# ModelBuilder).
# Needs Debian packages: bible-kjv python3-torch libopenblas0-pthread (apt-get install -y ...). About an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=build/work
minutes=${MINUTES:-55}

/usr/bin/python3 build/train-default-model/prepare_data.py "$work/data"
dotnet run --project src/OnnxLM.ModelBuilder -c Release -- train-bpe "$work/data/train.txt" "$work/tok4096" --vocab-size 4096 \
  --special "<s>,</s>" --encode "$work/data/train.txt" "$work/data/train.bin" --encode "$work/data/heldout.txt" "$work/data/heldout.bin"
nice -n 5 /usr/bin/python3 build/train-default-model/train.py "$work/data" "$work/tok4096" "$work/kjv-tiny-hf" --minutes "$minutes" | tee "$work/train.log"
dotnet run --project src/OnnxLM.ModelBuilder -c Release -- "$work/kjv-tiny-hf" models/kjv-tiny --context-length 256
cp "$work/kjv-tiny-hf/train_log.csv" "$work/kjv-tiny-hf/summary.json" models/kjv-tiny/
