"""Moving a run's LLM call logs to another storage (a local folder, s3://...): every file is copied and
checked (the engine's ``move_run_logs``), checked again against the checksums indexed in SQL, then the
index follows in one transaction; the source is removed only after all that, and only when asked.
A move can be rolled back to the storage the run used before."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from semantic_catalog.engine.errors import LogStorageError
from semantic_catalog.models import LLMInteraction, SegmentationRun
from semantic_catalog.segmentation.runs import RunConflict, get_run

HISTORY = "previous_log_storages"  # in the run's params: where its logs were before each move


@dataclass
class MoveReport:
    run_id: str
    source: str
    destination: str
    files: int
    interactions: int
    deleted_source: bool


def move_logs(
    run_id: str,
    destination: str,
    *,
    delete_source: bool = False,
    source_options: dict[str, Any] | None = None,
    destination_options: dict[str, Any] | None = None,
) -> MoveReport:
    """Move ``run_id``'s logs from where the run says they are to ``destination``."""
    run = _idle(run_id)
    if not destination.strip():
        raise LogStorageError("Name the destination storage (a folder or an fsspec URL such as s3://bucket/logs).")
    return _move(run, destination, delete_source, source_options, destination_options, rollback=False)


def rollback_logs(
    run_id: str,
    *,
    delete_source: bool = False,
    source_options: dict[str, Any] | None = None,
    destination_options: dict[str, Any] | None = None,
) -> MoveReport:
    """Move the logs back to the storage the run used before its last move."""
    run = _idle(run_id)
    history = list(run.params.get(HISTORY) or [])
    if not history:
        raise LogStorageError(f"Run {run.run_id}'s logs were never moved: there is nothing to roll back.")
    return _move(run, history[-1], delete_source, source_options, destination_options, rollback=True)


def _idle(run_id: str) -> SegmentationRun:
    run = get_run(run_id)
    if run.status == SegmentationRun.Status.RUNNING:
        raise RunConflict(f"Run {run.run_id} is running: move its logs when it has ended.")
    if not run.storage_url:
        raise LogStorageError(f"Run {run.run_id} was imported from a file: its logs are not in a storage here.")
    return run


def _move(
    run: SegmentationRun,
    destination: str,
    delete_source: bool,
    source_options: dict[str, Any] | None,
    destination_options: dict[str, Any] | None,
    *,
    rollback: bool,
) -> MoveReport:
    from semantic_catalog.engine.segmentation import move_run_logs
    from semantic_catalog.engine.segmentation.logs import LogStorage

    source = run.storage_url
    dst = LogStorage(destination, destination_options)
    if rollback and dst.files(run.run_id):
        # the logs were copied, not moved: the earlier copy is still there; check it, then switch back
        moved = _pairs(LogStorage(source, source_options), dst, run.run_id)
    else:
        moved = move_run_logs(
            source,
            destination,
            run.run_id,
            src_storage_options=source_options,
            dst_storage_options=destination_options,
        )
    try:
        changed = _follow(run, moved)
    except LogStorageError:
        if not rollback:
            _remove(dst, run.run_id)  # the copy is not what SQL indexed: leave everything as it was
        raise
    history = list(run.params.get(HISTORY) or [])
    history = history[:-1] if rollback else [*history, source]
    with transaction.atomic():
        LLMInteraction.objects.bulk_update(changed, ["path"], batch_size=500)
        run.params = {**run.params, HISTORY: history}
        run.storage_url = destination
        run.save(update_fields=["params", "storage_url", "updated_at"])
    if delete_source:
        _remove(LogStorage(source, source_options), run.run_id)
    return MoveReport(run.run_id, source, destination, len(moved), len(changed), delete_source)


def _pairs(src: Any, dst: Any, run_id: str) -> list[tuple[str, str, str]]:
    """(current URL, earlier copy's URL, the copy's SHA-256) of every file the earlier copy holds."""
    from semantic_catalog.engine.segmentation.logs import sha256

    return [
        (src.url(f"{run_id}/{name}"), dst.url(f"{run_id}/{name}"), sha256(dst.read(f"{run_id}/{name}")))
        for name in dst.files(run_id)
    ]


def _follow(run: SegmentationRun, moved: list[tuple[str, str, str]]) -> list[LLMInteraction]:
    """The interactions (of any run: cached calls point at earlier runs' files) with their new paths;
    a file whose checksum differs from the one SQL indexed stops everything."""
    where = {old: (new, digest) for old, new, digest in moved}
    changed: list[LLMInteraction] = []
    mismatched: list[str] = []
    for interaction in LLMInteraction.objects.filter(path__in=list(where)):
        new, digest = where[interaction.path]
        if interaction.sha256 and interaction.sha256 != digest:
            mismatched.append(interaction.path.rsplit("/", 1)[-1])
            continue
        interaction.path = new
        changed.append(interaction)
    missing = LLMInteraction.objects.filter(run=run).exclude(path__in=list(where))
    missing = missing.filter(path__contains=f"/{run.run_id}/")
    if mismatched:
        raise LogStorageError(
            f"{len(mismatched)} log files differ from the checksums indexed when they were written "
            f"({', '.join(mismatched[:5])}); nothing was moved."
        )
    if missing.exists():
        raise LogStorageError(
            f"{missing.count()} indexed log files of run {run.run_id} are not in its storage; nothing was moved."
        )
    return changed


def _remove(storage: Any, run_id: str) -> None:
    path = f"{storage.root}/{run_id}"
    try:
        if storage.fs.exists(path):
            storage.fs.rm(path, recursive=True)
    except OSError as exc:
        raise LogStorageError(f"Could not remove {run_id} from {storage.url('')}: {exc}") from None
