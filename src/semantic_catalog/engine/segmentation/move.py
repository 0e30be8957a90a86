"""Moving a run's logs between storages (a local folder to S3, say) with every checksum verified.

Nothing is deleted before every copy is read back and matches; a failed move removes what it copied, so the
source stays the one complete copy. Rolling back is moving the run back.
"""

from __future__ import annotations

from typing import Any

from semantic_catalog.engine.errors import LogStorageError
from semantic_catalog.engine.segmentation.logs import MANIFEST, LogStorage, check_run_id, sha256


def move_run_logs(
    src_url: str,
    dst_url: str,
    run_id: str,
    *,
    delete_source: bool = False,
    src_storage_options: dict[str, Any] | None = None,
    dst_storage_options: dict[str, Any] | None = None,
) -> list[tuple[str, str, str]]:
    """Copies every file of ``run_id`` from ``src_url`` to ``dst_url``; returns (old URL, new URL, SHA-256) per
    file. Source files are checked against the run's ``checksums.sha256`` and each copy is read back and
    compared; the source is removed only when ``delete_source`` and everything matched."""
    check_run_id(run_id)
    src = LogStorage(src_url, src_storage_options)
    dst = LogStorage(dst_url, dst_storage_options)
    if src.url(run_id) == dst.url(run_id):
        raise LogStorageError("the source and the destination are the same place.")
    files = src.files(run_id)
    if not files:
        raise LogStorageError(f"{run_id}: no such run in {src_url}.")
    if dst.files(run_id):
        raise LogStorageError(f"{run_id}: the destination already holds this run; remove it or choose another.")
    recorded: dict[str, str] = {}
    if MANIFEST in files:
        for line in src.read(f"{run_id}/{MANIFEST}").decode("utf-8").splitlines():
            digest, _, name = line.partition("  ")
            recorded[name] = digest
    moved: list[tuple[str, str, str]] = []
    try:
        for name in files:
            data = src.read(f"{run_id}/{name}")
            digest = sha256(data)
            if name in recorded and recorded[name] != digest:
                raise LogStorageError(
                    f"{run_id}/{name}: its SHA-256 does not match checksums.sha256 (the source file changed); "
                    "nothing was moved."
                )
            dst.write(f"{run_id}/{name}", data)
            if sha256(dst.read(f"{run_id}/{name}")) != digest:
                raise LogStorageError(f"{run_id}/{name}: the copy's SHA-256 differs; nothing was moved.")
            moved.append((src.url(f"{run_id}/{name}"), dst.url(f"{run_id}/{name}"), digest))
    except BaseException:
        _remove(dst, run_id)
        raise
    if delete_source:
        _remove(src, run_id)
    return moved


def _remove(storage: LogStorage, run_id: str) -> None:
    path = f"{storage.root}/{run_id}"
    try:
        if storage.fs.exists(path):
            storage.fs.rm(path, recursive=True)
    except OSError as exc:  # pragma: no cover - a storage failing while cleaning up
        raise LogStorageError(f"cannot remove {storage.url(run_id)}: {exc}") from None
