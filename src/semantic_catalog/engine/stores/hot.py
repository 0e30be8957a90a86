"""Hot copies: the texts and vectors of a small collection in memory, with a table handle pinned to the
version they were read at.

Why: a new hybrid query's full-text search read each of its 100 hits' text (for coverage) and vector (for
fusion) from the Lance files, and every query on a live handle first checks for newer versions. With a
hot copy both searches run on the pinned handle, the full-text search returns ids and scores only, and
texts and cosines come from memory. A query checks the live version once, beside its other work; when it
differs (a write since the copy), the query runs on the live table as before and the copy is read again
in the background, so results are always those of the latest version. benchmarks/hot_copy.py measures
the gain.

Memory: 4 bytes per dimension per row plus the texts, per process; collections past the budget get no
copy. The store (``LanceDBStore``) makes the copies; this module only keeps them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from semantic_catalog.engine.documents import SearchHit

logger = logging.getLogger(__name__)

DEFAULT_HOT_COPY_MB = 256  # per store (process): the Home Depot titles take 84 MB
REFRESH_SECONDS = 10.0  # at most one read of a collection per this many seconds (writes may come often)


@dataclass(frozen=True)
class HotCopy:
    """One collection at ``version``: ``table`` is checked out at it (no per-query version check)."""

    version: int
    table: Any
    rows: dict[str, int]  # id -> row of texts and matrix
    texts: list[str]
    matrix: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + sum(len(text) for text in self.texts)

    def keyword_hits(self, ids: list[str], scores: list[float], vector: np.ndarray) -> list[SearchHit] | None:
        """Full-text results as hits with their texts and cosines to ``vector``, from memory; None when an
        id is not in the copy (it cannot be at the copy's version: the caller then reads the live table)."""
        try:
            rows = [self.rows[key] for key in ids]
        except KeyError:
            return None
        similarities = self.matrix[rows] @ vector if rows else []
        return [
            SearchHit(key, float(score), {"keyword": i + 1}, float(similarities[i]), text=self.texts[row] or "")
            for i, (key, score, row) in enumerate(zip(ids, scores, rows))
        ]


# A store's reader of one collection's copy: given the budget in bytes, the copy, or None when it is larger.
Loader = Callable[[int], HotCopy | None]


class HotCopies:
    """A store's hot copies within ``max_bytes``: read in a background thread, one collection at a time,
    each at most once per ``refresh_seconds``; the least recently used copies make room for a new one."""

    def __init__(self, max_bytes: int, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.max_bytes = max_bytes
        self.refresh_seconds = refresh_seconds
        self._copies: dict[str, HotCopy] = {}
        self._loading: set[str] = set()
        self._last_load: dict[str, float] = {}
        self._lock = threading.Lock()

    def current(self, name: str) -> HotCopy | None:
        """The collection's copy, possibly of an older version (callers compare ``version``)."""
        if self.max_bytes <= 0:
            return None
        with self._lock:
            copy = self._copies.pop(name, None)
            if copy is not None:
                self._copies[name] = copy  # most recently used last
            return copy

    def forget(self, name: str) -> None:
        with self._lock:
            self._copies.pop(name, None)
            self._last_load.pop(name, None)

    def refresh(self, name: str, load: Loader, wait: bool = False) -> None:
        """Read the collection again with ``load(max_bytes)`` (in a background thread unless ``wait``),
        unless a read is running or the last one started less than ``refresh_seconds`` ago."""
        if self.max_bytes <= 0:
            return
        with self._lock:
            recent = time.monotonic() - self._last_load.get(name, -np.inf) < self.refresh_seconds
            if name in self._loading or (recent and not wait):
                return
            self._loading.add(name)
            self._last_load[name] = time.monotonic()
        if wait:
            self._load(name, load)
        else:
            threading.Thread(target=self._load, args=(name, load), name=f"hot-copy-{name}", daemon=True).start()

    def _load(self, name: str, load: Loader) -> None:
        try:
            loaded = load(self.max_bytes)
        except Exception:  # the live table still answers; the next refresh tries again
            logger.exception("Reading the hot copy of collection %r failed", name)
            loaded = None
        with self._lock:
            self._loading.discard(name)
            self._copies.pop(name, None)  # too large now, or unreadable: no stale copy kept
            if loaded is None:
                return
            while self._copies and sum(c.nbytes for c in self._copies.values()) + loaded.nbytes > self.max_bytes:
                self._copies.pop(next(iter(self._copies)))
            self._copies[name] = loaded
