#!/usr/bin/env bash
# The fuzz properties of tests/OnnxLM.Tests/Reliability/FuzzTests*.cs for longer than CI runs them: each property
# samples for $1 seconds (default 120) instead of its fixed iteration count. A failure prints the shrunk input and
# the seed (CsCheck_Seed=... reproduces it); keep the input as a fixed case in FuzzTests and fix the code.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
CsCheck_Time="$seconds" dotnet test tests/OnnxLM.Tests -c Release --filter "FullyQualifiedName~OnnxLM.Tests.FuzzTests" --logger "console;verbosity=normal"
