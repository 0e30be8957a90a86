"""A scripted OpenAI-compatible chat server for the segmentation tests: real HTTP on 127.0.0.1 in a thread,
deterministic answers computed from the prompt, and faults on demand.

Why: the pipeline must be tested over real HTTP through the ``openai`` package (retries, the ``json_object``
fallback, transport errors, concurrency) without a paid API or a slow local model.

Use::

    from tests.llm_server import ScriptedLLMServer

    with ScriptedLLMServer() as server:
        config = SegmentationConfig(model="scripted", base_url=server.base_url)
        server.fail_next("extract", "malformed", "missing_id")  # the next two extract answers
        result = run_segmentation(items, config, storage_url=str(tmp_path / "logs"))
        assert server.count == ...            # requests answered (faults included)
        server.requests[-1]["messages"]       # what the client sent, per request

or the pytest fixture ``llm_server`` (``from tests.llm_server import llm_server_fixture  # noqa: F401`` in a
test module).

How it answers (the stage comes from the response schema's ``title``: ``ExtractAnswer``, ``ConsolidateAnswer``,
``RefineAnswer``; the product, taxonomy and segment lines are those the engine's prompts render):

- extract: every ``P_<n>: <text>`` line of the first user message gets the segment named after the text's first
  word (``"Ayam products"``), with that segment in the taxonomy;
- consolidate: the ``- <name>: <definition>`` lines are merged by name (case-insensitive);
- refine: each ``P_<n> (current S_<m>): <text>`` goes to the ``S_<k>`` whose name starts with the text's first
  word, else stays in its current segment (else ``S_1``);
- name (``NameAnswer``, the embedding-first mode): each ``Cluster S_<n> (...)`` block is named after the most
  common first word of its sample lines (``"Ayam products"``).

Faults (``fail_next(stage, *faults)``, stage ``"extract" | "consolidate" | "refine" | "any"``, consumed one per
request in order): ``malformed`` (not JSON), ``wrong_schema`` (JSON of the wrong shape), ``missing_id``,
``duplicate_id``, ``unknown_id``, ``unknown_segment``, ``http400``, ``http500``, ``http429``.
``refuse_json_schema = True`` answers ``refusal_status`` (400; llama-cpp-python's server answers 500) to a
``json_schema`` response format, so the client must fall back to ``json_object``. ``context_chars`` (None: no
limit) refuses a conversation longer than that many characters with ``overflow_status`` (400) and
``overflow_message`` (OpenAI's and vLLM's wording by default), as a server does when a prompt exceeds its
context. ``delay`` (seconds) slows every answer; ``max_in_flight`` is the most requests seen at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

PRODUCT_LINE = re.compile(r"^(P_\d+): (.*)$", re.M)
REFINE_LINE = re.compile(r"^(P_\d+) \(current (S_\d+|none)\): (.*)$", re.M)
SEGMENT_LINE = re.compile(r"^(S_\d+): (.*?) — (.*)$", re.M)
TAXONOMY_LINE = re.compile(r"^- (.*?): (.*)$", re.M)
CLUSTER_LINE = re.compile(r"^Cluster (S_\d+) \(.*$", re.M)
SCHEMA_TITLES = {
    "ExtractAnswer": "extract",
    "ConsolidateAnswer": "consolidate",
    "RefineAnswer": "refine",
    "NameAnswer": "name",
}


def first_word(text: str) -> str:
    words = re.findall(r"\w+", text)
    return words[0].capitalize() if words else "Other"


class ScriptedLLMServer:
    """The server; start with ``with`` (or ``start()`` / ``stop()``)."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.refuse_json_schema = False
        self.refusal_status = 400  # llama-cpp-python's server answers 500 (its validation error names response_format)
        self.context_chars: int | None = None
        self.overflow_status = 400
        self.overflow_message = "This model's maximum context length is {limit} tokens. You requested {n} tokens."
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: dict[str, deque[str]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def count(self) -> int:
        """Chat requests received (answered, failed on purpose or refused)."""
        return len(self.requests)

    def stage_count(self, stage: str) -> int:
        return sum(1 for r in self.requests if r["stage"] == stage)

    def fail_next(self, stage: str, *faults: str) -> None:
        self._faults[stage].extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.max_in_flight = 0

    def start(self) -> ScriptedLLMServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ---------------------------------------------------------------------------------

    def _next_fault(self, stage: str) -> str | None:
        with self._lock:
            for key in (stage, "any"):
                if self._faults[key]:
                    return self._faults[key].popleft()
        return None

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one chat completion request."""
        response_format = body.get("response_format") or {}
        schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema") or {}
        messages = body.get("messages") or []
        first = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
        stage = SCHEMA_TITLES.get(schema.get("title", ""), "unknown")
        with self._lock:
            self.requests.append({"stage": stage, "messages": messages, "response_format": response_format})
        if self.refuse_json_schema and response_format.get("type") == "json_schema":
            return self.refusal_status, {
                "error": {
                    "message": "response_format type json_schema is not supported",
                    "type": "invalid_request_error",
                }
            }
        chars = sum(len(m.get("content") or "") for m in messages)
        if self.context_chars is not None and chars > self.context_chars:
            message = self.overflow_message.format(limit=self.context_chars // 4, n=chars // 4)
            return self.overflow_status, {
                "error": {"message": message, "type": "invalid_request_error", "code": "context_length_exceeded"}
            }
        fault = self._next_fault(stage)
        if fault == "http400":
            return 400, {"error": {"message": "scripted bad request", "type": "invalid_request_error"}}
        if fault == "http500":
            return 500, {"error": {"message": "scripted internal error", "type": "server_error"}}
        if fault == "http429":
            return 429, {"error": {"message": "scripted rate limit", "type": "rate_limit_error"}}
        if stage == "extract":
            content: Any = self._extract(first, fault)
        elif stage == "consolidate":
            content = self._consolidate(first, fault)
        elif stage == "refine":
            content = self._refine(first, fault)
        elif stage == "name":
            content = self._name(first, fault)
        else:
            content = {"error": "unknown schema"}
        if fault == "malformed":
            text = '{"segments": [{"name": "unfinished'
        elif fault == "wrong_schema":
            text = json.dumps({"answer": "not the requested shape"})
        else:
            text = json.dumps(content, ensure_ascii=False)
        prompt_chars = sum(len(m.get("content") or "") for m in messages)
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_chars // 4 + 1,
                "completion_tokens": len(text) // 4 + 1,
                "total_tokens": prompt_chars // 4 + len(text) // 4 + 2,
            },
        }

    @staticmethod
    def _with_id_fault(assignments: list[dict[str, Any]], fault: str | None, field: str) -> list[dict[str, Any]]:
        if fault == "missing_id" and assignments:
            return assignments[:-1]
        if fault == "duplicate_id" and assignments:
            return [*assignments, dict(assignments[0])]
        if fault == "unknown_id":
            return [*assignments, {**assignments[0], "product_id": "P_999999"}]
        if fault == "unknown_segment" and assignments:
            return [{**assignments[0], field: "S_999999" if field == "segment_id" else "Nonexistent"}, *assignments[1:]]
        return assignments

    def _extract(self, prompt: str, fault: str | None) -> dict[str, Any]:
        segments: dict[str, str] = {}
        assignments = []
        for label, text in PRODUCT_LINE.findall(prompt):
            word = first_word(text)
            name = f"{word} products"
            segments.setdefault(name, f"Products whose description starts with '{word.lower()}'.")
            assignments.append({"product_id": label, "segment": name, "confidence": 0.9})
        return {
            "segments": [{"name": n, "definition": d} for n, d in segments.items()],
            "assignments": self._with_id_fault(assignments, fault, "segment"),
        }

    def _consolidate(self, prompt: str, fault: str | None) -> dict[str, Any]:
        merged: dict[str, dict[str, Any]] = {}
        for name, definition in TAXONOMY_LINE.findall(prompt):
            entry = merged.setdefault(name.lower(), {"name": name, "definition": definition, "merged_from": []})
            if name not in entry["merged_from"]:
                entry["merged_from"].append(name)
        return {"segments": list(merged.values())}

    def _refine(self, prompt: str, fault: str | None) -> dict[str, Any]:
        by_word = {first_word(name): sid for sid, name, _ in SEGMENT_LINE.findall(prompt)}
        assignments = []
        for label, current, text in REFINE_LINE.findall(prompt):
            segment = by_word.get(first_word(text)) or (current if current != "none" else "S_1")
            assignments.append({"product_id": label, "segment_id": segment, "confidence": 0.8})
        return {"assignments": self._with_id_fault(assignments, fault, "segment_id")}

    def _name(self, prompt: str, fault: str | None) -> dict[str, Any]:
        heads = list(CLUSTER_LINE.finditer(prompt))
        segments = []
        for n, head in enumerate(heads):
            block = prompt[head.end() : heads[n + 1].start() if n + 1 < len(heads) else len(prompt)]
            words = [first_word(text) for _, text in PRODUCT_LINE.findall(block)]
            word = max(set(words), key=lambda w: (words.count(w), w)) if words else "Other"
            segments.append(
                {"segment_id": head.group(1), "name": f"{word} products", "definition": f"Mostly {word.lower()}."}
            )
        if fault == "missing_id" and len(segments) > 1:
            segments = segments[:-1]
        if fault == "unknown_id" and segments:
            segments = [*segments, {**segments[0], "segment_id": "S_999999"}]
        return {"segments": segments}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "request body is not JSON"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.delay:
                        time.sleep(server.delay)
                    status, payload = server.answer(body)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                self._send(status, payload)

        return Handler


@pytest.fixture(name="llm_server")
def llm_server_fixture():
    """A running ScriptedLLMServer for one test, as the ``llm_server`` fixture."""
    with ScriptedLLMServer() as server:
        yield server
