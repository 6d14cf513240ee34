#!/usr/bin/env bash
# Cache-aware routing against round robin on the same workload: 3 `onnxlm serve` replicas (kjv-tiny) behind
# `onnxlm gateway`, 30 conversations of 4 chat turns (8 new tokens a turn), 5 conversations at a time (WORKERS); prints each
# mode's cache hit rate (cached_tokens / prompt_tokens), prefill tokens saved, wall time and turns per second. Then the
# gateway's added latency: the same small request (GET /v1/models and a 1-token chat) 300 times straight to a replica and
# 300 times through the gateway, p50/p99 of curl's time_total. Run from the repository root after a Release build:
#   bash benchmarks/gateway.sh [conversations] [turns]
set -u
cli=src/OnnxLM.Cli/bin/Release/net10.0/OnnxLM.Cli.dll
conversations=${1:-30}
turns=${2:-4}
workers=${WORKERS:-5}
base=$((20000 + RANDOM % 500 * 10))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 150); do curl -sf "$1/health" > /dev/null 2>&1 && return 0; sleep 0.2; done; echo "$1 did not start"; exit 1; }

replicas=()
for i in 0 1 2; do
  url="http://127.0.0.1:$((base + 1 + i))"
  dotnet "$cli" serve --urls "$url" > "/tmp/gw-replica-$i.log" 2>&1 & pids+=($!)
  replicas+=("$url")
done
for url in "${replicas[@]}"; do wait_up "$url"; done

# One conversation: turns chat turns, each appending the reply and a new question; one line per turn: backend prompt cached seconds.
conversation() { # gateway id
  local gw=$1 id=$2 messages reply out
  messages=$(jq -nc --arg q "Tell me of the light of the land, part $id." '[{role:"system",content:"You answer in the words of the King James Bible."},{role:"user",content:$q}]')
  for t in $(seq 1 "$turns"); do
    out=$(curl -s -D /tmp/gw-h-$$-$id -w '\n%{time_total}' -H 'Content-Type: application/json' \
      -d "$(jq -nc --argjson m "$messages" '{messages:$m,max_tokens:8,temperature:0}')" "$gw/v1/chat/completions")
    local body time backend
    body=$(echo "$out" | head -n -1); time=$(echo "$out" | tail -n 1)
    backend=$(grep -i '^x-onnxlm-backend:' /tmp/gw-h-$$-$id | tr -d '\r' | cut -d' ' -f2)
    echo "$backend $(echo "$body" | jq -r '"\(.usage.prompt_tokens) \(.usage.prompt_tokens_details.cached_tokens)"') $time"
    reply=$(echo "$body" | jq -r '.choices[0].message.content')
    messages=$(jq -nc --argjson m "$messages" --arg r "$reply" --arg q "And then, part $((t + 1))?" '$m + [{role:"assistant",content:$r},{role:"user",content:$q}]')
  done
  rm -f /tmp/gw-h-$$-$id
}

run_mode() { # mode-flag label port
  local gw="http://127.0.0.1:$3" gpid
  dotnet "$cli" gateway $1 --urls "$gw" $(printf -- '--backend %s ' "${replicas[@]}") --health-interval 1 > "/tmp/gw-$2.log" 2>&1 & gpid=$!
  wait_up "$gw"
  local results=/tmp/gw-results-$2 start end
  rm -f "$results"
  start=$(date +%s.%N)
  local running=()
  for w in $(seq 0 $((workers - 1))); do
    ( for id in $(seq "$w" "$workers" $((conversations - 1))); do conversation "$gw" "$id"; done >> "$results.$w" ) & running+=($!)
  done
  wait "${running[@]}"
  end=$(date +%s.%N)
  cat "$results".* > "$results"; rm -f "$results".*
  awk -v label="$2" -v wall="$(echo "$end - $start" | bc)" '{p+=$2; c+=$3; n++; if ($3>0) hits++} END {
    printf "%s: %d turns, prompt tokens %d, cached %d (hit rate %.1f%%), turns with a cache hit %d, wall %.1f s, %.2f turns/s\n",
      label, n, p, c, 100*c/p, hits, wall, n/wall }' "$results"
  if [ "$2" = cache-aware ]; then
    # The replica the gateway sends the latency requests to, measured straight as well.
    chat='{"messages":[{"role":"user","content":"In the beginning"}],"max_tokens":1,"temperature":0}'
    local target
    target=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' -H "x-conversation-id: lat" -d "$chat" "$gw/v1/chat/completions" | grep -i '^x-onnxlm-backend:' | tr -d '\r' | cut -d' ' -f2)
    # Interleaved, so that the machine's load swings fall on both alike.
    rm -f /tmp/gw-lat-*
    for _ in $(seq 1 300); do
      curl -s -o /dev/null -w '%{time_total}\n' "$target/v1/models" >> /tmp/gw-lat-direct
      curl -s -o /dev/null -w '%{time_total}\n' -H "x-conversation-id: lat" "$gw/v1/models" >> /tmp/gw-lat-gw
      # Through the gateway the same conversation id routes every request to the same replica.
      curl -s -o /dev/null -w '%{time_total}\n' -H 'Content-Type: application/json' -H "x-conversation-id: lat" -d "$chat" "$target/v1/chat/completions" >> /tmp/gw-lat-chat-direct
      curl -s -o /dev/null -w '%{time_total}\n' -H 'Content-Type: application/json' -H "x-conversation-id: lat" -d "$chat" "$gw/v1/chat/completions" >> /tmp/gw-lat-chat-gw
    done
    for f in direct gw chat-direct chat-gw; do sort -n -o "/tmp/gw-lat-$f" "/tmp/gw-lat-$f"; done
    for f in direct gw chat-direct chat-gw; do
      awk -v f="$f" '{a[NR]=$1} END {printf "latency %s: p50 %.2f ms, p99 %.2f ms (n=%d)\n", f, 1000*a[int(NR*0.5)], 1000*a[int(NR*0.99)], NR}' "/tmp/gw-lat-$f"
    done
  fi
  kill "$gpid"; wait "$gpid" 2>/dev/null
}

run_mode "" cache-aware $((base + 5))
run_mode "--round-robin" round-robin $((base + 6))
