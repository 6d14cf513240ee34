#!/usr/bin/env bash
# The checks that need a GPU, as one script for a machine with CUDA (issue 14, item 4): the CUDA tests (decoding matches
# the CPU, the cache stays on the device, forks and rewinds slice device memory) with their step times, then the decode
# benchmark on the CPU of the same machine for comparison. Copy the printed figures into benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
dotnet test tests/OnnxLM.Tests --filter "FullyQualifiedName~CudaTests|FullyQualifiedName~SpeculativeGreedyOnCuda" --logger "console;verbosity=detailed" 2>&1 | grep -E "CUDA|Passed|Failed|Skipped|ms per" || true
dotnet run -c Release --project benchmarks/OnnxLM.Benchmarks -- decode models/kjv-tiny
