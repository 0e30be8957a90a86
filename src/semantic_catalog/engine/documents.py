"""The engine's value types: what is indexed (`Document`) and what a search returns (`SearchHit`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def text_hash(text: str) -> str:
    """Hash of the embedded text alone: equal hashes mean the stored vector can be reused."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def content_hash(text: str, fields: dict[str, Any]) -> str:
    """Hash of everything the store keeps for a row: equal hashes mean nothing needs writing."""
    payload = json.dumps([text, fields], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Document:
    """One row as the engine sees it: an id, the text to embed and filterable metadata."""

    id: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def text_hash(self) -> str:
        return text_hash(self.text)

    @property
    def content_hash(self) -> str:
        return content_hash(self.text, self.fields)


@dataclass(frozen=True)
class StoredRecord:
    """What the store holds for one id: its hashes and, when asked for, its vector."""

    id: str
    content_hash: str
    text_hash: str
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class SearchHit:
    """One result: the id, a score (higher is better) and the 1-based rank in each retriever that found it.

    ``similarity`` is the cosine to the query vector when it is known (semantic and hybrid search);
    ``coverage`` the share of the query's words the row contains, for keyword hits. A store's keyword
    hits carry the row's ``text``; the search pipeline measures ``coverage`` on it and drops it."""

    id: str
    score: float
    retrievers: dict[str, int] = field(default_factory=dict)
    similarity: float | None = None
    coverage: float | None = None
    text: str | None = None
