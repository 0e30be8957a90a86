"""The Home Depot relevance data (../shared/data/search/homedepot) for the search benchmarks."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass

from _results import ROOT

DATA = ROOT.parent / "shared" / "data" / "search" / "homedepot"
RELEVANT_AT = 2.5  # the data set's README: products scored >= 2.5 are relevant
GAIN_OFFSET = 1.0  # nDCG gain = relevance - 1 (0 to 2)


@dataclass
class HomeDepot:
    titles: dict[str, str]  # product_uid -> title
    queries: dict[str, str]  # query_id -> query
    judgments: dict[str, dict[str, float]]  # query_id -> product_uid -> relevance


def require_data() -> None:
    if not (DATA / "products.csv").exists():
        print(f"skipped: the Home Depot data is not at {DATA} (see ../shared/README.md)")
        sys.exit(0)


def load(query_limit: int | None = None) -> HomeDepot:
    """Products, dev queries (the first ``query_limit``) and their judgments."""
    from semantic_catalog.engine.search.evaluation import read_judgments, read_queries

    require_data()
    with (DATA / "products.csv").open(encoding="utf-8") as f:
        titles = {row["product_uid"]: row["product_title"] for row in csv.DictReader(f)}
    queries = read_queries(DATA / "queries_dev.csv")
    if query_limit:
        queries = dict(list(queries.items())[:query_limit])
    judgments = read_judgments(DATA / "qrels_dev.csv")
    return HomeDepot(titles, queries, {q: judgments[q] for q in queries if q in judgments})
