#!/usr/bin/env bash
# Packs every OnnxLM package into build/feed (the local source nuget.config lists), so samples and the installed
# tool build against real packages: OnnxLM, OnnxLM.Hosting, OnnxLM.Hub (downloads from the Hugging Face Hub), OnnxLM.Models.KjvTiny (the default model for apps), OnnxLM.ModelBuilder, OnnxLM.Server (the OpenAI-compatible
# endpoints for an ASP.NET Core app), OnnxLM.Gateway (cache-aware routing over several servers, on YARP) and the onnxlm tool (one RID-specific package per platform plus the package that
# points at them).
#   bash build/pack.sh            # Release, version from Directory.Build.props
set -euo pipefail
cd "$(dirname "$0")/.."
feed="$PWD/build/feed"
mkdir -p "$feed"
rm -f "$feed"/*.nupkg "$feed"/*.snupkg
# Packages of the same version already in the NuGet cache would shadow the new ones.
rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/onnxlm "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/onnxlm.*

repo=()
origin="$(git remote get-url origin 2>/dev/null || true)"
case "$origin" in https://*) repo=("-p:OnnxLMRepositoryUrl=${origin%.git}") ;; esac

for project in src/OnnxLM src/OnnxLM.Hosting src/OnnxLM.Hub src/OnnxLM.Models.KjvTiny src/OnnxLM.ModelBuilder src/OnnxLM.Server src/OnnxLM.Gateway src/OnnxLM.Cli; do
  dotnet pack "$project" -c Release -o "$feed" --nologo -v quiet "${repo[@]}"
done
ls -l "$feed"
