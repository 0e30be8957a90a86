"""Labelled pairs of an index, stored: validated first (every id a row of the index, the two products in
two stores), then written in one transaction, or only counted on a dry run; bad input changes nothing.
Parsing (the API's body, label files) is the engine's (``engine.crossstore.labels``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from semantic_catalog.crossstore.declaration import analysis_ready
from semantic_catalog.crossstore.results import ID_CHUNK, unknown_ids, visible_rows
from semantic_catalog.engine.crossstore.labels import MAX_ID, LabelledPair, summary
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import MatchLabel


class LabelsRejected(SemanticCatalogError):
    """The pairs cannot be stored; ``problems`` says which and why (at most 20 are listed)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} invalid pairs, nothing was changed: {summary(problems)}")


@dataclass
class LabelReport:
    created: int = 0
    updated: int = 0  # pairs that were labelled the other way before
    unchanged: int = 0
    dry_run: bool = False


def check_pairs(index: SemanticIndex, pairs: Sequence[LabelledPair]) -> list[str]:
    """Every problem of ``pairs`` for ``index`` (empty when they can be stored): an id that is not a row of
    the index's queryset (hidden and absent rows alike), a pair within one store (an index with a shop),
    a pair given twice."""
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        key = (pair.left, pair.right)
        if not 0 < len(pair.left) <= MAX_ID or not 0 < len(pair.right) <= MAX_ID:
            problems.append(f"pair ({pair.left}, {pair.right}): an id is empty or longer than {MAX_ID} characters")
        elif pair.left >= pair.right:
            problems.append(f"pair ({pair.left}, {pair.right}): two products, smaller id first (LabelledPair.of)")
        if key in seen:
            problems.append(f"pair ({pair.left}, {pair.right}) is given twice")
        seen.add(key)
    ids = {i for pair in pairs for i in (pair.left, pair.right)}
    rows = visible_rows(index, ids)
    problems += unknown_ids(index, ids, rows)
    if analysis_ready(index):
        shops = {key: index.shop_of(obj) for key, obj in rows.items()}  # type: ignore[attr-defined]
        for pair in pairs:
            shop = shops.get(pair.left)
            if shop is not None and shop == shops.get(pair.right):
                problems.append(
                    f"pair ({pair.left}, {pair.right}): both products are in store {shop}; a labelled pair joins "
                    "two stores"
                )
    return problems


def _stored(index: SemanticIndex, pairs: Sequence[LabelledPair]) -> dict[tuple[str, str], bool]:
    """The labels already stored for ``pairs``, by (left, right)."""
    wanted = {(pair.left, pair.right) for pair in pairs}
    lefts = sorted({left for left, _ in wanted})
    stored: dict[tuple[str, str], bool] = {}
    for start in range(0, len(lefts), ID_CHUNK):
        rows = MatchLabel.objects.filter(index=index.name, left__in=lefts[start : start + ID_CHUNK])
        for left, right, label in rows.values_list("left", "right", "label"):
            if (left, right) in wanted:
                stored[(left, right)] = label
    return stored


def save_labels(
    index: SemanticIndex,
    pairs: Iterable[LabelledPair],
    source: str,
    labelled_by: str = "",
    dry_run: bool = False,
) -> LabelReport:
    """Store ``pairs`` as labels of ``index``, all or nothing: a pair labelled the other way before is
    updated, the same label again is left as it was. ``LabelsRejected`` (nothing changed) when any pair
    cannot be stored."""
    pairs = list(pairs)
    if source not in MatchLabel.Source.values:
        raise LabelsRejected([f"unknown source {source!r}; use {', '.join(MatchLabel.Source.values)}"])
    problems = check_pairs(index, pairs)
    if problems:
        raise LabelsRejected(problems)
    report = LabelReport(dry_run=dry_run)
    with transaction.atomic():
        stored = _stored(index, pairs)
        changed = []
        for pair in pairs:
            before = stored.get((pair.left, pair.right))
            if before is None:
                report.created += 1
            elif before != pair.label:
                report.updated += 1
            else:
                report.unchanged += 1
                continue
            changed.append(pair)
        if dry_run or not changed:
            return report
        # an upsert: a pair another request stored meanwhile is updated, not a unique-constraint error
        MatchLabel.objects.bulk_create(
            [
                MatchLabel(
                    index=index.name,
                    left=pair.left,
                    right=pair.right,
                    label=pair.label,
                    source=source,
                    labelled_by=labelled_by[:150],
                )
                for pair in changed
            ],
            update_conflicts=True,
            unique_fields=["index", "left", "right"],
            update_fields=["label", "source", "labelled_by", "updated_at"],
        )
    return report


def label_rows(index: SemanticIndex) -> QuerySet[MatchLabel]:
    """The stored labels of ``index``, in pair order."""
    return MatchLabel.objects.filter(index=index.name).order_by("left", "right")


def index_labels(index: SemanticIndex) -> list[LabelledPair]:
    """The labelled pairs of ``index`` in pair order (what a label file and ``train-matcher`` take)."""
    return sorted(LabelledPair(*row) for row in label_rows(index).values_list("left", "right", "label"))
