from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser

from semantic_catalog.crossstore.analysis import KINDS, analyze
from semantic_catalog.engine.crossstore.category_links import DEFAULT_LINK_THRESHOLD
from semantic_catalog.engine.crossstore.product_matching import DEFAULT_THRESHOLD
from semantic_catalog.engine.crossstore.substitutions import DEFAULT_K
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.management.commands._base import IndexCommand


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
        parser.add_argument("--k", type=int, default=DEFAULT_K, help=f"substitutes per product and level ({DEFAULT_K})")
        parser.add_argument("--link-threshold", type=float, default=DEFAULT_LINK_THRESHOLD)
        parser.add_argument(
            "--match-threshold",
            type=float,
            default=None,
            help=f"default: the trained matcher's own threshold, else {DEFAULT_THRESHOLD}",
        )
        parser.add_argument(
            "--matcher",
            default=None,
            help="a trained matcher folder (semantic-catalog train-matcher); default: the index's MATCHERS setting",
        )
        parser.add_argument("--dry-run", action="store_true", help="compute and validate, store nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        kinds = [kind for kind in KINDS if options[kind]] or list(KINDS)
        try:
            levels = [int(level) for level in options["levels"].split(",") if level.strip()]
        except ValueError:
            raise CommandError(f"--levels takes 3 and/or 4, comma-separated, not {options['levels']!r}.") from None
        for index in self.selected(options):
            try:
                reports = analyze(
                    index,
                    kinds,
                    levels,
                    k=self.positive(options["k"], "--k"),
                    link_threshold=options["link_threshold"],
                    match_threshold=options["match_threshold"],
                    dry_run=options["dry_run"],
                    matcher=options["matcher"],
                )
            except (SemanticCatalogError, ImproperlyConfigured) as exc:
                raise CommandError(f"{index.name}: {exc}") from exc
            for report in reports:
                verb = "would store" if report.dry_run else "stored"
                self.stdout.write(
                    f"{index.name}: {verb} {report.rows} {report.kind} (replacing {report.replaced} earlier run(s))"
                )
