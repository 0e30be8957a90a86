"""``semantic_labels import FILE --index NAME [--dry-run]`` and ``semantic_labels export FILE --index NAME``:
labelled pairs (match / non-match) from and to a CSV or JSONL file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from semantic_catalog.crossstore.labels import index_labels, save_labels
from semantic_catalog.engine.crossstore.labels import read_label_file, write_label_file
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.management.commands._base import IndexCommand


class Command(IndexCommand):
    help = (
        "Labelled pairs of an index (two product ids and whether they are the very same item). `import FILE` "
        "reads a CSV (header left,right,label) or JSONL file ({\"left\", \"right\", \"label\"} per line; a label "
        "is 1/0, true/false or match/non-match) and stores its pairs, all or nothing (a pair labelled the other "
        "way before is updated; --dry-run only reports); `export FILE` writes the index's labels (CSV for a .csv "
        "name, else JSONL)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["import", "export"])
        parser.add_argument("file", help="the label file (.csv or .jsonl)")
        parser.add_argument("--index", required=True, help="the index the products belong to")
        parser.add_argument("--dry-run", action="store_true", help="import: report what would change; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        (index,) = self.selected({"indexes": [options["index"]]})
        path = Path(options["file"])
        try:
            if options["action"] == "export":
                count = write_label_file(path, index_labels(index))
                self.stdout.write(f"{index.name}: {count} labelled pairs -> {path}")
                return
            report = save_labels(index, read_label_file(path), "import", dry_run=options["dry_run"])
        except (SemanticCatalogError, OSError) as exc:  # LabelsRejected, BadFile; a folder that is not there
            raise CommandError(str(exc)) from exc
        verb = "would store" if report.dry_run else "stored"
        self.stdout.write(
            f"{index.name}: {verb} {report.created + report.updated + report.unchanged} labelled pairs from {path} "
            f"({report.created} new, {report.updated} updated, {report.unchanged} unchanged)"
        )
