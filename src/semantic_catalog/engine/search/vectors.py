"""Query text -> query vector for one model: the encoder, the query adapter when there is one, and an
LRU cache so a repeated query is encoded once per process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.search.query_adapter import QueryAdapter


class LRUCache:
    """A thread-safe map holding at most ``size`` entries (0 = keeps nothing)."""

    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class QueryVectors:
    """Query vectors of one model. ``vector`` serves one query (cached); ``vectors`` encodes many in
    batches (evaluation, adapter training) with exactly ``vector``'s results."""

    def __init__(self, encoder: Encoder, adapter: QueryAdapter | None = None, cache_size: int = 1024) -> None:
        if adapter is not None and adapter.model != encoder.name:
            raise ValueError(f"the adapter is for {adapter.model!r}, the encoder is {encoder.name!r}")
        self.encoder, self.adapter = encoder, adapter
        self._cache = LRUCache(cache_size)

    @property
    def model(self) -> str:
        return self.encoder.name

    def vector(self, text: str) -> np.ndarray:
        vector = self._cache.get(text)
        if vector is None:
            vector = self._adapt(self.encoder.encode_query(text))
            vector.setflags(write=False)
            self._cache.put(text, vector)
        return vector

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order; a text given several times is encoded once."""
        if not texts:
            return np.zeros((0, self.encoder.dimension), dtype=np.float32)
        distinct = list(dict.fromkeys(texts))
        encoded = self._adapt(self.encoder.encode_queries(distinct))
        if len(distinct) == len(texts):
            return encoded
        row = {text: i for i, text in enumerate(distinct)}
        return encoded[[row[text] for text in texts]]

    def _adapt(self, vectors: np.ndarray) -> np.ndarray:
        return vectors if self.adapter is None else self.adapter.apply(vectors)
