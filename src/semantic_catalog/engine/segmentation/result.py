"""``segmentation.json``: a run's result as a file (written by the offline CLI, imported on the web server),
read strictly and validated against the ids the catalog knows."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from semantic_catalog.engine.errors import BadFile
from semantic_catalog.engine.segmentation.types import Assignment, Segment, SegmentationResult, Usage

FORMAT = "semantic-catalog-segmentation"
VERSION = 1


def result_to_dict(result: SegmentationResult) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "run_id": result.run_id,
        "config": result.config,
        "item_ids": list(result.item_ids),
        "segments": [asdict(s) for s in result.segments],
        "first_pass": [asdict(a) for a in result.first_pass],
        "refined": [asdict(a) for a in result.refined],
        "usage": {stage: asdict(u) for stage, u in result.usage.items()},
        "problems": list(result.problems),
    }


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise BadFile(f"{where}: missing {key!r}.")
    if not isinstance(data[key], kind):
        raise BadFile(f"{where}: {key!r} has the wrong type.")
    return data[key]


def result_from_dict(data: Any, where: str = "segmentation.json") -> SegmentationResult:
    """The result in ``data``; a ``BadFile`` naming the field for anything malformed."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadFile(f'{where}: not a segmentation result (expected "format": "{FORMAT}").')
    if data.get("version") != VERSION:
        raise BadFile(f"{where}: unsupported version {data.get('version')!r}; this library reads version {VERSION}.")
    try:
        segments = [
            Segment(
                id=str(s["id"]), name=str(s["name"]), definition=str(s["definition"]), item_count=int(s["item_count"])
            )
            for s in _require(data, "segments", list, where)
        ]
        first_pass = [_assignment(a) for a in _require(data, "first_pass", list, where)]
        refined = [_assignment(a) for a in _require(data, "refined", list, where)]
        usage = {str(k): Usage(**v) for k, v in (data.get("usage") or {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise BadFile(f"{where}: a segment, assignment or usage entry is malformed ({exc}).") from None
    item_ids = _require(data, "item_ids", list, where)
    if not all(isinstance(i, str) for i in item_ids):
        raise BadFile(f"{where}: 'item_ids' must be strings.")
    return SegmentationResult(
        run_id=str(_require(data, "run_id", str, where)),
        config=_require(data, "config", dict, where),
        item_ids=item_ids,
        segments=segments,
        first_pass=first_pass,
        refined=refined,
        usage=usage,
        problems=[str(p) for p in data.get("problems") or []],
    )


def _assignment(data: dict[str, Any]) -> Assignment:
    confidence = float(data["confidence"])
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence {confidence} is not between 0 and 1")
    return Assignment(item_id=str(data["item_id"]), segment=str(data["segment"]), confidence=confidence)


def write_result(result: SegmentationResult, path_or_url: str, storage_options: dict[str, Any] | None = None) -> str:
    """Writes ``segmentation.json`` (a local path or an fsspec URL); returns where."""
    import fsspec

    data = json.dumps(result_to_dict(result), ensure_ascii=False, indent=1)
    fs, path = fsspec.core.url_to_fs(str(path_or_url), **(storage_options or {}))
    parent = path.rsplit("/", 1)[0]
    if parent and parent != path:
        fs.makedirs(parent, exist_ok=True)
    fs.pipe_file(path, data.encode("utf-8"))
    return str(path_or_url)


def read_result(path_or_url: str, storage_options: dict[str, Any] | None = None) -> SegmentationResult:
    import fsspec

    name = str(path_or_url).rsplit("/", 1)[-1]
    try:
        fs, path = fsspec.core.url_to_fs(str(path_or_url), **(storage_options or {}))
        raw = fs.cat_file(path)
    except (OSError, ValueError):
        raise BadFile(f"{name}: the file cannot be read.") from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadFile(f"{name}: not JSON ({exc}).") from None
    return result_from_dict(data, name)


def validate_result(result: SegmentationResult, known_ids: Iterable[str]) -> list[str]:
    """What stops an import: ids the catalog does not know, items not assigned exactly once, segments
    referenced that do not exist. Empty: the result can be imported."""
    known = {str(i) for i in known_ids}
    problems = []
    item_ids = list(result.item_ids)
    if not item_ids:
        problems.append("the result has no items")
    if unknown := [i for i in item_ids if i not in known]:
        problems.append(f"{len(unknown)} unknown item id(s): {', '.join(unknown[:10])}")
    if duplicated := [i for i, n in Counter(item_ids).items() if n > 1]:
        problems.append(f"item ids listed twice: {', '.join(duplicated[:10])}")
    segment_ids = [s.id for s in result.segments]
    if twice := [s for s, n in Counter(segment_ids).items() if n > 1]:
        problems.append(f"segment ids defined twice: {', '.join(twice[:10])}")
    counts = Counter(a.item_id for a in result.refined)
    expected = set(item_ids)
    if missing := [i for i in item_ids if counts[i] == 0]:
        problems.append(f"{len(missing)} item(s) without a segment: {', '.join(missing[:10])}")
    if more := [i for i, n in counts.items() if n > 1]:
        problems.append(f"{len(more)} item(s) assigned more than once: {', '.join(more[:10])}")
    if strangers := [i for i in counts if i not in expected]:
        problems.append(f"assignments of items not in the result: {', '.join(strangers[:10])}")
    defined = set(segment_ids)
    if undefined := sorted({a.segment for a in result.refined} - defined):
        problems.append(f"assignments to segments that do not exist: {', '.join(undefined[:10])}")
    return problems
