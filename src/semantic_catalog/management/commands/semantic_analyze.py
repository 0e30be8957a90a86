from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser

from ...analysis import KINDS, analyze
from ...engine.errors import SemanticCatalogError
from ._base import IndexCommand


class Command(IndexCommand):
    help = (
        "Cross-store analysis on the server (small catalogs): category links between stores, same-product "
        "matches and substitutes at levels 3 and 4, from the index's stored vectors. Each kind replaces its "
        "previous run in one transaction. Without --links/--substitutions/--matches, all three."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_index_argument(parser)
        for kind in KINDS:
            parser.add_argument(f"--{kind}", action="store_true", help=f"compute {kind}")
        parser.add_argument("--levels", default="3,4", help="substitution levels, 3 and/or 4 (default: 3,4)")
        parser.add_argument("--k", type=int, default=5, help="substitutes per product and level")
        parser.add_argument("--link-threshold", type=float, default=0.6)
        parser.add_argument("--match-threshold", type=float, default=None, help="default: the engine's (0.6)")
        parser.add_argument("--dry-run", action="store_true", help="compute and validate, store nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        kinds = [kind for kind in KINDS if options[kind]] or list(KINDS)
        try:
            levels = [int(level) for level in options["levels"].split(",") if level.strip()]
        except ValueError:
            raise CommandError(f"--levels takes 3 and/or 4, comma-separated, not {options['levels']!r}.") from None
        extra = {} if options["match_threshold"] is None else {"match_threshold": options["match_threshold"]}
        for index in self.selected(options):
            try:
                reports = analyze(
                    index,
                    kinds,
                    levels,
                    k=self.positive(options["k"], "--k"),
                    link_threshold=options["link_threshold"],
                    dry_run=options["dry_run"],
                    **extra,
                )
            except (SemanticCatalogError, ImproperlyConfigured) as exc:
                raise CommandError(f"{index.name}: {exc}") from exc
            for report in reports:
                verb = "would store" if report.dry_run else "stored"
                self.stdout.write(
                    f"{index.name}: {verb} {report.rows} {report.kind} (replacing {report.replaced} earlier run(s))"
                )
