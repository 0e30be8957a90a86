"""Cross-store matching quality: same-product matching on ProMapCz and the demo, before and after the
matching rules of issue 22, the time to match 10,000 x 20,000 listings, and category links on the demo.

Data:
- ProMapCz (../shared/data/multilingual/promap-cz): 299 labelled pairs of Czech listings from two shops
  (98 matches, 89 close non-matches = near variants, 112 medium non-matches); titles, short
  descriptions and prices, no brand field.
- the demo catalog (example/shop/fixtures): 428 products of two stores with brand, price and
  description, 48 known same-item pairs.

For each data set and each matcher ("before": the matcher of commit 41d707c, frozen in
benchmarks/_matching_before.py; "after": the library's), at its threshold:
- pairs (ProMapCz): each labelled pair scored by `match_score`, a match when it reaches the threshold:
  precision, recall, F1; close non-matches taken for matches (the rest stay available as substitutes);
- end to end: `match_products` from all listings of shop 1 to all of shop 2 (candidates, scoring, one
  match per listing): precision (over returned pairs that have a label, for ProMapCz), recall, F1;
- candidate recall@1 / @10: the share of true pairs whose target is among the source's 1 / 10 best
  ranked candidates (`rank_candidates`; before: its candidates ranked by its score).
The threshold sweep (both data sets) is printed; DEFAULT_THRESHOLD is the one with the best mean of
the demo's end-to-end F1 and ProMapCz's pairs F1, so both were used to choose it.

Scale: synthetic catalogs from the Home Depot titles and their cached vectors
(benchmarks/results/cache/homedepot-lancedb, built by benchmarks/search_quality.py; nothing is
re-embedded): 20,000 target listings and 10,000 source listings, 5,000 of them rewritten copies of
targets (words dropped and reordered, price within 20%, vector perturbed to cosine ~0.9), 5,000 other
products. Times `match_products` end to end.

Vectors come from the bundled all-MiniLM-L6-v2, an English model: on Czech titles its cosine is a
weak signal, and model numbers and measurements do most of the work.

    .venv/bin/python benchmarks/matching_quality.py [--skip-scale] [--skip-links]

Writes benchmarks/results/matching_quality.json; parts whose data is absent are skipped with a message.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from _results import ROOT, write_report

sys.path[:0] = [str(ROOT / "src"), str(ROOT / "example"), str(ROOT / "benchmarks")]

import _matching_before as before  # noqa: E402

from semantic_catalog.engine.crossstore import product_matching as after  # noqa: E402
from semantic_catalog.engine.crossstore.assignment import one_to_one  # noqa: E402
from semantic_catalog.engine.crossstore.category_links import CategoryPath, category_centroids, link_categories  # noqa: E402
from semantic_catalog.engine.crossstore.labels import LabelledPair  # noqa: E402
from semantic_catalog.engine.encoders import SentenceTransformerEncoder  # noqa: E402

PROMAP = ROOT.parent / "shared" / "data" / "multilingual" / "promap-cz" / "promapcz-test_data.csv"
HOMEDEPOT_VECTORS = ROOT / "benchmarks" / "results" / "cache" / "homedepot-lancedb"
THRESHOLDS = [round(0.4 + 0.025 * i, 3) for i in range(17)]  # 0.40 .. 0.80
BEFORE_THRESHOLD = 0.6

Ranked = dict[str, list[tuple[str, float]]]  # source id -> (target id, score), best first


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


# -- the two matchers behind one interface --------------------------------------------------------------


def ranked_before(source, target, vectors, candidates: int = 10) -> Ranked:
    """The old candidate step (nearest by cosine, most shared title words over every target), each
    candidate scored by the old scorer, best first."""
    matrix_b = np.stack([vectors[p.id] for p in target])
    target_words = [before.words(p.title) for p in target]
    ranked: Ranked = {}
    for a in source:
        cosines = matrix_b @ vectors[a.id]
        mine = before.words(a.title)
        overlap = np.array([len(mine & w) for w in target_words])
        pool = dict.fromkeys(
            [
                *np.argsort(-cosines, kind="stable")[:candidates].tolist(),
                *np.argsort(-overlap, kind="stable")[:candidates].tolist(),
            ]
        )
        scored = [
            (target[j].id, before.match_score(before.match_features(a, target[j], float(cosines[j])))) for j in pool
        ]
        ranked[a.id] = sorted(scored, key=lambda pair: (-pair[1], pair[0]))
    return ranked


def ranked_after(source, target, vectors, candidates: int = 10) -> Ranked:
    found = after.rank_candidates(source, target, vectors, candidates)
    return {s: [(m.target, m.score) for m in ms] for s, ms in found.items()}


def accept(ranked: Ranked, threshold: float) -> set[tuple[str, str]]:
    """What match_products returns from these ranked candidates: pairs over the threshold, one per product."""
    pairs = [after.ProductMatch(s, t, score) for s, found in ranked.items() for t, score in found if score >= threshold]
    pairs.sort(key=lambda m: (-m.score, m.source, m.target))
    return {(m.source, m.target) for m in one_to_one(pairs)}


def recall_at(ranked: Ranked, truth: set[tuple[str, str]], k: int) -> float:
    hits = sum(t in [target for target, _ in ranked.get(s, [])[:k]] for s, t in truth)
    return round(hits / len(truth), 4) if truth else 0.0


# -- ProMapCz ---------------------------------------------------------------------------------------------


def promap_side(encoder, rows, version: str) -> dict:
    """One matcher on ProMapCz: pairs, sweep, close non-matches, end to end, candidate recall."""
    module = before if version == "before" else after
    described = version == "after"

    def record(prefix: str, i: int, row: dict, side: str):
        extra = {"description": row[f"short_description{side}"]} if described else {}
        return module.ProductRecord(f"{prefix}{i}", side, row[f"name{side}"], "", price(row[f"price{side}"]), **extra)

    left = [record("a", i, r, "1") for i, r in enumerate(rows)]
    right = [record("b", i, r, "2") for i, r in enumerate(rows)]
    vectors = dict(zip([p.id for p in left + right], encoder.encode([p.title for p in left + right])))
    scores = np.array(
        [
            module.match_score(module.match_features(a, b, float(vectors[a.id] @ vectors[b.id])))
            for a, b in zip(left, right)
        ]
    )
    labels = np.array([r["match"] == "1" for r in rows])
    close = np.array([r["match_type"] == "close_nonmatch" for r in rows])
    pairs_sweep = {}
    for threshold in THRESHOLDS:
        predicted = scores >= threshold
        pairs_sweep[threshold] = prf(int((predicted & labels).sum()), int(predicted.sum()), int(labels.sum()))

    # End to end: one listing per distinct title on each side (pairs repeat some listings).
    unique_left = list({p.title: p for p in left}.values())
    unique_right = list({p.title: p for p in right}.values())
    canonical = {p.id: q.id for side in (left, right) for p in side for q in side if q.title == p.title}
    truth = {(canonical[a.id], canonical[b.id]) for a, b, label in zip(left, right, labels) if label}
    labelled = {(canonical[a.id], canonical[b.id]) for a, b in zip(left, right)}
    ranked = (ranked_before if version == "before" else ranked_after)(unique_left, unique_right, vectors)
    end_sweep = {}
    for threshold in THRESHOLDS:
        found = accept(ranked, threshold)
        judged = found & labelled  # pairs the data set has a label for
        end_sweep[threshold] = {
            "returned": len(found),
            "with_a_label": len(judged),
            **prf(len(found & truth), len(judged), len(truth)),
        }
    return {
        "scores": scores,
        "close": close,
        "pairs_sweep": pairs_sweep,
        "end_sweep": end_sweep,
        "listings": [len(unique_left), len(unique_right)],
        "recall_at_1": recall_at(ranked, truth, 1),
        "recall_at_10": recall_at(ranked, truth, 10),
    }


def promap_report(side: dict, threshold: float) -> dict:
    close_scores = side["scores"][side["close"]]
    return {
        "threshold": threshold,
        "pairs": side["pairs_sweep"].get(threshold),
        "close_nonmatch_taken_for_match": round(float((close_scores >= threshold).mean()), 4),
        "close_nonmatch_kept_as_substitute": round(float((close_scores < threshold).mean()), 4),
        "end_to_end": {"listings": side["listings"], **side["end_sweep"][threshold]},
        "candidate_recall_at_1": side["recall_at_1"],
        "candidate_recall_at_10": side["recall_at_10"],
    }


def promap_trained(encoder, rows, folds: int, cross_encoder: bool, epochs: int) -> dict:
    """The matcher learned from ProMapCz's own labels against the unsupervised scorer, both k-fold on the
    same folds (``trained_matcher.evaluate_labels``), and the time to train the final matcher on all."""
    from semantic_catalog.engine.crossstore import trained_matcher

    def record(i: int, row: dict, side: str):
        name = "a" if side == "1" else "b"
        return after.ProductRecord(
            f"{name}{i}", side, row[f"name{side}"], "", price(row[f"price{side}"]), row[f"short_description{side}"]
        )

    records = {r.id: r for i, row in enumerate(rows) for r in (record(i, row, "1"), record(i, row, "2"))}
    vectors = dict(zip(records, encoder.encode([r.title for r in records.values()])))
    labels = [LabelledPair.of(f"a{i}", f"b{i}", row["match"] == "1") for i, row in enumerate(rows)]
    started = time.perf_counter()
    report, _, _ = trained_matcher.evaluate_labels(
        trained_matcher.examples(records, vectors, labels), folds, cross_encoder, epochs, progress=print
    )
    report["cross_validation_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    final = trained_matcher.train_matcher(records, vectors, labels, encoder.name, folds, False)
    report["train_classifier_seconds"] = round(time.perf_counter() - started, 2)
    report["threshold_classifier"] = round(final.threshold, 4)
    report["cpus"] = os.cpu_count()
    report["load_average_at_end"] = round(os.getloadavg()[0], 1)
    return report


# -- the demo ---------------------------------------------------------------------------------------------


def demo_side(encoder, data, version: str) -> dict:
    module = before if version == "before" else after
    vectors = dict(zip(data.products, encoder.encode([data.product_text(pk) for pk in data.products])))
    records = []
    for pk, f in data.products.items():
        extra = {"description": f["description"]} if version == "after" else {}
        records.append(module.ProductRecord(pk, str(f["store"]), f["name"], f["brand"], float(f["price"]), **extra))
    source = [r for r in records if r.shop == "1"]
    target = [r for r in records if r.shop == "2"]
    truth = set(data.same_items)
    ranked = (ranked_before if version == "before" else ranked_after)(source, target, vectors)
    sweep = {}
    for threshold in THRESHOLDS:
        found = accept(ranked, threshold)
        sweep[threshold] = {"returned": len(found), **prf(len(found & truth), len(found), len(truth))}
    return {
        "sweep": sweep,
        "listings": [len(source), len(target)],
        "recall_at_1": recall_at(ranked, truth, 1),
        "recall_at_10": recall_at(ranked, truth, 10),
    }


def demo_report(side: dict, threshold: float) -> dict:
    return {
        "threshold": threshold,
        "end_to_end": {"listings": side["listings"], **side["sweep"][threshold]},
        "candidate_recall_at_1": side["recall_at_1"],
        "candidate_recall_at_10": side["recall_at_10"],
    }


def choose_threshold(demo: dict, promap: dict | None) -> tuple[float, list[dict]]:
    """The threshold with the best mean of the demo's end-to-end F1 and ProMapCz's pairs F1."""
    rows = []
    for t in THRESHOLDS:
        row = {"threshold": t, "demo_f1": demo["sweep"][t]["f1"]}
        if promap:
            row["promapcz_pairs_f1"] = promap["pairs_sweep"][t]["f1"]
            row["promapcz_end_to_end_f1"] = promap["end_sweep"][t]["f1"]
        row["mean_f1"] = round(float(np.mean([row["demo_f1"], row.get("promapcz_pairs_f1", row["demo_f1"])])), 4)
        rows.append(row)
    best = max(rows, key=lambda r: (r["mean_f1"], -abs(r["threshold"] - after.DEFAULT_THRESHOLD)))
    return best["threshold"], rows


# -- scale ------------------------------------------------------------------------------------------------


def homedepot_vectors() -> tuple[list[str], list[str], np.ndarray] | None:
    if not HOMEDEPOT_VECTORS.exists():
        return None
    import lancedb

    table = lancedb.connect(str(HOMEDEPOT_VECTORS)).open_table("homedepot").to_arrow()
    ids = table.column("id").to_pylist()
    texts = table.column("text").to_pylist()
    vectors = np.asarray(table.column("vector").combine_chunks().flatten().to_numpy(), dtype=np.float32).reshape(
        len(ids), -1
    )
    return ids, texts, vectors


def rewrite(title: str, rng: random.Random) -> str:
    """Another shop's wording of a title: a word dropped, the rest reordered a little."""
    words = title.split()
    if len(words) > 3:
        del words[rng.randrange(1, len(words))]
    cut = rng.randrange(1, max(2, len(words)))
    return " ".join(words[cut:] + words[:cut]) if rng.random() < 0.5 else " ".join(words)


def scale(n_source: int = 10_000, n_target: int = 20_000, seed: int = 7) -> dict | None:
    loaded = homedepot_vectors()
    if loaded is None:
        print(f"scale skipped: no cached Home Depot vectors at {HOMEDEPOT_VECTORS} (run benchmarks/search_quality.py)")
        return None
    ids, texts, matrix = loaded
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    order = rng.sample(range(len(ids)), n_target + n_source // 2)
    targets, others = order[:n_target], order[n_target:]
    copies = rng.sample(targets, n_source // 2)
    prices = {i: round(rng.uniform(5, 500), 2) for i in order}
    target = [after.ProductRecord(f"t{i}", "b", texts[i], "", prices[i]) for i in targets]
    vectors = {f"t{i}": matrix[i] for i in targets}
    source = []
    for i in copies:
        source.append(
            after.ProductRecord(f"s{i}", "a", rewrite(texts[i], rng), "", round(prices[i] * rng.uniform(0.8, 1.2), 2))
        )
        moved = matrix[i] + noise.normal(0, 0.022, matrix.shape[1]).astype(np.float32)
        vectors[f"s{i}"] = moved / np.linalg.norm(moved)
    for i in others:
        source.append(after.ProductRecord(f"s{i}", "a", texts[i], "", prices[i]))
        vectors[f"s{i}"] = matrix[i]
    truth = {(f"s{i}", f"t{i}") for i in copies}
    load = os.getloadavg()[0]  # other work on the machine slows the run: reported beside the time
    started = time.perf_counter()
    found = after.match_products(source, target, vectors)
    seconds = time.perf_counter() - started
    pairs = {(m.source, m.target) for m in found}
    return {
        "source_listings": len(source),
        "target_listings": len(target),
        "rewritten_copies": len(truth),
        "seconds": round(seconds, 1),
        "goal_seconds": 120,
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load, 1),
        "matches": len(pairs),
        "sanity": prf(len(pairs & truth), len(pairs), len(truth)),
    }


# -- category links ---------------------------------------------------------------------------------------


def demo_links(encoder, data) -> dict:
    nodes = [CategoryPath(pk, str(store), names) for pk, store, names in data.paths.values()]
    vectors = dict(zip(data.products, encoder.encode([data.product_text(pk) for pk in data.products])))
    centroids = category_centroids(nodes, {k: str(p["category"]) for k, p in data.products.items()}, vectors)
    parents = {n.path[:-1] for n in nodes}
    leaves = {s: [n for n in nodes if n.shop == s and n.path not in parents] for s in ("1", "2")}
    text = {n.id: n.text for n in nodes}
    report = {"intended_links": len(data.intended_links)}
    for mode in ("one_to_one", "one_to_many"):
        for label, weight in (("path_and_products", 0.5), ("path_only", 1.0)):
            links = link_categories(leaves["1"], leaves["2"], encoder, centroids, mode=mode, path_weight=weight)
            found = {(text[link.source], text[link.target]) for link in links}
            hits = len(found & data.intended_links)
            report[f"{mode}/{label}"] = {"links": len(found), **prf(hits, len(found), len(data.intended_links))}
    return report


def table(title: str, rows: Sequence[dict], columns: Sequence[str], cell: Callable[[dict, str], str]) -> None:
    print(f"\n{title}")
    print("".join(f"{c:>24}" for c in columns))
    for row in rows:
        print("".join(f"{cell(row, c):>24}" for c in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-scale", action="store_true", help="leave out the 10,000 x 20,000 timing")
    parser.add_argument("--skip-links", action="store_true", help="leave out category links on the demo")
    parser.add_argument(
        "--trained-only", action="store_true", help="only the trained matcher against the unsupervised one (ProMapCz)"
    )
    parser.add_argument("--folds", type=int, default=5, help="k of the trained matcher's k-fold (default 5)")
    parser.add_argument("--epochs", type=int, default=4, help="cross-encoder epochs per fold (default 4)")
    parser.add_argument("--no-cross-encoder", action="store_true", help="the trained matcher without cross-encoder")
    args = parser.parse_args()
    if args.trained_only:
        if not PROMAP.exists():
            sys.exit(f"ProMapCz is absent: {PROMAP} (see ../shared/README.md)")
        with PROMAP.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        trained = promap_trained(SentenceTransformerEncoder(), rows, args.folds, not args.no_cross_encoder, args.epochs)
        print(json.dumps(trained, indent=2))
        write_report("matching_quality_trained", trained)
        return
    from shop.fixtures.demo_data import load_demo

    encoder = SentenceTransformerEncoder()
    data = load_demo()
    report: dict = {"model": encoder.name, "default_threshold": after.DEFAULT_THRESHOLD}
    demo = {v: demo_side(encoder, data, v) for v in ("before", "after")}
    promap = None
    if PROMAP.exists():
        with PROMAP.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        promap = {v: promap_side(encoder, rows, v) for v in ("before", "after")}
    else:
        print(f"ProMapCz skipped: {PROMAP} is absent (see ../shared/README.md)")
    chosen, sweep = choose_threshold(demo["after"], promap and promap["after"])
    report["threshold_choice"] = {
        "chosen": chosen,
        "rule": "best mean of the demo's end-to-end F1 and ProMapCz's pairs F1",
        "default_is_chosen": chosen == after.DEFAULT_THRESHOLD,
        "sweep": sweep,
    }
    report["demo"] = {
        "before": demo_report(demo["before"], BEFORE_THRESHOLD),
        "after": demo_report(demo["after"], after.DEFAULT_THRESHOLD),
    }
    if promap:
        report["promapcz_trained"] = promap_trained(
            encoder, rows, args.folds, not args.no_cross_encoder, args.epochs
        )
        report["promapcz"] = {
            "pairs": len(rows),
            "matches": int(sum(r["match"] == "1" for r in rows)),
            "close_nonmatches": int(promap["after"]["close"].sum()),
            "before": promap_report(promap["before"], BEFORE_THRESHOLD),
            "after": promap_report(promap["after"], after.DEFAULT_THRESHOLD),
        }
    table("threshold sweep (after)", sweep, list(sweep[0]), lambda r, c: str(r.get(c, "")))
    if not args.skip_scale:
        report["scale"] = scale()
    if not args.skip_links:
        report["category_links_demo"] = demo_links(encoder, data)
    print(json.dumps(report, indent=2))
    write_report("matching_quality", report)


if __name__ == "__main__":
    main()
