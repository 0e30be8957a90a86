#!/usr/bin/env bash
# Lint, check the import contract (engine/ never imports Django), run the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k sync -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "No .venv: run 'bash scripts/demo.sh' (or 'bash scripts/install.sh') first." >&2
  exit 2
fi
echo "==> ruff"
.venv/bin/ruff check .
echo "==> import contract"
.venv/bin/lint-imports
echo "==> pytest"
.venv/bin/python -m pytest "$@"
