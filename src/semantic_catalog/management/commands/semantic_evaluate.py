from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from semantic_catalog.backends import get_store
from semantic_catalog.collections import require_searchable
from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.engine.search.batch import BatchSearch
from semantic_catalog.engine.search.evaluation import (
    DEPTH,
    evaluate,
    judged_queries,
    read_judgments,
    read_queries,
    results_table,
)
from semantic_catalog.engine.search.pipeline import MODES
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.search.service import HYDRATION_MARGIN, query_limits, query_options, query_vectors


class Command(IndexCommand):
    help = (
        "Measure search quality on your own judgments: runs every mode over the queries and prints "
        "nDCG@10, recall@10, recall@100 and MRR per mode (and writes them as JSON with --output). "
        "All queries run at once, with the rankings of the search service and an exact vector side."
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

        def progress(desc: str) -> Callable[[Iterable[int]], Iterable[int]]:
            return lambda items: tqdm(items, desc=desc, disable=options["no_progress"], file=self.stderr)

        try:
            queries = read_queries(options["queries"])
            judgments = read_judgments(options["judgments"])
            runs = ranked_runs(index, judged_queries(queries, judgments), modes, progress)
        except SemanticCatalogError as exc:
            raise CommandError(str(exc)) from exc
        results = {m: evaluate(runs[m], judgments, options["relevant_at"], options["gain_offset"]) for m in modes}
        self.stdout.write(results_table(results))
        if options["output"]:
            Path(options["output"]).write_text(json.dumps({"index": index.name, "results": results}, indent=2))
            self.stdout.write(f"wrote {options['output']}")


def ranked_runs(
    index: SemanticIndex,
    queries: dict[str, str],
    modes: list[str],
    progress: Callable[[str], Callable[[Iterable[int]], Iterable[int]]],
) -> dict[str, dict[str, list[str]]]:
    """The ids ``semantic_catalog.search.search(index, query, mode, limit=DEPTH)`` ranks for every query and
    mode, searched all at once (``engine.search.batch``): the same settings, query vectors (QUERY_ADAPTER
    included), store hits and hydration (ids outside the index's queryset dropped, more hits asked for
    when that leaves too few), without a store call per query and mode."""
    limits, s = query_limits(), semantic_settings
    size = min(DEPTH, s.MAX_LIMIT)
    need = min(size + 1, s.MAX_RESULT_WINDOW)  # as the service asks: the page and one more
    deepest = s.MAX_RESULT_WINDOW + HYDRATION_MARGIN
    query_ids = list(queries)
    texts = [limits.check_query(queries[qid][: s.MAX_QUERY_LENGTH]) for qid in query_ids]
    collection = require_searchable(index)
    batch = BatchSearch(get_store(), collection.table)
    vectors = query_vectors(collection.model).vectors(texts) if set(modes) - {"keyword"} else None
    shown = {str(pk) for pk in index.get_queryset().values_list("pk", flat=True)}
    runs: dict[str, dict[str, list[str]]] = {mode: {} for mode in modes}
    pending = {mode: list(range(len(texts))) for mode in modes}
    count, desc = need + HYDRATION_MARGIN, ",".join(modes)
    while any(pending.values()):
        asked = sorted({i for rows in pending.values() for i in rows})
        position = {i: j for j, i in enumerate(asked)}
        hits = batch.search(
            [texts[i] for i in asked],
            None if vectors is None else vectors[asked],
            {mode: query_options(mode, count) for mode in modes if pending[mode]},
            progress(desc),
        )
        for mode, rows in pending.items():
            retry = []
            for i in rows:
                found = hits[mode][position[i]]
                kept = [hit.id for hit in found if hit.id in shown]
                if len(kept) >= need or len(found) < count or count >= deepest:
                    runs[mode][query_ids[i]] = kept[:size]
                else:  # stale store rows dropped too many: ask again for more, as the service does
                    retry.append(i)
            pending[mode] = retry
        count, desc = min(deepest, 2 * count), "queries with dropped rows, more hits"
    return {mode: {qid: runs[mode][qid] for qid in query_ids} for mode in modes}
