from __future__ import annotations

import time
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
        parser.add_argument(
            "--via",
            choices=["local", "temporal"],
            default="local",
            help="local (default): index in this process; temporal: start a Temporal workflow run per index "
            "(a `semantic_temporal_worker` does the work) and follow its progress.",
        )
        parser.add_argument("--force", action="store_true", help="--via temporal: re-encode unchanged rows too.")
        parser.add_argument(
            "--detach", action="store_true", help="--via temporal: print each run's id and return at once."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = self.positive(options["batch_size"], "--batch-size")
        if options["via"] == "temporal":
            self._via_temporal(batch_size, options)
            return
        if options["force"] or options["detach"]:
            raise CommandError("--force and --detach go with --via temporal.")
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

    def _via_temporal(self, batch_size: int, options: dict[str, Any]) -> None:
        """One Temporal run per index; waits for each (a progress bar from its status) unless --detach."""
        if options["rebuild"]:
            raise CommandError("--rebuild runs locally only: drop --via temporal (or use --force to re-encode).")
        try:
            from semantic_catalog.workflows import service
        except ImportError as exc:
            raise CommandError(
                f"--via temporal needs temporalio ({exc}): pip install 'django-semantic-catalog[temporal]'."
            ) from exc
        for index in self.selected(options):
            try:
                run_id = service.start(index.name, batch_size=batch_size, force=options["force"])
                self.stdout.write(f"{index.name}: started Temporal run {run_id}")
                if options["detach"]:
                    continue
                data = self._follow(run_id, index.name, options["no_progress"])
            except SemanticCatalogError as exc:
                raise CommandError(str(exc)) from exc
            if data["status"] != "COMPLETED":
                raise CommandError(f"{index.name}: Temporal run {run_id} ended {data['status']}.")
            result = data["result"]
            self.stdout.write(
                f"{index.name}: {result['total']} rows: {result['succeeded']} succeeded, {result['failed']} failed "
                f"({result['encoded']} encoded, {result['unchanged']} unchanged, {result['deleted']} removed)."
            )
            if result["failed"]:
                self.stdout.write(f"Failed ids (first {len(result['failed_ids'])}): {' '.join(result['failed_ids'])}")

    def _follow(self, run_id: str, name: str, quiet: bool) -> dict[str, Any]:
        from semantic_catalog.workflows import service

        bar = tqdm(unit="rows", desc=name, disable=quiet, file=self.stderr)
        try:
            while True:
                data = service.status(run_id)
                if data.get("total") is not None:
                    bar.total = data["total"]
                    bar.n = data.get("processed") or 0
                    bar.refresh()
                if data["status"] != "RUNNING":
                    return data
                time.sleep(0.5)
        finally:
            bar.close()
