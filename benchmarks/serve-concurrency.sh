#!/usr/bin/env bash
# 4 concurrent 64-token completions against `onnxlm serve` (kjv-tiny), 3 rounds, for each --max-concurrent setting given
# ("default" = no flag). Run from the repository root after a Release build: bash benchmarks/serve-concurrency.sh 1 default
set -u
cli=src/OnnxLM.Cli/bin/Release/net10.0/OnnxLM.Cli.dll
body='{"prompt":"In the beginning","max_tokens":64,"temperature":0}'
for setting in "$@"; do
  port=$((18000 + RANDOM % 1000))
  if [ "$setting" = default ]; then extra=(); else extra=(--max-concurrent "$setting"); fi
  dotnet "$cli" serve --urls "http://127.0.0.1:$port" "${extra[@]}" > /tmp/serve-$port.log 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break; sleep 0.2; done
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port/v1/completions"  # warm-up
  for round in 1 2 3; do
    start=$(date +%s.%N)
    clients=()
    for i in 1 2 3 4; do curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port/v1/completions" & clients+=($!); done
    wait "${clients[@]}"
    end=$(date +%s.%N)
    printf '%s round %d: %.2f s\n' "$setting" "$round" "$(echo "$end - $start" | bc)"
  done
  kill $pid; wait $pid 2>/dev/null
done
