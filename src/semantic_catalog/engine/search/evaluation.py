"""Relevance metrics on a user's own judgments: nDCG@10, recall@10, recall@100, MRR.

Queries file: CSV with ``query_id,query`` or JSONL ``{"query_id", "query"}``.
Judgments file: CSV with ``query_id,<id>,relevance`` (the id column may be named ``id``,
``product_uid`` or ``doc_id``) or JSONL ``{"query_id", "id", "relevance"}``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from semantic_catalog.engine.errors import BadFile

ID_COLUMNS = ("id", "product_uid", "doc_id")


def _rows(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        raise BadFile(f"{path}: no such file.")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        rows.append({k: str(v) for k, v in json.loads(line).items()})
                    except (json.JSONDecodeError, AttributeError):
                        raise BadFile(f"{path} line {number}: not a JSON object.") from None
        return rows
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    raise BadFile(f"{path}: use a .csv or .jsonl file.")


def read_queries(path: str | Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, row in enumerate(_rows(path), start=1):
        if "query_id" not in row or "query" not in row:
            raise BadFile(f"{path} record {number}: needs 'query_id' and 'query'.")
        queries[row["query_id"]] = row["query"]
    return queries


def read_judgments(path: str | Path) -> dict[str, dict[str, float]]:
    judgments: dict[str, dict[str, float]] = {}
    for number, row in enumerate(_rows(path), start=1):
        id_column = next((c for c in ID_COLUMNS if c in row), None)
        if "query_id" not in row or "relevance" not in row or id_column is None:
            raise BadFile(f"{path} record {number}: needs 'query_id', an id ({', '.join(ID_COLUMNS)}) and 'relevance'.")
        try:
            relevance = float(row["relevance"])
        except ValueError:
            raise BadFile(f"{path} record {number}: relevance {row['relevance']!r} is not a number.") from None
        judgments.setdefault(row["query_id"], {})[str(row[id_column])] = relevance
    return judgments


def ndcg(ranked: Sequence[str], gains: Mapping[str, float], k: int = 10) -> float:
    """Normalised DCG at k with linear gains (unjudged items gain 0)."""
    dcg = sum(gains.get(doc, 0.0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    best = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / best if best > 0 else 0.0


def evaluate(
    runs: Mapping[str, Sequence[str]],
    judgments: Mapping[str, Mapping[str, float]],
    relevant_at: float,
    gain_offset: float = 0.0,
) -> dict[str, float]:
    """Mean nDCG@10 (gain = relevance - gain_offset), recall@10/@100 and MRR of items with relevance
    >= ``relevant_at``, over the queries that have judgments and at least one relevant item."""
    totals = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr": 0.0}
    counted = 0
    for query_id, ranked in runs.items():
        judged = judgments.get(query_id, {})
        relevant = {doc for doc, rel in judged.items() if rel >= relevant_at}
        if not relevant:
            continue
        counted += 1
        gains = {doc: max(0.0, rel - gain_offset) for doc, rel in judged.items()}
        totals["ndcg@10"] += ndcg(ranked, gains, 10)
        totals["recall@10"] += len(relevant & set(ranked[:10])) / len(relevant)
        totals["recall@100"] += len(relevant & set(ranked[:100])) / len(relevant)
        first = next((rank for rank, doc in enumerate(ranked, start=1) if doc in relevant), None)
        totals["mrr"] += 1 / first if first else 0.0
    result = {name: (value / counted if counted else 0.0) for name, value in totals.items()}
    result["queries"] = counted
    return result


METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr")
DEPTH = 100


def judged_queries(queries: Mapping[str, str], judgments: Mapping[str, Mapping[str, float]]) -> dict[str, str]:
    """The queries that are scored: those with judgments and some text, by query id."""
    return {qid: text for qid, text in queries.items() if qid in judgments and text.strip()}


def run_modes(
    search: Callable[[str, str], Sequence[str]],
    queries: Mapping[str, str],
    judgments: Mapping[str, Mapping[str, float]],
    modes: Sequence[str],
    relevant_at: float,
    gain_offset: float = 0.0,
    progress: Callable[[Iterable[Any], str], Iterable[Any]] = lambda items, _desc: items,
) -> dict[str, dict[str, float]]:
    """Metrics per mode; ``search(text, mode)`` returns ranked ids (at least the top ``DEPTH``), one
    query at a time (the commands run them all at once instead: ``engine.search.batch``).

    Only judged, non-empty queries are run."""
    judged = list(judged_queries(queries, judgments).items())
    results = {}
    for mode in modes:
        runs = {qid: list(search(text, mode)) for qid, text in progress(judged, mode)}
        results[mode] = evaluate(runs, judgments, relevant_at, gain_offset)
    return results


def results_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """A fixed-width table: one row per mode, one column per metric, then the number of queries."""
    width = max([10, *(len(mode) + 1 for mode in results)])
    lines = [f"{'mode':<{width}}" + "".join(f"{m:>12}" for m in METRICS) + f"{'queries':>9}"]
    for mode, row in results.items():
        cells = "".join(f"{row[m]:>12.4f}" for m in METRICS)
        lines.append(f"{mode:<{width}}" + cells + f"{int(row['queries']):>9}")
    return "\n".join(lines)
