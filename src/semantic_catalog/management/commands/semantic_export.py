from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from semantic_catalog.crossstore.labels import index_labels
from semantic_catalog.engine.crossstore.labels import labels_path, write_label_file
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.engine.offline.records import write_records
from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.offline.export import export_records, parse_since


class Command(IndexCommand):
    help = (
        "Export each index's rows (id, index, text, fields, content_hash) for `semantic-catalog embed`, and its "
        "labelled pairs, if any, beside each file (<name>.labels.jsonl)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_index_argument(parser)
        parser.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--output-dir", default=".", help="folder for <index>-<time>.<format> (default: .)")
        where.add_argument(
            "--output", default=None, help="this file instead (one index; .jsonl or .parquet, replaced if it exists)"
        )
        parser.add_argument("--limit", type=int, default=None, help="at most this many rows")
        parser.add_argument("--since", default=None, help="only rows changed after this ISO time (needs updated_field)")

    def handle(self, *args: Any, **options: Any) -> None:
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        indexes = self.selected(options)
        if options["output"] and len(indexes) > 1:
            raise CommandError("--output names one file: choose one index with --index, or use --output-dir.")
        for index in indexes:
            if options["output"]:
                path = Path(options["output"])
            else:
                path = Path(options["output_dir"]) / f"{index.name}-{stamp}.{options['format']}"
            try:
                records = export_records(index, parse_since(options["since"]), options["limit"])
                count = write_records(path, records)
            except SemanticCatalogError as exc:
                path.unlink(missing_ok=True)
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"{index.name}: {count} records -> {path}")
            self._export_labels(index, path)

    def _export_labels(self, index: Any, export: Path) -> None:
        """The index's labelled pairs beside the export (``<export>.labels.jsonl``, what `semantic-catalog
        train-matcher` reads); none: no file, and a stale one from an earlier export is removed."""
        path = labels_path(export)
        pairs = index_labels(index)
        if not pairs:
            path.unlink(missing_ok=True)
            return
        count = write_label_file(path, pairs)
        self.stdout.write(f"{index.name}: {count} labelled pairs -> {path}")
