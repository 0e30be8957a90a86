from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.engine.search.evaluation import DEPTH, read_judgments, read_queries, results_table, run_modes
from semantic_catalog.engine.search.pipeline import MODES
from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.search import search


class Command(IndexCommand):
    help = (
        "Measure search quality on your own judgments: runs every mode over the queries and prints "
        "nDCG@10, recall@10, recall@100 and MRR per mode (and writes them as JSON with --output)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--index", required=True)
        parser.add_argument("--queries", required=True, help="CSV (query_id,query) or JSONL")
        parser.add_argument("--judgments", required=True, help="CSV (query_id,id,relevance) or JSONL")
        parser.add_argument("--modes", default=",".join(MODES), help="comma-separated (default: all)")
        parser.add_argument("--relevant-at", type=float, default=1.0, help="relevance counted as relevant (>=)")
        parser.add_argument("--gain-offset", type=float, default=0.0, help="nDCG gain = relevance - offset")
        parser.add_argument("--output", default=None, help="write the results as JSON here")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        (index,) = self.selected({"indexes": [options["index"]]})
        modes = [m.strip() for m in options["modes"].split(",") if m.strip()]
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise CommandError(f"Unknown modes {unknown}; use {', '.join(MODES)}.")
        longest, depth = semantic_settings.MAX_QUERY_LENGTH, min(DEPTH, semantic_settings.MAX_LIMIT)

        def run(text: str, mode: str) -> list[str]:
            return [hit.id for hit in search(index, text[:longest], mode=mode, limit=depth)]

        def progress(items: Any, desc: str) -> Any:
            return tqdm(items, desc=desc, disable=options["no_progress"], file=self.stderr)

        try:
            queries = read_queries(options["queries"])
            judgments = read_judgments(options["judgments"])
            results = run_modes(
                run, queries, judgments, modes, options["relevant_at"], options["gain_offset"], progress
            )
        except SemanticCatalogError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(results_table(results))
        if options["output"]:
            Path(options["output"]).write_text(json.dumps({"index": index.name, "results": results}, indent=2))
            self.stdout.write(f"wrote {options['output']}")
