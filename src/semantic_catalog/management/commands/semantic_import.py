from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from semantic_catalog.collections import require_searchable
from semantic_catalog.crossstore.results import ResultsRejected, import_results
from semantic_catalog.engine.crossstore.analysis import FILE_NAMES, read_result_file
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.offline.vectors import ImportRejected, ImportReport, import_vectors
from semantic_catalog.segmentation.importing import SegmentationRejected, import_segmentation, is_segmentation_file

COUNTS = ("new", "updated", "unchanged", "stale", "unknown", "invalid")


def result_files(path: Path) -> list[Path]:
    """Analysis result files at ``path`` (a .json file, or those in a folder); empty for vectors."""
    if path.suffix.lower() == ".json":
        return [path]
    if path.is_dir():
        return [path / name for name in FILE_NAMES.values() if (path / name).exists()]
    return []


class Command(IndexCommand):
    help = (
        "Import vectors from `semantic-catalog embed` (a Parquet file or folder). Validates model, dimension, "
        "ids, content hashes, NaNs, duplicates; --dry-run reports and changes nothing; otherwise all or nothing. "
        "Also imports `semantic-catalog analyze` results: a category_links.json, substitutions.json or "
        "product_matches.json file, or a folder of them, each replacing its previous run. And a "
        "`semantic-catalog segment` result (segmentation.json, or its folder): all or nothing, as a completed run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="vector file or folder")
        parser.add_argument("--index", required=True, help="the index the vectors belong to")
        parser.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")
        parser.add_argument("--skip-invalid", action="store_true", help="apply the valid records, skip invalid ones")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        (index,) = self.selected({"indexes": [options["index"]]})
        if is_segmentation_file(Path(options["path"])):
            self._import_segmentation(index, Path(options["path"]), options["dry_run"], options["json"])
            return
        files = result_files(Path(options["path"]))
        if files:
            self._import_results(index, files, options["dry_run"])
            return
        try:
            report = import_vectors(index, options["path"], options["dry_run"], options["skip_invalid"])
        except ImportRejected as exc:
            self._print(exc.report, options["json"])
            raise CommandError(str(exc)) from exc
        except SemanticCatalogError as exc:
            raise CommandError(str(exc)) from exc
        self._print(report, options["json"])

    def _import_results(self, index: Any, files: list[Path], dry_run: bool) -> None:
        """Every file is checked before any is stored: one bad file stores nothing."""
        try:
            model = require_searchable(index).model
            payloads = [read_result_file(path) for path in files]
            with transaction.atomic():
                reports = [import_results(index, p, str(f), model, dry_run) for p, f in zip(payloads, files)]
        except ResultsRejected as exc:
            raise CommandError(str(exc)) from exc
        except SemanticCatalogError as exc:
            raise CommandError(str(exc)) from exc
        for report in reports:
            verb = "would store" if report.dry_run else "stored"
            self.stdout.write(f"{index.name}: {verb} {report.rows} {report.kind} (replacing {report.replaced} run(s))")

    def _import_segmentation(self, index: Any, path: Path, dry_run: bool, as_json: bool) -> None:
        try:
            report = import_segmentation(index, path, dry_run)
        except SegmentationRejected as exc:
            for problem in exc.problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(str(exc)) from exc
        except SemanticCatalogError as exc:
            raise CommandError(str(exc)) from exc
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        verb = "would import" if report.dry_run else "imported"
        replaced = " (replacing the run of that id)" if report.replaced else ""
        self.stdout.write(
            f"{index.name}: {verb} segmentation run {report.run_id}: {report.segments} segments, "
            f"{report.items} items{replaced}" + (" (dry run, nothing changed)" if report.dry_run else "")
        )

    def _print(self, report: ImportReport, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        counts = ", ".join(f"{getattr(report, name)} {name}" for name in COUNTS)
        mode = "dry run, nothing changed" if report.dry_run else ("applied" if report.applied else "nothing applied")
        self.stdout.write(f"{report.index}: {counts} ({mode}); model {report.model}, dimension {report.dimension}")
        self.stdout.write(f"  collection: {report.collection}" + (" (now active)" if report.activated else ""))
        for error in report.errors:
            self.stdout.write(f"  {error}")
