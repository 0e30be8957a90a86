from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.segmentation.conf import storage_options
from semantic_catalog.segmentation.storage import move_logs, rollback_logs


def _options(value: str | None, name: str) -> dict[str, Any]:
    if value is None:
        return storage_options()
    try:
        options = json.loads(value)
    except ValueError:
        raise CommandError(f"{name} takes a JSON object of fsspec options, not {value!r}.") from None
    if not isinstance(options, dict):
        raise CommandError(f"{name} takes a JSON object of fsspec options.")
    return options


class Command(BaseCommand):
    help = (
        "Move a segmentation run's LLM call logs to another storage (a folder or an fsspec URL such as "
        "s3://bucket/logs): every file is copied, read back and checked against its SHA-256 and the checksum "
        "indexed in SQL, then the index follows. --rollback moves them back to where they were; "
        "--delete-source removes the source files once everything matched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", help="the run whose logs to move")
        parser.add_argument("--to", help="the destination storage (set LOG_STORAGE to it for new runs)")
        parser.add_argument("--rollback", action="store_true", help="move the logs back to their previous storage")
        parser.add_argument("--delete-source", action="store_true", help="remove the source files once verified")
        parser.add_argument("--source-options", help="fsspec options of the source, JSON (default: STORAGE_OPTIONS)")
        parser.add_argument("--options", help="fsspec options of the destination, JSON (default: STORAGE_OPTIONS)")

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["to"]) == options["rollback"]:
            raise CommandError("Give --to STORAGE, or --rollback (one of them).")
        try:
            kwargs = {
                "delete_source": options["delete_source"],
                "source_options": _options(options["source_options"], "--source-options"),
                "destination_options": _options(options["options"], "--options"),
            }
            if options["rollback"]:
                report = rollback_logs(options["run_id"], **kwargs)
            else:
                report = move_logs(options["run_id"], options["to"], **kwargs)
        except (SemanticCatalogError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        deleted = "; source removed" if report.deleted_source else "; source kept"
        self.stdout.write(
            f"{report.run_id}: {report.files} files moved from {report.source} to {report.destination}, "
            f"checksums verified, {report.interactions} indexed calls updated{deleted}"
        )
