from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from semantic_catalog.backends import get_store
from semantic_catalog.collections import active_collection
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.sync.reconcile import rebuild_index, update_index


class Command(IndexCommand):
    help = (
        "Index every row of the queryset: encode new and changed rows, delete rows that left it. "
        "--rebuild fills a new collection and switches to it when complete (search keeps serving the old one)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_index_argument(parser)
        parser.add_argument("--rebuild", action="store_true", help="Build a new collection, then switch to it.")
        parser.add_argument("--batch-size", type=int, default=256, help="Rows per encode batch (default 256).")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = self.positive(options["batch_size"], "--batch-size")
        for index in self.selected(options):
            total = index.get_queryset().count()
            bar = tqdm(total=total, unit="rows", desc=index.name, disable=options["no_progress"], file=self.stderr)
            try:
                if options["rebuild"]:
                    collection, report = rebuild_index(index, batch_size, bar.update)
                    where = f"new collection {collection.table}"
                else:
                    report = update_index(index, batch_size, bar.update)
                    collection = active_collection(index)
                    where = "the active collection"
                stored = get_store().count(collection.table)
            except SemanticCatalogError as exc:
                raise CommandError(str(exc)) from exc
            finally:
                bar.close()
            if not options["rebuild"] and report.encoded == report.reused == report.deleted == 0:
                self.stdout.write(
                    f"{index.name}: nothing to do: all {total} rows were already indexed (saves keep the index "
                    f"current through the outbox); {stored} documents in the index."
                )
                continue
            self.stdout.write(
                f"{index.name}: {total} rows -> {where}: {report.encoded} encoded, {report.reused} re-used vectors, "
                f"{report.unchanged} unchanged, {report.deleted} removed; {stored} documents in the index."
            )
