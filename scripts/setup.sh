#!/usr/bin/env bash
# Set up mindsponge_fold on a fresh machine: a virtualenv in .venv with the pinned requirements, the package
# installed in editable mode, and (with --tools, or MSF_INSTALL_TOOLS=1) the Debian search/eval binaries and g++
# (mindsponge_fold/model/native_kernels.cc is compiled on first use).
# Idempotent: a second run only checks what is there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
want_tools="${MSF_INSTALL_TOOLS:-0}"
for a in "$@"; do
  case "$a" in
    --tools) want_tools=1 ;;
    -h|--help) echo "usage: scripts/setup.sh [--tools]   (creates .venv, installs requirements; --tools also apt-installs hmmer hhsuite kalign tm-align mmseqs2 and g++ for the native CPU kernels)"; exit 0 ;;
    *) echo "setup.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
if [ "$want_tools" = "1" ]; then
  missing=()
  for b in jackhmmer:hmmer hhblits:hhsuite kalign:kalign TMscore:tm-align mmseqs:mmseqs2 g++:g++; do
    command -v "${b%%:*}" >/dev/null 2>&1 || missing+=("${b##*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi
fi
.venv/bin/python -c "import mindspore, numpy; assert numpy.__version__.startswith('1.'), numpy.__version__" 
