#!/usr/bin/env bash
# Run the test suite (sets up .venv and the search/eval tools first if needed). Extra args go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
scripts/setup.sh --tools
export GLOG_v="${GLOG_v:-3}"
export MS_COMPILER_CACHE_ENABLE="${MS_COMPILER_CACHE_ENABLE:-1}"
export MS_COMPILER_CACHE_PATH="${MS_COMPILER_CACHE_PATH:-$here/.ms_cache}"
exec .venv/bin/python -m pytest -q -rs "$@" tests
