#!/usr/bin/env bash
# Run the lint (ruff, configured in pyproject.toml) and the test suite (sets up .venv and the search/eval tools first
# if needed). Extra args go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
scripts/setup.sh --tools
export GLOG_v="${GLOG_v:-3}"
.venv/bin/ruff check --quiet mindsponge_fold scripts tests || { echo "test.sh: ruff found problems (above)" >&2; exit 1; }
exec .venv/bin/python -m pytest -q -rs --durations=15 "$@" tests
