#!/usr/bin/env bash
# Rewrites PublicAPI.Shipped.txt of every shipped project from its code, after a deliberate change to the public API
# or a merge of branches that changed it (the build fails on any public change these files do not record: RS0016
# for an API added, RS0017 for one removed). The analyzer's own code fix writes the entries (dotnet format), so they
# are exactly what the build checks; then all of them move to PublicAPI.Shipped.txt, PublicAPI.Unshipped.txt is left
# empty, and the shipped projects are built to prove the files complete. Review the diff of the .txt files: it is the
# change to the public API.
#   bash build/public-api.sh              # all shipped projects
#   bash build/public-api.sh src/OnnxLM   # some of them
set -euo pipefail
cd "$(dirname "$0")/.."
projects=("$@")
[ ${#projects[@]} -gt 0 ] || projects=(src/OnnxLM src/OnnxLM.Hosting src/OnnxLM.Hub src/OnnxLM.Models.KjvTiny src/OnnxLM.ModelBuilder src/OnnxLM.Server src/OnnxLM.Cli)
header='#nullable enable'

dotnet restore src/OnnxLM.Cli --nologo -v quiet
for project in "${projects[@]}"; do
  project="${project%/}"
  csproj=("$project"/*.csproj)
  printf '%s\n' "$header" > "$project/PublicAPI.Shipped.txt"
  printf '%s\n' "$header" > "$project/PublicAPI.Unshipped.txt"
  # RS0016's fix adds every public symbol the files lack to PublicAPI.Unshipped.txt.
  dotnet format analyzers "${csproj[0]}" --diagnostics RS0016 RS0017 --severity info --no-restore
  { printf '%s\n' "$header"; { grep -v "^$header\$" "$project/PublicAPI.Unshipped.txt" || true; } | LC_ALL=C sort -u; } > "$project/PublicAPI.Shipped.txt"
  printf '%s\n' "$header" > "$project/PublicAPI.Unshipped.txt"
  echo "$project: $(($(wc -l < "$project/PublicAPI.Shipped.txt") - 1)) public API entries"
done

# The tool references every other shipped project, so this builds them all: any RS00xx left is an error here.
dotnet build src/OnnxLM.Cli -c Release --no-restore --nologo -v quiet
git status --short -- 'src/*/PublicAPI.*.txt'
