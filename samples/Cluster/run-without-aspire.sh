#!/usr/bin/env bash
# The same cluster without Aspire's orchestrator: 2 replicas, the gateway and the client as plain processes, with the
# addresses passed the way Aspire passes them (services__<name>__http__0). From the repository root, after build/pack.sh:
#   bash samples/Cluster/run-without-aspire.sh
set -euo pipefail
cd "$(dirname "$0")"
dotnet build AppHost -c Release --nologo -v quiet
base=$((21000 + RANDOM % 500 * 4))
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
model="$(cd ../.. && pwd)/models/kjv-tiny"
for i in 0 1; do
  PORT=$((base + 1 + i)) MODEL="$model" dotnet run --project Replica -c Release --no-build > "/tmp/cluster-replica-$i.log" 2>&1 & pids+=($!)
done
PORT=$base services__replica0__http__0=http://127.0.0.1:$((base + 1)) services__replica1__http__0=http://127.0.0.1:$((base + 2)) \
  dotnet run --project Gateway -c Release --no-build > /tmp/cluster-gateway.log 2>&1 & pids+=($!)
for port in $((base + 1)) $((base + 2)) $base; do
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break; sleep 0.2; done
done
services__gateway__http__0=http://127.0.0.1:$base dotnet run --project Client -c Release --no-build
