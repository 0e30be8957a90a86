"""The report page of a segmentation run (admin): segment sizes, a 2-D map of the items' vectors, confidence
per segment, stage timings and tokens, and a confusion table against a column of the model. Everything here
is computed from the run's rows and the index, so a report never needs the log files or the LLM."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.core.exceptions import FieldDoesNotExist, ValidationError

from semantic_catalog.engine.errors import NotIndexedYet, SemanticCatalogError
from semantic_catalog.engine.segmentation.quality import agreement
from semantic_catalog.engine.segmentation.types import USAGE_FIELDS
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import Segment, SegmentationRun
from semantic_catalog.registry import registry
from semantic_catalog.segmentation.vectors import stored_vectors

MAP_POINTS = 3000  # at most this many items on the map: the page stays light, the shape stays visible
MAP_SEED = 17  # the same run always shows the same sample
TOP_VALUES = 20  # rows of the confusion table; the rest are summed as "other"
ID_BATCH = 900  # ids per query: below SQLite's variable limit
STAGE_ORDER = ["extract", "consolidate", "cluster", "name", "refine"]
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
DELETED, EMPTY, OTHER = "(row deleted)", "(empty)", "other"


def color(position: int) -> str:
    """A segment's colour, the same in every chart and table (golden-angle hues past the palette)."""
    if position < len(PALETTE):
        return PALETTE[position]
    return f"hsl({(position * 137.508) % 360:.0f}, 55%, 50%)"


def report_context(run: SegmentationRun, compare: str = "") -> dict[str, Any]:
    """The template's context: ``completed`` False (only the header) until the run has completed."""
    header = {
        "problem_count": run.result_summary.get("problem_count", len(run.result_summary.get("problems", []))),
        "mode": run.params.get("mode", "full"),
        "naming": run.params.get("naming", "llm") if run.params.get("mode") == "embedding_first" else "",
        "model": run.model_config.get("model", ""),
    }
    if run.status != SegmentationRun.Status.COMPLETED:
        return {"header": header, "completed": False}
    segments = sorted(run.segments.all(), key=lambda s: (len(s.key), s.key))  # S_2 before S_10
    rows = list(run.refined.order_by("pk").values_list("item_id", "segment_id", "confidence"))
    by_pk = {segment.pk: position for position, segment in enumerate(segments)}
    positions = [by_pk[segment] for _, segment, _ in rows]
    table = segment_table(segments, positions, [confidence for _, _, confidence in rows])
    index, index_error = _index(run)
    ids = [item for item, _, _ in rows]
    points, map_notice = item_map(index, index_error, ids, positions, len(segments))
    stages = stage_rows(run.totals)
    context: dict[str, Any] = {
        "header": header,
        "completed": True,
        "segments": table,
        "assigned": len(rows),
        "stages": stages,
        "tokens_used": sum(row["tokens_in"] + row["tokens_out"] for row in stages),
        "map_notice": map_notice,
        "map_shown": sum(len(p) for p in points) if points else 0,
        "charts": chart_data(table, points, stages),
        **compare_context(index, index_error, compare, ids, positions, len(segments)),
    }
    return context


def _index(run: SegmentationRun) -> tuple[SemanticIndex | None, str]:
    try:
        return registry.get(run.index), ""
    except SemanticCatalogError as exc:
        return None, str(exc)


def segment_table(segments: Sequence[Segment], positions: Sequence[int], confidences: Sequence[float]) -> list[dict]:
    """Per segment: key, name, colour, item count and its confidence's mean, min, quartiles and max."""
    values: list[list[float]] = [[] for _ in segments]
    for position, confidence in zip(positions, confidences):
        values[position].append(confidence)
    table = []
    for position, segment in enumerate(segments):
        row: dict[str, Any] = {"key": segment.key, "name": segment.name, "color": color(position)}
        row["items"] = len(values[position])
        if values[position]:
            array = np.asarray(values[position], dtype=np.float64)
            q1, median, q3 = np.percentile(array, [25, 50, 75])
            stats = {"mean": array.mean(), "min": array.min(), "q1": q1, "median": median, "q3": q3, "max": array.max()}
            row.update({name: round(float(value), 3) for name, value in stats.items()})
        table.append(row)
    return table


def stage_rows(totals: dict[str, Any]) -> list[dict[str, Any]]:
    """run.totals as rows in pipeline order (a JSON column may not keep the stages' order)."""
    known = [stage for stage in STAGE_ORDER if stage in totals]
    order = known + sorted(stage for stage in totals if stage not in STAGE_ORDER)
    fields = USAGE_FIELDS
    rows = []
    for stage in order:
        usage = totals[stage] if isinstance(totals[stage], dict) else {}
        row = {name: usage.get(name) or 0 for name in fields}
        row["seconds"] = round(float(row["seconds"]), 3)
        rows.append({"stage": stage, **row})
    return rows


def sample_positions(count: int, limit: int = MAP_POINTS) -> np.ndarray:
    """Which of ``count`` items the map shows: all of them, or ``limit`` drawn with a fixed seed."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(MAP_SEED).choice(count, size=limit, replace=False))


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The centred vectors projected on their two first principal axes (SVD); each axis' sign is fixed
    so that its largest loading is positive, so the same vectors always give the same picture."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"pca_2d takes a 2-D array of vectors, got shape {x.shape}.")
    out = np.zeros((len(x), 2))
    if len(x) < 2:
        return out
    x = x - x.mean(axis=0)
    _, _, axes = np.linalg.svd(x, full_matrices=False)
    axes = axes[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    out[:, : len(axes)] = x @ axes.T
    return out


def item_map(
    index: SemanticIndex | None, index_error: str, ids: Sequence[str], positions: Sequence[int], segment_count: int
) -> tuple[list[list[dict[str, float]]] | None, str]:
    """Per segment, the [{x, y}] of its sampled items; or None and why there is no map."""
    if index is None:
        return None, f"No map: the run's index is not registered any more ({index_error})"
    if not ids:
        return None, "No map: the run assigned no item."
    chosen = sample_positions(len(ids))
    try:
        vectors = stored_vectors(index, [ids[i] for i in chosen])
    except NotIndexedYet:
        return None, (
            f"No map: the vectors of this run's items are not in index {index.name!r} (it is not built yet, or it "
            "was rebuilt or rows were deleted since the run)."
        )
    except SemanticCatalogError as exc:
        return None, f"No map: the vector store could not be read ({type(exc).__name__}: {exc})."
    coordinates = np.round(pca_2d(vectors), 4)
    points: list[list[dict[str, float]]] = [[] for _ in range(segment_count)]
    for row, i in enumerate(chosen):
        points[positions[i]].append({"x": float(coordinates[row, 0]), "y": float(coordinates[row, 1])})
    return points, ""


def chart_data(table: list[dict], points: list[list[dict]] | None, stages: list[dict]) -> dict[str, Any]:
    """What the page's script draws (passed through json_script)."""
    labels = [f"{row['key']} {row['name']}"[:60] for row in table]
    colors = [row["color"] for row in table]
    with_items = [row for row in table if row["items"]]
    return {
        "sizes": {"labels": labels, "values": [row["items"] for row in table], "colors": colors},
        "confidence": {
            "labels": [f"{row['key']} {row['name']}"[:60] for row in with_items],
            "mean": [row["mean"] for row in with_items],
            "range": [[row["min"], row["max"]] for row in with_items],
            "colors": [row["color"] for row in with_items],
        },
        "map": None
        if points is None
        else [
            {"label": label, "color": hue, "points": segment_points}
            for label, hue, segment_points in zip(labels, colors, points)
        ],
        "stages": {
            "labels": [row["stage"] for row in stages],
            "seconds": [row["seconds"] for row in stages],
            "tokens_in": [row["tokens_in"] for row in stages],
            "tokens_out": [row["tokens_out"] for row in stages],
        },
    }


def compare_fields(index: SemanticIndex) -> dict[str, str]:
    """The index's declared filter fields that are columns of its model, name -> column: a filter field
    computed by a getter counts when the model has a column of that name (the demo's ``category``)."""
    fields: dict[str, str] = {}
    for name, column in index.filter_columns.items():
        if column is None:
            try:
                field = index.model._meta.get_field(name)  # type: ignore[union-attr]
            except FieldDoesNotExist:
                continue
            if not field.concrete or field.many_to_many:
                continue
            column = field.attname
        fields[name] = column
    return fields


def compare_context(
    index: SemanticIndex | None,
    index_error: str,
    compare: str,
    ids: Sequence[str],
    positions: Sequence[int],
    segment_count: int,
) -> dict[str, Any]:
    """The compare form's fields, and the confusion table for ``compare`` or an error saying what to pick."""
    fields = compare_fields(index) if index is not None else {}
    context: dict[str, Any] = {"compare_fields": list(fields), "compare": compare, "compare_error": ""}
    if not compare:
        return context
    if index is None:
        context["compare_error"] = f"Cannot compare: the run's index is not registered any more ({index_error})"
        return context
    if compare not in fields:
        offered = ", ".join(fields) or "none: the index declares no filter field that is a column"
        context["compare_error"] = (
            f"Cannot compare with {compare[:100]!r}: not a declared filter field of index {index.name!r} that is a "
            f"column of its model. Pick one of: {offered}."
        )
        return context
    labels = true_labels(index, compare, fields[compare], ids)
    context["confusion"] = confusion_table(labels, positions, segment_count)
    return context


def true_labels(index: SemanticIndex, name: str, column: str, ids: Sequence[str]) -> list[str]:
    """Each item's value of the column, shown as text (a foreign key by its row's str()); DELETED for an
    item whose row is gone, EMPTY for a null or blank value."""
    model: Any = index.model
    manager = model._base_manager  # every row, whatever the default manager hides
    values: dict[str, Any] = {}
    keys = []
    for item_id in ids:
        try:
            keys.append(model._meta.pk.to_python(item_id))
        except ValidationError:
            continue  # an id this model cannot have: its row is counted as deleted
    for start in range(0, len(keys), ID_BATCH):
        chunk = keys[start : start + ID_BATCH]
        values.update((str(pk), value) for pk, value in manager.filter(pk__in=chunk).values_list("pk", column))
    field = model._meta.get_field(name)
    names: dict[Any, str] = {}
    if field.is_relation and field.related_model is not None:
        related = {value for value in values.values() if value is not None}
        names = {pk: str(obj) for pk, obj in field.related_model._base_manager.in_bulk(list(related)).items()}
    labels = []
    for item_id in ids:
        if item_id not in values:
            labels.append(DELETED)
        elif values[item_id] is None or values[item_id] == "":
            labels.append(EMPTY)
        else:
            labels.append(names.get(values[item_id], str(values[item_id])))
    return labels


def confusion_table(labels: Sequence[str], positions: Sequence[int], segment_count: int) -> dict[str, Any]:
    """Rows: the TOP_VALUES most common labels and OTHER; columns: segments; cells: item counts. The
    agreement numbers are computed on the whole table (every label), not on the rows shown."""
    values = sorted(Counter(labels).items(), key=lambda pair: (-pair[1], pair[0]))
    order = {label: row for row, (label, _) in enumerate(values)}
    full = np.zeros((len(values), segment_count), dtype=np.int64)
    for label, position in zip(labels, positions):
        full[order[label], position] += 1
    shown = [
        {"label": label, "cells": full[row].tolist(), "total": int(full[row].sum())}
        for row, (label, _) in enumerate(values[:TOP_VALUES])
    ]
    if len(values) > TOP_VALUES:
        rest = full[TOP_VALUES:].sum(axis=0)
        label = f"{OTHER} ({len(values) - TOP_VALUES} values)"
        shown.append({"label": label, "cells": rest.tolist(), "total": int(rest.sum())})
    return {
        "rows": shown,
        "column_totals": full.sum(axis=0).tolist(),
        "total": int(full.sum()),
        "distinct": len(values),
        "top": TOP_VALUES,
        "other": len(values) > TOP_VALUES,
        "metrics": agreement(full),
    }
