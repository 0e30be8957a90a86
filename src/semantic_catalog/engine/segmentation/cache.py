"""The cache key of an LLM call: identical calls (same model, temperature, conversation and schema) share it,
so an earlier call's logged answer stands in for a new one and a re-run or resumed run asks nothing twice."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def cache_key(model: str, temperature: float, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the call's model, temperature, prompt messages and schema."""
    payload = {"model": model, "temperature": float(temperature), "messages": messages, "schema": schema}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
