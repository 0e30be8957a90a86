"""Cross-store analysis results: stored (every row validated, then the previous run of the same kind
replaced in one transaction, or only reported on a dry run; bad input changes nothing) and read
back for a product or a category."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from semantic_catalog.crossstore.declaration import analysis_ready
from semantic_catalog.engine.crossstore.substitutions import check_level
from semantic_catalog.engine.documents import SearchHit
from semantic_catalog.engine.errors import InvalidQuery, SemanticCatalogError
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import AnalysisRun, CategoryLink, ProductMatch, Substitution
from semantic_catalog.search.service import ObjectNotFound, Result, existing_ids, hydrate, plain_ids, query_limits

SCORE_RANGE = {"links": (-1.0, 1.0), "substitutions": (-1.0, 1.0), "matches": (0.0, 1.0)}
FIELDS = {
    "links": ("source_store", "source_category", "target_store", "target_category", "score"),
    "substitutions": ("product", "substitute", "level", "score", "rank"),
    "matches": ("product", "match", "score"),
}


class ResultsRejected(SemanticCatalogError):
    """The rows cannot be stored; ``problems`` says which and why (at most 20 are listed)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        super().__init__(f"{len(problems)} invalid rows, nothing was changed: {shown}")


@dataclass
class RunReport:
    kind: str
    rows: int
    replaced: int = 0
    dry_run: bool = False
    run_id: int | None = None


def _pairs(kind: str) -> tuple[str, str]:
    return {"links": ("source_category", "target_category"), "substitutions": ("product", "substitute")}.get(
        kind, ("product", "match")
    )


MAX_RANK = 32767  # Substitution.rank is a small integer column


def _whole(value: Any, low: int, high: int) -> bool:
    """A JSON whole number from ``low`` to ``high`` (true and 3.0 are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _reasons_ok(reasons: Any) -> bool:
    """A match's optional ``reasons``: ``{"model_shared": 0.35, ...}`` (names to finite numbers)."""
    return isinstance(reasons, dict) and all(
        isinstance(name, str)
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        for name, value in reasons.items()
    )


def check_rows(index: SemanticIndex, kind: str, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every problem of ``rows`` (empty when they can be stored)."""
    if kind not in SCORE_RANGE:
        return [f"unknown kind {kind!r}; use links, substitutions or matches"]
    left, right = _pairs(kind)
    low, high = SCORE_RANGE[kind]
    problems: list[str] = []
    seen: set[tuple] = set()
    product_ids: set[str] = set()
    for number, row in enumerate(rows, start=1):
        where = f"{kind} row {number}"
        missing = [name for name in FIELDS[kind] if row.get(name) in (None, "")]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        a, b, score = str(row[left]), str(row[right]), row["score"]
        if a == b:
            problems.append(f"{where}: {left} and {right} are the same ({a})")
        number = isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score)
        if not number or not low <= score <= high:
            problems.append(f"{where}: score {score!r} is not a number from {low} to {high}")
        key: tuple = (a, b)
        if kind == "links" and str(row["source_store"]) == str(row["target_store"]):
            problems.append(f"{where}: a link joins two stores; both sides are in store {row['source_store']}")
        if kind == "substitutions":
            if not _whole(row["level"], 3, 4):
                problems.append(f"{where}: level must be 3 or 4, not {row['level']!r}")
            if not _whole(row["rank"], 1, MAX_RANK):
                problems.append(f"{where}: rank must be a whole number from 1 to {MAX_RANK}, not {row['rank']!r}")
            key = (a, b, repr(row["level"]))
        if kind == "matches" and not _reasons_ok(row.get("reasons", {})):
            problems.append(f"{where}: reasons must be an object of signal names to finite numbers")
        if key in seen:
            problems.append(f"{where}: duplicate of an earlier row {key}")
        seen.add(key)
        if kind != "links":
            product_ids.update((a, b))
    if product_ids:
        problems += unknown_ids(index, product_ids, set(visible_rows(index, product_ids, objects=False)))
    return problems


ID_CHUNK = 900  # ids per query: old SQLite builds take at most 999 parameters


def visible_rows(index: SemanticIndex, ids: Iterable[str], objects: bool = True) -> dict[str, Any]:
    """The ids among ``ids`` that are rows of the index's queryset, by id string, with their row (or only
    their primary key). An id that is no valid primary key (text for an integer key, beyond 64 bits), a
    row the queryset hides and an absent row are alike left out, so no answer tells them apart."""
    pks, _ = index.parse_ids(sorted(set(ids)))
    values = list(pks.values())
    queryset = index.get_queryset()
    found: dict[str, Any] = {}
    for start in range(0, len(values), ID_CHUNK):
        chunk = queryset.filter(pk__in=values[start : start + ID_CHUNK])
        if objects:
            found.update((str(obj.pk), obj) for obj in chunk)
        else:
            found.update((str(pk), pk) for pk in chunk.values_list("pk", flat=True))
    return found


def unknown_ids(index: SemanticIndex, ids: Iterable[str], found: Collection[str]) -> list[str]:
    """The problem (one line, or none) of the ``ids`` that are not among ``found`` (``visible_rows``)."""
    unknown = sorted(set(ids) - set(found))
    return [f"ids not in index {index.name!r}: {', '.join(unknown[:20])}"] if unknown else []


def save_run(
    index: SemanticIndex,
    kind: str,
    rows: Sequence[dict[str, Any]],
    model: str,
    computed_at: datetime,
    source: str = "server",
    parameters: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> RunReport:
    """Store ``rows`` as the new run of ``kind`` for ``index``, replacing the previous one atomically."""
    problems = check_rows(index, kind, rows)
    if problems:
        raise ResultsRejected(problems)
    previous = AnalysisRun.objects.filter(index=index.name, kind=kind)
    report = RunReport(kind, len(rows), replaced=previous.count(), dry_run=dry_run)
    if dry_run:
        return report
    with transaction.atomic():
        run = AnalysisRun.objects.create(
            index=index.name,
            kind=kind,
            model=model,
            source=source,
            parameters=parameters or {},
            computed_at=computed_at,
        )
        model_class = {"links": CategoryLink, "substitutions": Substitution, "matches": ProductMatch}[kind]
        extra = ("reasons",) if kind == "matches" else ()  # optional columns, stored when given
        model_class.objects.bulk_create(
            model_class(run=run, **{name: row[name] for name in FIELDS[kind] + extra if name in row}) for row in rows
        )
        previous.exclude(pk=run.pk).delete()
    report.run_id = run.pk
    return report


# -- reading the current results ---------------------------------------------------------------------


def substitutes(index: SemanticIndex, pk: Any, level: Any, limit: Any = None) -> list[Result]:
    """The latest run's substitutes of one product at level 3 or 4, best first."""
    try:
        level = check_level(int(level))
    except (TypeError, ValueError):
        raise InvalidQuery(f"level must be 3 or 4, not {level!r}.") from None
    size = query_limits().check_limit(limit)
    (key,) = existing_ids(index, [pk], "substitutions", ObjectNotFound)
    rows = Substitution.objects.filter(run__index=index.name, product=key, level=level).order_by("rank")
    return hydrate(index, [SearchHit(r.substitute, r.score, {"rank": r.rank}) for r in rows[: size + 20]], size)


def matches(index: SemanticIndex, pk: Any) -> list[Result]:
    """The same item in other stores, from the latest matches run (either side of a pair), each with
    the reasons (points per signal) the run stored."""
    (key,) = existing_ids(index, [pk], "matches", ObjectNotFound)
    rows = ProductMatch.objects.filter(run__index=index.name).filter(Q(product=key) | Q(match=key))
    pairs = [(r.match if r.product == key else r.product, r) for r in rows]
    hits = sorted((SearchHit(other, r.score) for other, r in pairs), key=lambda h: h.id)
    reasons = {str(other): r.reasons for other, r in pairs}
    return [replace(r, reasons=reasons.get(str(r.id), {})) for r in hydrate(index, hits, len(hits))]


def _require_category(index: SemanticIndex, category: str) -> str:
    """``category`` as the id string the results use, when it is a category of the index's tree:
    ``ObjectNotFound`` (404) for an id that is no valid category id or names no category.

    With ``category_field`` a foreign key, its model is asked (one query). An index that overrides
    ``category_chain`` instead has no category table to ask: any id is taken (no links, empty list)."""
    if not analysis_ready(index):
        raise InvalidQuery(
            f"Index {index.name!r} declares no shop and category tree (CrossStoreMixin with shop_field and "
            "category_field), so it has no category links."
        )
    field_name = getattr(index, "category_field", "")
    field = index.model._meta.get_field(field_name) if field_name else None  # type: ignore[union-attr]
    if field is None or not field.is_relation or field.related_model is None:
        return category
    model = field.related_model
    try:
        pk = model._meta.pk.to_python(category)
    except ValidationError:
        pk = None
    if pk is None:
        raise ObjectNotFound(
            f"links: {plain_ids([category])} is not a valid category id of {index.name!r}.", [category]
        )
    if not model._default_manager.filter(pk=pk).exists():
        raise ObjectNotFound(
            f"links: there is no category {plain_ids([category])} in index {index.name!r}.", [category]
        )
    return str(pk)


def category_links(index: SemanticIndex, category: str) -> list[dict[str, Any]]:
    """Categories of other stores linked to ``category`` in the latest links run, best first;
    ``ObjectNotFound`` when ``category`` is no category of the index (see ``_require_category``)."""
    category = _require_category(index, str(category))
    rows = CategoryLink.objects.filter(run__index=index.name).filter(
        Q(source_category=category) | Q(target_category=category)
    )
    linked = [
        {"category": r.target_category, "store": r.target_store, "score": r.score}
        if r.source_category == category
        else {"category": r.source_category, "store": r.source_store, "score": r.score}
        for r in rows
    ]
    return sorted(linked, key=lambda link: -link["score"])


# -- importing result files ----------------------------------------------------------------------------


def _catalog_stores(index: SemanticIndex) -> tuple[dict[str, str], dict[str, str]]:
    """Store of every product and of every category of the index's rows."""
    products: dict[str, str] = {}
    categories: dict[str, str] = {}
    for obj in index.get_queryset().iterator(chunk_size=1000):
        data = index.analysis_data(obj)
        if data is None:
            raise InvalidQuery(
                f"Index {index.name!r} declares no shop_field / category_field (CrossStoreMixin) to check results "
                "against."
            )
        products[str(obj.pk)] = data["store"]
        for category_id, _ in data["category"]:
            categories[str(category_id)] = data["store"]
    return products, categories


def store_problems(index: SemanticIndex, kind: str, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Rows that contradict the catalog's stores: links of unknown categories or with the wrong store,
    matches within one store. (Substitutes may come from any store: nothing to check.)"""
    if kind not in ("links", "matches"):
        return []
    product_store, category_store = _catalog_stores(index)
    problems = []
    for number, row in enumerate(rows, start=1):
        where = f"{kind} row {number}"
        if kind == "links":
            for side in ("source", "target"):
                category, store = str(row.get(f"{side}_category")), str(row.get(f"{side}_store"))
                if category not in category_store:
                    problems.append(f"{where}: {side} category {category} is not a category of index {index.name!r}")
                elif category_store[category] != store:
                    problems.append(
                        f"{where}: category {category} belongs to store {category_store[category]}, not {store}"
                    )
        elif kind == "matches":
            a, b = product_store.get(str(row.get("product"))), product_store.get(str(row.get("match")))
            if a is not None and a == b:
                problems.append(f"{where}: both products are in store {a}; a match joins two stores")
    return problems


def import_results(
    index: SemanticIndex, payload: Any, source: str, active_model: str, dry_run: bool = False
) -> RunReport:
    """Validate a result file's content (from ``semantic-catalog analyze``) and store it as a new run."""
    from semantic_catalog.engine.crossstore.analysis import check_result_payload

    payload = check_result_payload(payload, source)
    if payload["index"] != index.name:
        raise ResultsRejected([f"{source} is for index {payload['index']!r}, not {index.name!r}"])
    if payload["model"] != active_model:
        raise ResultsRejected(
            [f"{source} was computed with model {payload['model']!r}; index {index.name!r} serves {active_model!r}"]
        )
    kind, rows = payload["kind"], payload["rows"]
    problems = check_rows(index, kind, rows) + store_problems(index, kind, rows)
    if problems:
        raise ResultsRejected(problems)
    computed_at = datetime.fromisoformat(str(payload["computed_at"]))
    return save_run(index, kind, rows, payload["model"], computed_at, source, payload.get("parameters") or {}, dry_run)
