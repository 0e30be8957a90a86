"""Import of a ``segmentation.json`` made by ``semantic-catalog segment`` on another machine: checked
whole (known ids of the index, every item assigned exactly once, segments referenced exist) and
stored all or nothing as a completed SegmentationRun; a dry run reports what would change."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.engine.segmentation.types import SegmentationResult
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import RunItem, SegmentationRun
from semantic_catalog.segmentation.runs import store_result

SHOWN = 20


class SegmentationRejected(SemanticCatalogError):
    """The result file does not fit the index; ``problems`` lists why (nothing was stored)."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


@dataclass
class SegmentationImportReport:
    index: str
    run_id: str
    source: str
    items: int
    segments: int
    replaced: bool
    dry_run: bool
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_segmentation_file(path: Path) -> bool:
    """A ``segmentation.json`` (any file whose name ends so), or a folder holding one."""
    if path.is_dir():
        return (path / "segmentation.json").is_file()
    return path.name.lower().endswith("segmentation.json")


def segmentation_file(path: Path) -> Path:
    return path / "segmentation.json" if path.is_dir() else path


def import_segmentation(index: SemanticIndex, path: Path, dry_run: bool = False) -> SegmentationImportReport:
    from semantic_catalog.engine.segmentation import read_result, validate_result

    path = segmentation_file(path)
    result: SegmentationResult = read_result(str(path))
    problems = _run_id_problems(result)
    rows, invalid = index.rows_by_id(result.item_ids)
    problems += [f"item {reason}" for reason in invalid.values()]
    problems += validate_result(result, set(rows))
    if problems:
        raise SegmentationRejected(
            f"{path.name} does not fit index {index.name!r} ({len(problems)} problems); nothing was imported: "
            + "; ".join(problems[:SHOWN]),
            problems,
        )
    existing = SegmentationRun.objects.filter(run_id=result.run_id).first()
    if existing is not None and existing.status == SegmentationRun.Status.RUNNING:
        raise SegmentationRejected(f"Run {result.run_id} is running here: wait for it or cancel it first.", [])
    if existing is not None and existing.index != index.name:
        raise SegmentationRejected(
            f"Run {result.run_id} exists here for index {existing.index!r}, not {index.name!r}; nothing was imported.",
            [],
        )
    report = SegmentationImportReport(
        index=index.name,
        run_id=result.run_id,
        source=str(path),
        items=len(result.item_ids),
        segments=len(result.segments),
        replaced=existing is not None,
        dry_run=dry_run,
        problems=list(result.problems),
    )
    if dry_run:
        return report
    with transaction.atomic():
        run = _run_for(index, result, existing, str(path))
        RunItem.objects.filter(run=run).delete()
        RunItem.objects.bulk_create(
            [RunItem(run=run, item_id=i, text=index.get_text(rows[i]) or "") for i in result.item_ids], batch_size=1000
        )
        store_result(run, result)
    return report


def _run_id_problems(result: SegmentationResult) -> list[str]:
    run_id = result.run_id
    if not isinstance(run_id, str) or not run_id.startswith("RUN_") or len(run_id) > 120 or "/" in run_id:
        return [f"the run id {str(run_id)[:140]!r} is not one `semantic-catalog segment` writes (RUN_<ts>_<hash>)"]
    return []


def _run_for(
    index: SemanticIndex, result: SegmentationResult, existing: SegmentationRun | None, source: str
) -> SegmentationRun:
    config = dict(result.config or {})
    config.pop("api_key", None)
    model_config = {key: config.pop(key) for key in ("model", "base_url", "temperature") if key in config}
    category = str(config.pop("category", "") or "")[:200]
    storage = str(config.pop("storage_url", "") or "")[:1000]
    fields = {
        "index": index.name,
        "category": category,
        "model_config": model_config,
        "params": config,
        "storage_url": storage,
        "source": source[-300:],
        "total_items": len(result.item_ids),
        "error": "",
        "cancel_requested": False,
    }
    if existing is None:
        return SegmentationRun.objects.create(run_id=result.run_id, **fields)
    for name, value in fields.items():
        setattr(existing, name, value)
    existing.save()
    return existing
