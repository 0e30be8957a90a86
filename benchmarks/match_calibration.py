"""Where a search hit becomes a "strong" match: the STRONG_MATCH_SIMILARITY default, chosen on the
Home Depot dev queries.

A hit is "strong" when its cosine to the query reaches the threshold or it contains every word of the
query (``engine.search.pipeline.match_strength``). For each threshold this prints the share of the
4,357 dev queries (real shoppers' searches) whose top 10 hybrid hits hold at least one strong match,
and the share of 200 nonsense queries (random letter strings, plus "xyzzy nonsense" and the like)
whose top 10 hold none, and picks the threshold where the smaller of the two is largest. Uses the
index of benchmarks/search_quality.py (its cache, or builds it: about 5 minutes on 2 cores).

    .venv/bin/python benchmarks/match_calibration.py [--model NAME_OR_PATH]

Needs ../shared/data/search/homedepot (skips with a message otherwise). Writes
benchmarks/results/match_calibration.json.
"""

from __future__ import annotations

import argparse
import random
import string
import sys

from _homedepot import load
from _results import ROOT, write_report
from tqdm import tqdm

sys.path.insert(0, str(ROOT / "src"))

from search_quality import CACHE, COLLECTION, build  # noqa: E402

from semantic_catalog.engine.encoders import SentenceTransformerEncoder  # noqa: E402
from semantic_catalog.engine.search.pipeline import QueryOptions, match_strength, search  # noqa: E402

THRESHOLDS = [round(0.30 + 0.01 * i, 2) for i in range(31)]  # 0.30 .. 0.60
TOP = 10


def nonsense_queries(count: int = 200, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    made = ["xyzzy nonsense", "qwerty asdf", "lorem ipsum dolor", "qwpl zrtx"]
    while len(made) < count:
        words = ("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9))) for _ in range(3))
        made.append(" ".join(list(words)[: rng.randint(1, 3)]))
    return made


def best_hits(store, encoder, queries: list[str]) -> list[list]:
    """The top hybrid hits of each query (with their similarity and coverage)."""
    vectors = encoder.encode_queries(queries)
    options = QueryOptions("hybrid", TOP)
    return [search(store, COLLECTION, q, v, options) for q, v in tqdm(zip(queries, vectors), total=len(queries))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a sentence-transformers model name or path (default: bundled)")
    args = parser.parse_args()
    data = load(None)
    encoder = SentenceTransformerEncoder(args.model)
    suffix = "" if args.model is None else f"-{encoder.name}"
    store, _ = build(data, encoder, CACHE.with_name(CACHE.name + suffix))
    real = best_hits(store, encoder, list(data.queries.values()))
    fake = best_hits(store, encoder, nonsense_queries())
    rows = []
    print(f"{'threshold':>10}{'dev queries with a strong hit':>32}{'nonsense with none':>21}")
    for threshold in THRESHOLDS:

        def strong(hits: list) -> bool:
            return any(match_strength(hit, threshold) == "strong" for hit in hits)  # noqa: B023

        kept = sum(map(strong, real)) / len(real)
        flagged = sum(not strong(hits) for hits in fake) / len(fake)
        rows.append({"threshold": threshold, "dev_with_strong": round(kept, 4), "nonsense_without": round(flagged, 4)})
        print(f"{threshold:>10.2f}{kept:>32.4f}{flagged:>21.4f}")
    best = max(rows, key=lambda row: (min(row["dev_with_strong"], row["nonsense_without"]), row["threshold"]))
    print(
        f"chosen: {best['threshold']} ({best['dev_with_strong']:.1%} of dev queries keep a strong hit, "
        f"{best['nonsense_without']:.1%} of nonsense queries have none)"
    )
    write_report(
        "match_calibration" + suffix.replace("-", "_"),
        {
            "model": encoder.name,
            "dev_queries": len(real),
            "nonsense_queries": len(fake),
            "top": TOP,
            "chosen": best,
            "thresholds": rows,
        },
    )


if __name__ == "__main__":
    main()
