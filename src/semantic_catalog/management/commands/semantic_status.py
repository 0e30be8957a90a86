from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.status import index_status


class Command(IndexCommand):
    help = "Show, per index: rows in the queryset, indexed, pending, failed, model, dimension, collections."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_index_argument(parser)
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args: Any, **options: Any) -> None:
        statuses = [index_status(index) for index in self.selected(options)]
        if options["json"]:
            self.stdout.write(json.dumps(statuses, indent=2))
            return
        columns = ["index", "in_queryset", "indexed", "pending", "failed", "model", "dimension"]
        rows = [[str(s[c]) for c in columns] for s in statuses]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        self.stdout.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
        for row in rows:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths)))
        for status in statuses:
            for collection in status["collections"]:
                self.stdout.write(
                    f"  {status['index']}: {collection['state']:<8} {collection['table']} "
                    f"({collection['documents']} documents, {collection['model']}, dim {collection['dimension']})"
                )
            for warning in status["warnings"]:
                self.stdout.write(self.style.WARNING(f"  {status['index']}: {warning}"))
