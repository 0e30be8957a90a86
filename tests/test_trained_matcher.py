"""A matcher learned from labelled pairs: training, its report, its file, and its use by match_products,
`semantic-catalog analyze` and `semantic_analyze` (the demo's two stores, the bundled model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from semantic_catalog.engine.crossstore.labels import LabelledPair, labels_path, write_label_file
from semantic_catalog.engine.crossstore.product_matching import ProductRecord, match_products, rank_candidates
from semantic_catalog.engine.crossstore.trained_matcher import (
    MIN_PER_CLASS,
    best_threshold,
    cross_validated,
    load_matcher,
    train_matcher,
)
from semantic_catalog.engine.errors import BadFile, ConfigurationError, InvalidQuery
from tests.helpers import run


@pytest.fixture(scope="module")
def shops(demo):
    """The demo's two stores, their vectors, and labels: the 48 same items and, for each, its two best
    wrong candidates (the hard non-matches a person would reject)."""
    data = demo["data"]
    records = {
        pk: ProductRecord(pk, str(f["store"]), f["name"], f["brand"], float(f["price"]), f["description"])
        for pk, f in data.products.items()
    }
    texts = [f"{f['name']}. {f['brand']}" for f in data.products.values()]
    vectors = dict(zip(data.products, demo["encoder"].encode(texts)))
    a = [r for r in records.values() if r.shop == "1"]
    b = [r for r in records.values() if r.shop == "2"]
    truth = set(data.same_items)
    ranked = rank_candidates(a, b, vectors, top_k=3)
    labels = {LabelledPair.of(s, t, True) for s, t in truth}
    for source, _ in truth:
        wrong = [m.target for m in ranked.get(source, []) if (source, m.target) not in truth]
        labels |= {LabelledPair.of(source, target, False) for target in wrong}
    return {"records": records, "vectors": vectors, "a": a, "b": b, "truth": truth, "labels": sorted(labels)}


@pytest.fixture(scope="module")
def trained(shops):
    return train_matcher(shops["records"], shops["vectors"], shops["labels"], "all-MiniLM-L6-v2", cross_encoder=False)


def test_training_reports_cross_validated_figures_and_matches_well(shops, trained):
    report = trained.report
    same = sum(p.label for p in shops["labels"])
    assert report["labels"] == {"pairs": len(shops["labels"]), "same": same, "different": len(shops["labels"]) - same}
    assert same == len(shops["truth"]) and report["labels"]["different"] >= 60
    for key in ("unsupervised", "unsupervised_tuned", "classifier"):
        assert set(report[key]) >= {"precision", "recall", "f1"}, key
    assert report["classifier"]["f1"] >= 0.9, report
    assert 0 < trained.threshold < 1 and trained.dimension == 384 and not trained.uses_cross_encoder

    found = match_products(shops["a"], shops["b"], shops["vectors"], scorer=trained)
    pairs = {(m.source, m.target) for m in found}
    precision = len(pairs & shops["truth"]) / len(pairs)
    recall = len(pairs & shops["truth"]) / len(shops["truth"])
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    assert all(m.score >= trained.threshold for m in found)
    assert all(m.reasons and set(m.reasons) <= set(trained.features) for m in found)
    looser = match_products(shops["a"], shops["b"], shops["vectors"], scorer=trained, threshold=0.05)
    assert len(looser) > len(found)  # an explicit threshold wins over the matcher's


def test_thresholds_are_chosen_without_the_pair_they_judge():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])
    labels = np.array([True, True, False, True, False, False, False, False])
    assert best_threshold(scores, labels) == 0.6
    folds = [(np.array([1, 2, 3, 5, 6, 7]), np.array([0, 4])), (np.array([0, 4, 5, 6, 7]), np.array([1, 2, 3]))]
    # fold 1 learns 0.6 on its training part (and takes pair 0); fold 2's training part has only 0.9 as a
    # match, so its threshold is 0.9 and it misses pairs 1 and 3: its own labels never lower it
    assert cross_validated(scores, labels, folds) == {"precision": 1.0, "recall": 0.3333, "f1": 0.5}


def test_the_file_round_trips_and_is_checked(shops, trained, tmp_path):
    folder = trained.save(tmp_path / "matcher")
    loaded = load_matcher(folder, "all-MiniLM-L6-v2", 384)
    pairs = [(shops["records"][p.left], shops["records"][p.right]) for p in shops["labels"][:20]]
    from semantic_catalog.engine.crossstore.product_matching import match_features

    features = [match_features(a, b, float(shops["vectors"][a.id] @ shops["vectors"][b.id])) for a, b in pairs]
    assert loaded.score_pairs(pairs, features) == trained.score_pairs(pairs, features)
    assert json.loads((folder / "matcher.json").read_text())["version"] == 1

    with pytest.raises(ConfigurationError, match="Train the matcher again on this model's vectors"):
        load_matcher(folder, "multilingual-e5-small", 384)
    with pytest.raises(ConfigurationError, match="768 dimensions"):
        load_matcher(folder, "all-MiniLM-L6-v2", 768)
    with pytest.raises(ConfigurationError, match="no matcher.json"):
        load_matcher(tmp_path)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(BadFile, match="holds no matcher"):
        trained.save(other)
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    trained.save(folder)  # an earlier matcher is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matcher", "notes"]


def test_bad_labels_say_what_is_needed(shops):
    records, vectors, labels = shops["records"], shops["vectors"], shops["labels"]
    with pytest.raises(InvalidQuery, match="not in the catalog export.*nope"):
        unknown = [*labels, LabelledPair.of("nope", labels[0].left, True)]
        train_matcher(records, vectors, unknown, "m", cross_encoder=False)
    only_same = [p for p in labels if p.label]
    with pytest.raises(InvalidQuery, match=f"at least {MIN_PER_CLASS} labelled pairs of each kind.* 48 and 0"):
        train_matcher(records, vectors, only_same, "m", cross_encoder=False)
    few = only_same[:5] + [p for p in labels if not p.label][:30]
    with pytest.raises(InvalidQuery, match="have 5 and 30"):
        train_matcher(records, vectors, few, "m", cross_encoder=False)
    with pytest.raises(InvalidQuery, match="folds must be"):
        train_matcher(records, vectors, labels, "m", folds=1, cross_encoder=False)


def test_a_cross_encoder_is_trained_saved_and_used(shops, tmp_path):
    """Small and short (2 folds, 1 epoch): it trains, joins the classifier, and scores the same after loading."""
    labels = [p for p in shops["labels"] if p.label][:12] + [p for p in shops["labels"] if not p.label][:12]
    notes: list[str] = []
    matcher = train_matcher(
        shops["records"], shops["vectors"], labels, "all-MiniLM-L6-v2", folds=2, epochs=1, progress=notes.append
    )
    assert matcher.uses_cross_encoder and matcher.features[-1] == "cross_encoder"
    assert {"cross_encoder_alone", "classifier_cross_encoder"} <= set(matcher.report)
    assert notes[0].startswith("cross-encoder fold 1 of 2")
    assert notes[-1].startswith("cross-encoder: training on all 24")
    folder = matcher.save(tmp_path / "with-ce")
    assert (folder / "cross-encoder").is_dir()
    pairs = [(shops["records"][p.left], shops["records"][p.right]) for p in labels]
    from semantic_catalog.engine.crossstore.product_matching import match_features

    features = [match_features(a, b, float(shops["vectors"][a.id] @ shops["vectors"][b.id])) for a, b in pairs]
    before = [score for score, _ in matcher.score_pairs(pairs, features)]
    after = [score for score, _ in load_matcher(folder).score_pairs(pairs, features)]
    assert np.allclose(before, after, atol=1e-5)
    assert all("cross_encoder" in reasons for _, reasons in load_matcher(folder).score_pairs(pairs[:3], features[:3]))


@pytest.mark.django_db(transaction=True)
def test_export_train_analyze_offline_and_on_the_server(tmp_path, demo, settings):
    """semantic_export -> labels beside it -> `train-matcher` -> `analyze --matcher`, and semantic_analyze
    through the MATCHERS setting."""
    from semantic_catalog.cli import main as cli
    from semantic_catalog.models import AnalysisRun, ProductMatch

    call_command("loaddata", "demo_catalog", verbosity=0)
    run("semantic_index", "--no-progress")
    export = tmp_path / "products.jsonl"
    run("semantic_export", "--index", "products", "--output", str(export))
    missing = tmp_path / "matcher"
    assert cli(["train-matcher", str(export), "--out", str(missing), "--quiet"]) == 2  # no labels yet
    assert not missing.exists()

    data = demo["data"]
    exported = {json.loads(line)["id"] for line in export.read_text().splitlines()}
    vectors = {pk: v for pk, v in demo["vectors"].items() if pk in exported}  # inactive products are not exported
    listed = [(pk, f) for pk, f in data.products.items() if pk in exported]
    a = [ProductRecord(pk, "1", f["name"]) for pk, f in listed if str(f["store"]) == "1"]
    b = [ProductRecord(pk, "2", f["name"]) for pk, f in listed if str(f["store"]) == "2"]
    truth = {(s, t) for s, t in data.same_items if s in exported and t in exported}
    labels = {LabelledPair.of(s, t, True) for s, t in truth}
    for source, found in rank_candidates(a, b, vectors, top_k=3).items():
        labels |= {LabelledPair.of(source, m.target, False) for m in found if (source, m.target) not in truth}
    write_label_file(labels_path(export), sorted(labels))
    folder = tmp_path / "matcher"
    args = ["train-matcher", str(export), "--out", str(folder), "--no-cross-encoder", "--backend", "torch", "--quiet"]
    assert cli(args) == 0
    matcher = load_matcher(folder, "all-MiniLM-L6-v2", 384)
    assert matcher.report["labels"]["same"] == len(truth)

    out = tmp_path / "results"
    analyze = ["analyze", str(export), "--out", str(out), "--matches", "--matcher", str(folder), "--backend", "torch"]
    assert cli([*analyze, "--quiet"]) == 0
    result = json.loads((out / "product_matches.json").read_text())
    assert result["parameters"]["match_threshold"] == matcher.threshold
    assert result["parameters"]["matcher"]["labels"] == matcher.labels
    found = {(r["product"], r["match"]) for r in result["rows"]}
    assert len(found & truth) >= 0.9 * len(truth) and len(found & truth) >= 0.9 * len(found)

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MATCHERS": {"products": str(folder)}}
    run("semantic_analyze", "--index", "products", "--matches")
    run_row = AnalysisRun.objects.get(kind="matches")
    assert run_row.parameters["matcher"]["created_at"] == matcher.created_at
    stored = set(ProductMatch.objects.values_list("product", "match"))
    assert stored == found  # the same matcher on the server and offline

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MATCHERS": {"products": str(tmp_path)}}
    with pytest.raises(CommandError, match="no matcher.json"):
        run("semantic_analyze", "--index", "products", "--matches")
    assert AnalysisRun.objects.get(kind="matches").pk == run_row.pk  # nothing replaced
