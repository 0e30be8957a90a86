from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.sync import retry_failed, run_drain


class Command(IndexCommand):
    help = "Drain the outbox now: apply pending changes to the index (what the background task does)."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_index_argument(parser)
        parser.add_argument("--batch-size", type=int, default=None, help="Events per batch (default SYNC_BATCH_SIZE).")
        parser.add_argument("--retry-failed", action="store_true", help="Reset failed events to pending first.")
        parser.add_argument(
            "--no-wait",
            action="store_true",
            help="When another drain holds the index's lease, do not wait for it to lapse (LOCK_SECONDS at most).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = self.positive(options["batch_size"], "--batch-size") if options["batch_size"] else None
        for index in self.selected(options):
            if options["retry_failed"]:
                reset = retry_failed(index.name)
                self.stdout.write(f"{index.name}: {reset} failed events reset to pending.")
            report = run_drain(index.name, batch_size=batch_size, force=True)
            if report.busy and report.lease_until and not options["no_wait"]:
                until = timezone.localtime(report.lease_until)
                self.stdout.write(
                    f"{index.name}: another drain holds the index until {until:%H:%M:%S}; waiting for it "
                    "(a killed worker's lease lapses then, a live drain's is renewed)."
                )
                report = run_drain(index.name, batch_size=batch_size, force=True, wait=True)
            if report.busy:
                self.stdout.write(f"{index.name}: another drain is running; it will apply the pending events.")
                continue
            self.stdout.write(
                f"{index.name}: {report.events} events applied ({report.index.encoded} encoded, "
                f"{report.index.deleted} removed, {report.failed} gave up)."
            )
            if report.outage is not None:
                self.stdout.write(
                    self.style.WARNING(
                        f"{index.name}: {report.outage}; the pending events wait for it (no attempts used up) "
                        f"and are tried again at {timezone.localtime(report.outage.retry_at):%H:%M:%S}."
                    )
                )
