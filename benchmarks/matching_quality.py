"""Cross-store matching quality: same-product matching on ProMapCz, category links on the demo.

ProMapCz (../shared/data/multilingual/promap-cz): 299 labelled pairs of Czech listings from two
shops (98 matches, 89 close non-matches = near variants, 112 medium non-matches). Two views:

1. pairs: each labelled pair scored by `match_score` (the scorer inside `match_products`), a match
   when the score reaches the threshold: precision, recall, F1 at the default threshold (chosen on
   the demo's same-item pairs, not here) and at other thresholds for reference;
2. end to end: `match_products` from all listings of shop 1 to all listings of shop 2 (candidates,
   scoring, one match per listing): precision and recall against the 98 labelled matches.

Close non-matches: the share scored below the threshold, i.e. kept apart from the product and
left to rank as substitutes (substitutions exclude only matches), rather than taken for the item.

Vectors come from the bundled all-MiniLM-L6-v2, an English model: on Czech titles its cosine is a
weak signal, and model numbers and measurements do most of the work. No multilingual model is
installable here; with one, pass its vectors instead.

Category links: `link_categories` between the demo's two stores (leaf categories, product
centroids from the bundled model) against the intended mapping in category_mapping.json.

    .venv/bin/python benchmarks/matching_quality.py

Writes benchmarks/results/matching_quality.json; the ProMapCz part is skipped with a message when
the data is absent.
"""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
from _results import ROOT, write_report

sys.path[:0] = [str(ROOT / "src"), str(ROOT / "example")]

from semantic_catalog.engine.crossstore.category_links import CategoryPath, category_centroids, link_categories  # noqa: E402
from semantic_catalog.engine.crossstore.product_matching import (  # noqa: E402
    DEFAULT_THRESHOLD,
    ProductRecord,
    match_features,
    match_products,
    match_score,
)
from semantic_catalog.engine.encoders import SentenceTransformerEncoder  # noqa: E402

PROMAP = ROOT.parent / "shared" / "data" / "multilingual" / "promap-cz" / "promapcz-test_data.csv"


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


def promap(encoder: SentenceTransformerEncoder) -> dict:
    with PROMAP.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    left = [ProductRecord(f"a{i}", "1", r["name1"], "", price(r["price1"])) for i, r in enumerate(rows)]
    right = [ProductRecord(f"b{i}", "2", r["name2"], "", price(r["price2"])) for i, r in enumerate(rows)]
    vectors = dict(zip([p.id for p in left + right], encoder.encode([p.title for p in left + right])))
    scores = np.array(
        [match_score(match_features(a, b, float(vectors[a.id] @ vectors[b.id]))) for a, b in zip(left, right)]
    )
    labels = np.array([r["match"] == "1" for r in rows])
    kinds = np.array([r["match_type"] for r in rows])
    sweep = {}
    for threshold in (0.3, 0.4, 0.5, DEFAULT_THRESHOLD, 0.7):
        predicted = scores >= threshold
        sweep[str(threshold)] = prf(int((predicted & labels).sum()), int(predicted.sum()), int(labels.sum()))
    close = kinds == "close_nonmatch"

    # End to end: one listing per distinct title on each side (pairs repeat some listings).
    unique_left = {p.title: p for p in left}
    unique_right = {p.title: p for p in right}
    truth = {(a.title, b.title) for a, b, label in zip(left, right, labels) if label}
    found = match_products(list(unique_left.values()), list(unique_right.values()), vectors)
    by_id = {p.id: p.title for p in left + right}
    found_pairs = {(by_id[m.source], by_id[m.target]) for m in found}
    labelled = {(a.title, b.title) for a, b in zip(left, right)}
    judged = found_pairs & labelled  # pairs the data set has a label for
    return {
        "pairs": len(rows),
        "matches": int(labels.sum()),
        "close_nonmatches": int(close.sum()),
        "threshold": DEFAULT_THRESHOLD,
        "pairs_at_threshold": sweep[str(DEFAULT_THRESHOLD)],
        "threshold_sweep": sweep,
        "close_nonmatch_kept_as_substitute": round(float((scores[close] < DEFAULT_THRESHOLD).mean()), 4),
        "close_nonmatch_taken_for_match": round(float((scores[close] >= DEFAULT_THRESHOLD).mean()), 4),
        "end_to_end": {
            "listings": [len(unique_left), len(unique_right)],
            "returned": len(found_pairs),
            "returned_with_a_label": len(judged),
            **prf(len(found_pairs & truth), len(judged), len(truth)),
        },
    }


def demo_links(encoder: SentenceTransformerEncoder) -> dict:
    from shop.fixtures.demo_data import load_demo

    data = load_demo()
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


def main() -> None:
    encoder = SentenceTransformerEncoder()
    report = {"model": encoder.name, "category_links_demo": demo_links(encoder)}
    if PROMAP.exists():
        report["promapcz"] = promap(encoder)
    else:
        print(f"ProMapCz skipped: {PROMAP} is absent (see ../shared/README.md)")
    print(json.dumps(report, indent=2))
    write_report("matching_quality", report)


if __name__ == "__main__":
    main()
