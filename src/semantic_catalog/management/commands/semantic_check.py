from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.sync.check import CheckReport, check_index, repair

KINDS = ("missing", "stale", "orphaned", "unbuildable")


class Command(IndexCommand):
    help = (
        "Compare SQL with the index: rows missing from the active collection, stale (content hash differs), "
        "orphaned (deleted or left the queryset), unbuildable, and a wrong collection (none active, its table "
        "missing, another model or text_version, a build left behind). --repair queues the fixes in the outbox "
        "for the drain. Exits with status 1 (CommandError) when differences remain: without --repair any "
        "difference, with --repair those it cannot queue a fix for."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_index_argument(parser)
        parser.add_argument(
            "--repair", action="store_true", help="Queue the fixes in the outbox (the drain applies them)."
        )
        parser.add_argument("--json", action="store_true", help="Print the reports as JSON.")
        parser.add_argument("--sample", type=int, default=10, help="Ids shown per kind of difference (default 10).")
        parser.add_argument("--batch-size", type=int, default=256, help="Rows read from SQL at a time (default 256).")

    def handle(self, *args: Any, **options: Any) -> None:
        sample = options["sample"]
        if sample < 0:
            raise CommandError(f"--sample must be at least 0, got {sample}.")
        batch_size = self.positive(options["batch_size"], "--batch-size")
        reports: list[CheckReport] = []
        for index in self.selected(options):
            try:
                report = check_index(index, batch_size)
                if options["repair"] and report.differences:
                    repair(index, report)
            except SemanticCatalogError as exc:
                raise CommandError(str(exc)) from exc
            reports.append(report)
        if options["json"]:
            self.stdout.write(json.dumps([r.as_dict(sample) for r in reports], indent=2))
        else:
            for report in reports:
                self._print(report, sample)
        remaining = sum(r.unrepairable if options["repair"] else r.differences for r in reports)
        if remaining:
            what = "cannot be repaired through the outbox" if options["repair"] else "found"
            hint = (
                "see the report: a wrong collection needs `semantic_index --rebuild`, an unbuildable row a fix"
                if options["repair"]
                else "`semantic_check --repair` queues the fixes, `semantic_sync` applies them"
            )
            raise CommandError(f"{remaining} differences {what}; {hint}.", returncode=1)

    def _print(self, report: CheckReport, sample: int) -> None:
        where = f"{report.indexed} documents in {report.collection}" if report.collection else "no active collection"
        head = f"{report.index}: {report.in_queryset} rows in the queryset, {where}"
        events = f"{report.pending} pending, {report.failed} failed events"
        if not report.differences:
            self.stdout.write(self.style.SUCCESS(f"{head}: no differences ({events})."))
            return
        self.stdout.write(self.style.WARNING(f"{head}: {report.differences} differences ({events})."))
        for name in KINDS:
            kind = getattr(report, name)
            if kind.count:
                ids = ", ".join(kind.sample(sample))
                more = ", ..." if kind.count > sample else ""
                queued = f" ({kind.queued} with an event waiting)" if kind.queued else ""
                self.stdout.write(f"  {name}: {kind.count}{queued}" + (f": {ids}{more}" if sample else ""))
        for object_id, error in list(report.errors.items())[:sample]:
            self.stdout.write(f"  unbuildable {object_id}: {error}")
        for problem in report.wrong_collection:
            self.stdout.write(f"  wrong collection ({problem.problem}): {problem.detail}")
        if report.queued_upserts is not None:
            self.stdout.write(
                f"  repair: queued {report.queued_upserts} upserts and {report.queued_deletes} deletes in the "
                "outbox; the drain task (or `semantic_sync`) applies them."
            )
