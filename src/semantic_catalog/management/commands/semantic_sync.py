from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.sync import retry_failed, run_drain


class Command(IndexCommand):
    help = "Drain the outbox now: apply pending changes to the index (what the background task does)."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_index_argument(parser)
        parser.add_argument("--batch-size", type=int, default=None, help="Events per batch (default SYNC_BATCH_SIZE).")
        parser.add_argument("--retry-failed", action="store_true", help="Reset failed events to pending first.")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = self.positive(options["batch_size"], "--batch-size") if options["batch_size"] else None
        for index in self.selected(options):
            if options["retry_failed"]:
                reset = retry_failed(index.name)
                self.stdout.write(f"{index.name}: {reset} failed events reset to pending.")
            report = run_drain(index.name, batch_size=batch_size)
            if report.busy:
                self.stdout.write(f"{index.name}: another drain is running; it will apply the pending events.")
                continue
            self.stdout.write(
                f"{index.name}: {report.events} events applied ({report.index.encoded} encoded, "
                f"{report.index.deleted} removed, {report.failed} gave up)."
            )
