"""Hot copies: the texts and vectors of a small collection in memory, with a table handle pinned to the
version they were read at.

Why: a new hybrid query's full-text search read each of its 100 hits' text (for coverage) and vector (for
fusion) from the Lance files, and every query on a live handle first checks for newer versions. With a
hot copy both searches run on the pinned handle and return Lance row ids and scores only (no column of
the hits is read from the files), and ids, texts and cosines come from memory. A query checks the live
version once, beside its other work; when it differs (a write since the copy), the query runs on the
live table as before and the copy is read again in the background, so results are always those of the
latest version. benchmarks/hot_copy.py measures the gain.

A collection without a vector index (below the store's ``ann_threshold``: most shops' catalogs) is
searched exactly; LanceDB's flat search of 54,667 titles took 44-66 ms, a matrix product on the copy
about 5 ms, ordered as LanceDB orders its flat search (distance, then row id), so the hits are the same.
A collection with an index keeps LanceDB's index search: its approximate results are the index's.

Memory: 4 bytes per dimension per row, 24 per row for the row ids, plus the texts, per process;
collections past the budget get no copy. The store (``LanceDBStore``) makes the copies; this module only keeps them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from semantic_catalog.engine.documents import SearchHit
from semantic_catalog.engine.stores.base import keyword_hits, semantic_hits

logger = logging.getLogger(__name__)

DEFAULT_HOT_COPY_MB = 256  # per store (process): the Home Depot titles take 85 MB
TIE_MARGIN = 1e-5  # float32 rounding of a dot product of unit vectors is far below this
REFRESH_SECONDS = 10.0  # at most one read of a collection per this many seconds (writes may come often)


@dataclass(frozen=True)
class HotCopy:
    """One collection at ``version``: ``table`` is checked out at it (no per-query version check).

    ``row_ids`` are Lance's ``_rowid`` of the rows at that version, sorted, and ``order`` the row of each:
    searches on the pinned handle return row ids only, so Lance reads no column for their hits
    (``row_id_by_row``: the same, row by row).
    ``indexed``: the collection had a vector index at that version (vector searches then stay LanceDB's,
    see ``nearest``)."""

    version: int
    table: Any
    ids: list[str]
    texts: list[str]
    matrix: np.ndarray
    row_ids: np.ndarray
    order: np.ndarray
    row_id_by_row: np.ndarray
    indexed: bool = False

    @classmethod
    def of(
        cls,
        version: int,
        table: Any,
        ids: list[str],
        texts: list[str],
        matrix: np.ndarray,
        row_ids: Any,
        indexed: bool = False,
    ) -> HotCopy:
        """The copy of rows read in any order with their Lance row ids."""
        row_ids = np.asarray(row_ids, dtype=np.uint64)
        order = np.argsort(row_ids, kind="stable")
        return cls(version, table, ids, texts, matrix, row_ids[order], order, row_ids, indexed)

    @property
    def nbytes(self) -> int:
        arrays = (self.matrix, self.row_ids, self.order, self.row_id_by_row)
        return sum(array.nbytes for array in arrays) + sum(len(text) for text in self.texts)

    def nearest(
        self, vector: np.ndarray, limit: int, rows: np.ndarray | None = None, exclude_ids: Collection[str] = ()
    ) -> list[SearchHit]:
        """The exact vector search of an unindexed collection (all rows, or ``rows``: those a filter left),
        best first: dot distance in float32, equal distances by row id, as LanceDB's flat search ranks
        them, less ``exclude_ids``."""
        if rows is None:
            similarities = self.matrix @ vector
        elif 4 * len(rows) < len(self.ids):  # a selective filter: only its rows' vectors
            similarities = self.matrix[rows] @ vector
        else:
            similarities = (self.matrix @ vector)[rows]
        wanted = min(limit + len(exclude_ids), len(similarities))
        if wanted == 0:
            return []
        cut = np.partition(similarities, len(similarities) - wanted)[len(similarities) - wanted]
        # The matrix product may round equal rows differently (its blocks take other paths): the rows near
        # the cut are scored again row by row, so equal vectors tie exactly and go in row id order.
        near = np.flatnonzero(similarities >= cut - TIE_MARGIN)
        positions = near if rows is None else rows[near]
        distances = np.float32(1.0) - (self.matrix[positions] * vector).sum(axis=1, dtype=np.float32)
        ranked = np.lexsort((self.row_id_by_row[positions], distances))[:wanted]
        ids = [self.ids[row] for row in positions[ranked].tolist()]
        scores = (1.0 - distances[ranked].astype(np.float64)).tolist()
        hits = [(key, score) for key, score in zip(ids, scores) if key not in exclude_ids][:limit]
        return semantic_hits([key for key, _ in hits], [score for _, score in hits])

    def rows_of(self, row_ids: Any) -> np.ndarray | None:
        """The rows of Lance row ids; None when one is not in the copy (it cannot be at the copy's version:
        the caller then searches the live table)."""
        wanted = np.asarray(row_ids, dtype=np.uint64)
        at = np.searchsorted(self.row_ids, wanted)
        if len(wanted) and (at.max() >= len(self.row_ids) or not np.array_equal(self.row_ids[at], wanted)):
            return None
        return self.order[at]

    def keyword_hits(self, row_ids: Any, scores: list[float], vector: np.ndarray) -> list[SearchHit] | None:
        """Full-text results as hits with their ids, texts and cosines to ``vector``, from memory; best first
        and equal scores by id, as the store orders them when it reads the files. None: see ``rows_of``."""
        rows = self.rows_of(row_ids)
        if rows is None:
            return None
        similarities = (self.matrix[rows] @ vector).tolist() if len(rows) else []
        rows = rows.tolist()  # Python ints index lists several times faster than numpy's
        ids = [self.ids[row] for row in rows]
        ranked = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))
        return keyword_hits(
            [ids[i] for i in ranked],
            [scores[i] for i in ranked],
            [self.texts[rows[i]] for i in ranked],
            [similarities[i] for i in ranked],
        )

    def vector_hits(self, row_ids: Any, distances: list[float]) -> list[SearchHit] | None:
        """Vector search results (dot distance, best first) as hits with their ids and cosines. None: see
        ``rows_of``."""
        rows = self.rows_of(row_ids)
        if rows is None:
            return None
        ids = self.ids
        return semantic_hits([ids[row] for row in rows.tolist()], [1.0 - distance for distance in distances])


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
