"""The engine's ``CallIndex`` over ``LLMInteraction``: finding an identical earlier call is one SQL
lookup by cache key (any run's), and every new log file is indexed as soon as it is written."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

from semantic_catalog.engine.segmentation.types import InteractionRecord
from semantic_catalog.models import LLMInteraction, SegmentationRun

T = TypeVar("T")


class RunDatabase:
    """Serialises a run's database writes and closes what the engine's worker threads opened.

    The engine may call back from its own threads; each opens a connection of its own (Django's are
    per thread), which nothing would close, and SQLite takes one writer at a time anyway.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner = threading.get_ident()

    def __call__(self, work: Callable[[], T]) -> T:
        with self._lock:
            try:
                return work()
            finally:
                if threading.get_ident() != self._owner:
                    connection.close()


class SqlCallIndex:
    """``find``: the newest log file of any run with this cache key; ``add``: index a run's new file."""

    def __init__(self, run: SegmentationRun, database: RunDatabase | None = None) -> None:
        self.run = run
        self.database = database or RunDatabase()

    def find(self, cache_key: str) -> str | None:
        return self.database(
            lambda: (
                LLMInteraction.objects.filter(cache_key=cache_key)
                .order_by("-created_at", "-id")
                .values_list("path", flat=True)
                .first()
            )
        )

    def add(self, record: InteractionRecord) -> None:
        self.database(lambda: self._add(record))

    def _add(self, record: InteractionRecord) -> None:
        LLMInteraction.objects.update_or_create(
            run=self.run,
            path=record.path,
            defaults={
                "interaction_type": record.interaction_type,
                "batch": record.batch,
                "attempt": record.attempt,
                "prompt_file": record.prompt_file,
                "cache_key": record.cache_key,
                "sha256": record.sha256,
                "model": record.model,
                "tokens_in": max(0, int(record.tokens_in or 0)),
                "tokens_out": max(0, int(record.tokens_out or 0)),
                "duration": float(record.duration or 0.0),
                "cached": record.cached,
            },
        )
