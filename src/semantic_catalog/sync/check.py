"""Compare the SQL truth with the index, and queue the fixes through the outbox (``semantic_check``).

Per index, against its active collection:

- ``missing``: rows of the queryset the collection does not hold (all of them when no collection is
  active, or when its table is gone);
- ``stale``: stored rows whose content hash differs from the hash of the row's document now;
- ``orphaned``: stored ids whose row was deleted or left the queryset;
- ``unbuildable``: rows of the queryset whose document cannot be built (``get_text`` raises);
- ``wrong_collection``: problems of the collection itself (see ``CollectionProblem``).

The store's content hashes are read once and the queryset in chunks, so memory holds ids and hashes,
never the table's rows. The reading is not a snapshot: a write between the two reads can show as a
difference that its outbox event fixes; each kind says how many of its ids have an event waiting
(``queued``). ``repair`` writes outbox events (upserts for missing and stale rows, deletes for
orphaned ids) that the normal drain applies; it never writes the store.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from semantic_catalog.backends import available_encoder_names, get_encoder, get_store
from semantic_catalog.collections import active_collection
from semantic_catalog.engine.indexer import chunked
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import Collection, SyncEvent
from semantic_catalog.sync.changes import record_changes

# Outbox rows written per statement by ``repair``.
REPAIR_CHUNK = 1000


def _id_order(object_id: str) -> tuple[int, str]:
    """Numeric ids in numeric order (``"9"`` before ``"10"``), others by their text."""
    return len(object_id), object_id


@dataclass
class Kind:
    """One kind of difference: every id (for ``repair``), shown as a count and a sample."""

    ids: list[str] = field(default_factory=list)
    queued: int = 0  # ids with an outbox event waiting (pending or failed)

    @property
    def count(self) -> int:
        return len(self.ids)

    def sample(self, n: int) -> list[str]:
        return heapq.nsmallest(n, self.ids, key=_id_order)

    def as_dict(self, n: int) -> dict[str, Any]:
        return {"count": self.count, "queued": self.queued, "ids": self.sample(n)}


@dataclass(frozen=True)
class CollectionProblem:
    """What is wrong with an index's collections, by ``problem``:

    - ``not_built``: no active collection (every row is missing; the drain creates one, so ``repair``
      fixes it);
    - ``table_missing``: the active collection's table is gone from the store;
    - ``model_not_configured``: the active collection's model is neither ``ENCODER`` nor in
      ``ENCODERS`` (searches fail, the drain cannot write it);
    - ``model_not_encoder``: it is served from ``ENCODERS``, not built with ``ENCODER``;
    - ``text_version``: it was built with another ``text_version`` than the declaration's;
    - ``building``: a collection in state ``building``: a rebuild in progress, or one a crashed
      rebuild left behind (the outbox keeps writing it).

    All but ``not_built`` need ``semantic_index --rebuild`` (which discards a left-behind build)."""

    problem: str
    collection: str | None
    detail: str

    @property
    def repairable(self) -> bool:
        return self.problem == "not_built"


@dataclass
class CheckReport:
    index: str
    collection: str | None  # the active collection's table
    model: str | None
    in_queryset: int = 0
    indexed: int = 0  # ids stored in the active collection
    missing: Kind = field(default_factory=Kind)
    stale: Kind = field(default_factory=Kind)
    orphaned: Kind = field(default_factory=Kind)
    unbuildable: Kind = field(default_factory=Kind)
    errors: dict[str, str] = field(default_factory=dict)  # unbuildable id -> why (the first few)
    wrong_collection: list[CollectionProblem] = field(default_factory=list)
    pending: int = 0
    failed: int = 0
    comparable: bool = True  # rows can be written to the active collection by the drain
    queued_upserts: int | None = None  # set by ``repair``
    queued_deletes: int | None = None

    @property
    def differences(self) -> int:
        rows = self.missing.count + self.stale.count + self.orphaned.count + self.unbuildable.count
        return rows + len(self.wrong_collection)

    @property
    def unrepairable(self) -> int:
        """Differences ``repair`` cannot queue a fix for: they need a rebuild or a code fix."""
        problems = sum(not p.repairable for p in self.wrong_collection)
        rows = 0 if self.comparable else self.missing.count + self.stale.count + self.orphaned.count
        return problems + rows + self.unbuildable.count

    def as_dict(self, sample: int = 10) -> dict[str, Any]:
        return {
            "index": self.index,
            "collection": self.collection,
            "model": self.model,
            "in_queryset": self.in_queryset,
            "indexed": self.indexed,
            "differences": self.differences,
            "missing": self.missing.as_dict(sample),
            "stale": self.stale.as_dict(sample),
            "orphaned": self.orphaned.as_dict(sample),
            "unbuildable": {**self.unbuildable.as_dict(sample), "errors": dict(list(self.errors.items())[:sample])},
            "wrong_collection": {
                "count": len(self.wrong_collection),
                "problems": [
                    {"problem": p.problem, "collection": p.collection, "detail": p.detail}
                    for p in self.wrong_collection
                ],
            },
            "pending": self.pending,
            "failed": self.failed,
            "repair": (
                None
                if self.queued_upserts is None
                else {"upserts": self.queued_upserts, "deletes": self.queued_deletes, "unrepairable": self.unrepairable}
            ),
        }


def _collection_problems(index: SemanticIndex, active: Collection | None, report: CheckReport) -> None:
    problems = report.wrong_collection
    rebuild = f"run `semantic_index --index {index.name} --rebuild`"
    if active is None:
        problems.append(
            CollectionProblem(
                "not_built",
                None,
                f"no active collection: every row is missing (run `semantic_index --index {index.name}`, "
                "or `semantic_check --repair` and let the drain fill it)",
            )
        )
    else:
        encoder = get_encoder().name
        if not get_store().has_collection(active.table):
            report.comparable = False
            problems.append(
                CollectionProblem("table_missing", active.table, f"the active collection's table is missing: {rebuild}")
            )
        if active.model not in available_encoder_names():
            report.comparable = False
            problems.append(
                CollectionProblem(
                    "model_not_configured",
                    active.table,
                    f"built with {active.model!r}, which is not configured (ENCODER is {encoder!r}): "
                    f"add it to ENCODERS or {rebuild}",
                )
            )
        elif active.model != encoder:
            problems.append(
                CollectionProblem(
                    "model_not_encoder",
                    active.table,
                    f"served with {active.model!r} from ENCODERS, ENCODER is {encoder!r}: {rebuild} "
                    "(or import that model's vectors)",
                )
            )
        if active.text_version != index.text_version:
            problems.append(
                CollectionProblem(
                    "text_version",
                    active.table,
                    f"built with text_version {active.text_version}, the declaration has {index.text_version}: "
                    f"{rebuild}",
                )
            )
    for building in Collection.objects.filter(index=index.name, state=Collection.State.BUILDING).order_by("id"):
        problems.append(
            CollectionProblem(
                "building",
                building.table,
                f"a collection is being built since {building.created_at:%Y-%m-%d %H:%M:%S} ({building.model}): "
                f"a rebuild in progress, or one a crashed rebuild left behind ({rebuild} discards it)",
            )
        )


def check_index(index: SemanticIndex, batch_size: int = 256) -> CheckReport:
    """Compare ``index``'s queryset with its active collection (see the module's docstring)."""
    active = active_collection(index)
    report = CheckReport(index.name, active.table if active else None, active.model if active else None)
    _collection_problems(index, active, report)
    stored: dict[str, str] = {}
    if active is not None and not any(p.problem == "table_missing" for p in report.wrong_collection):
        stored = get_store().content_hashes(active.table)
    report.indexed = len(stored)
    rows = index.get_queryset().order_by("pk").iterator(chunk_size=batch_size)
    for chunk in chunked(rows, batch_size):
        report.in_queryset += len(chunk)
        for obj in chunk:
            object_id = str(obj.pk)
            stored_hash = stored.pop(object_id, None)
            try:
                (document,) = index.documents([obj])
            except Exception as exc:
                report.unbuildable.ids.append(object_id)
                if len(report.errors) < 100:
                    report.errors[object_id] = f"building the document failed: {exc!r}"
                continue
            if stored_hash is None:
                report.missing.ids.append(object_id)
            elif stored_hash != document.content_hash:
                report.stale.ids.append(object_id)
    report.orphaned.ids.extend(stored)  # what is left was deleted or left the queryset
    events = SyncEvent.objects.filter(index=index.name)
    report.pending = events.filter(status=SyncEvent.Status.PENDING).count()
    report.failed = events.filter(status=SyncEvent.Status.FAILED).count()
    if report.pending or report.failed:
        waiting = set(events.values_list("object_id", flat=True))
        for kind in (report.missing, report.stale, report.orphaned, report.unbuildable):
            kind.queued = sum(object_id in waiting for object_id in kind.ids)
    return report


def _record(index: SemanticIndex, ids: Iterable[str], op: str) -> int:
    return sum(record_changes(index, chunk, op) for chunk in chunked(ids, REPAIR_CHUNK))


def repair(index: SemanticIndex, report: CheckReport) -> CheckReport:
    """Queue the fixes of ``report`` in the outbox, in one transaction (the drain is scheduled at its
    commit): an upsert per missing or stale row, a delete per orphaned id. Nothing is queued for rows
    the drain could not write (the active collection's table is missing or its model is not
    configured: those need a rebuild), nor for unbuildable rows."""
    upserts = deletes = 0
    if report.comparable:
        with transaction.atomic():
            upserts = _record(index, [*report.missing.ids, *report.stale.ids], SyncEvent.Op.UPSERT)
            deletes = _record(index, report.orphaned.ids, SyncEvent.Op.DELETE)
    report.queued_upserts, report.queued_deletes = upserts, deletes
    return report
