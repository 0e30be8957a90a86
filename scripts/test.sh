#!/usr/bin/env bash
# Lint, check the import contract (engine/ never imports Django), run the test suite (and, when
# SEMANTIC_CATALOG_TEST_PG_DSN is set, its sync, API and command tests again on PostgreSQL).
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
# With a PostgreSQL server (scripts/postgres.sh prints its DSN), the sync, API and command tests run
# again with Django's database and the vector store on it (tests/settings_pg.py). Extra arguments such
# as -k or -x apply here too (tests/test_workers_pg.py runs only here: three db_worker processes share
# the database; so does the PostgreSQL variant of tests/reliability, the real-process fault suite);
# a run of chosen test files or tests (tests/...) is not repeated.
PG_TESTS=(tests/test_sync.py tests/test_self_healing.py tests/test_check.py tests/test_api.py tests/test_commands.py tests/test_workers_pg.py tests/reliability tests/test_segmentation_api.py)
chosen=""
for arg in "$@"; do
  case "$arg" in tests/* | ./tests/*) chosen=1 ;; esac
done
if [ -n "${SEMANTIC_CATALOG_TEST_PG_DSN:-}" ] && [ -z "$chosen" ]; then
  echo "==> the sync, API and command tests again on PostgreSQL (Django's database and the vector store)"
  rc=0
  .venv/bin/python -m pytest --ds=tests.settings_pg "${PG_TESTS[@]}" "$@" || rc=$?
  [ "$rc" = 5 ] && echo "(-k selected none of them)"  # pytest's "no tests collected"
  [ "$rc" = 0 ] || [ "$rc" = 5 ] || exit "$rc"
fi
