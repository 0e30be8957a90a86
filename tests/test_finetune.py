"""Fine-tuning the embedding model on judged queries: its training examples, the command's
cross-validation against the base model and a query adapter, and the model it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.search.finetune import FinetuneSettings, ranked_negatives, triples
from semantic_catalog.engine.search.query_adapter import TrainingQuery
from tests.test_query_adapter import CATALOG, JARGON, judged_files


def test_triples_take_the_best_products_and_judged_negatives_first():
    texts = {d: d.upper() for d in ("a", "b", "c", "x", "y", "z")}
    queries = {
        "q1": TrainingQuery(np.zeros(2), {"a": 1.0, "b": 2.0, "c": 0.5, "x": 0.0}, ["y", "z"]),
        "q2": TrainingQuery(np.zeros(2), {"c": 1.0}, []),
    }
    found = triples(queries, {"q1": "first", "q2": "second"}, texts, FinetuneSettings(positives_per_query=2))
    assert found[:2] == [("first", "B", "X"), ("first", "A", "Y")]  # best gain first; judged negative first
    assert len(found) == 3 and found[2][:2] == ("second", "C") and found[2][2] in texts.values()


def test_negatives_can_come_from_another_ranking():
    queries = {
        "q1": TrainingQuery(np.zeros(2), {"a": 1.0, "x": 0.0}, ["m1", "m2"]),
        "q2": TrainingQuery(np.zeros(2), {"c": 1.0}, ["m3"]),
    }
    ranked = {"q1": ["a", "h1", "x", "h2", "h3"], "q2": []}
    found = ranked_negatives(queries, ranked, 2)
    assert found["q1"].negatives == ["h1", "h2"] and found["q2"].negatives == []  # judged ids never
    assert found["q1"].gains == queries["q1"].gains and queries["q1"].negatives == ["m1", "m2"]  # a copy


def test_settings_are_checked():
    for bad in ({"epochs": 0}, {"batch_size": True}, {"positives_per_query": 1.5}, {"learning_rate": 0}):
        with pytest.raises(ConfigurationError, match="Fine-tuning"):
            FinetuneSettings(**bad)


def test_cli_finetune_cross_validates_and_writes_a_model(tmp_path, capsys):
    from semantic_catalog.cli import main as cli
    from semantic_catalog.engine.encoders import SentenceTransformerEncoder

    records, common = judged_files(tmp_path)
    taken = tmp_path / "notes"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    assert cli(["finetune", str(records), *common, "--out", str(taken), "--folds", "0"]) == 2
    assert "holds no sentence-transformers model" in capsys.readouterr().err
    assert [p.name for p in taken.iterdir()] == ["mine.txt"]
    assert cli(["finetune", str(records), *common, "--folds", "0"]) == 2  # no --out, nothing to measure
    assert "Nothing to do" in capsys.readouterr().err
    mined = tmp_path / "mined-from-hybrid"
    hybrid_negatives = ["--negatives-from", "hybrid"]
    assert cli(["finetune", str(records), *common, "--out", str(mined), "--folds", "0", *hybrid_negatives]) == 0
    assert (mined / "config_sentence_transformers.json").exists() and "wrote" in capsys.readouterr().out

    out, report = tmp_path / "model", tmp_path / "cv.json"
    args = ["finetune", str(records), *common, "--out", str(out), "--folds", "2", "--epochs", "8"]
    with pytest.raises(SystemExit):
        cli([*args, "--keyword-weights", "0.3,1.5"])
    assert "keyword weights must be from 0 to 1" in capsys.readouterr().err
    assert cli([*args, "--learning-rate", "1e-4", "--output", str(report), "--keyword-weights", "0.3,0.6"]) == 0
    printed = capsys.readouterr().out
    assert "cross-validated over 2 folds" in printed and "hybrid+finetuned@0.3" in printed
    results = json.loads(report.read_text())["cross_validation"]["results"]
    weighted = {f"hybrid{system}@{w}" for system in ("", "+adapter", "+finetuned") for w in ("0.3", "0.6")}
    assert set(results) == {
        "keyword", "semantic", "hybrid", "semantic+adapter", "hybrid+adapter", "semantic+finetuned", "hybrid+finetuned"
    } | weighted  # fmt: skip
    assert all(row["queries"] == 15 for row in results.values())
    for system in ("", "+adapter", "+finetuned"):  # 0.6 is the default weight: the same run
        assert results[f"hybrid{system}@0.6"] == results[f"hybrid{system}"]

    # the model trained on every query has learned the made-up jargon: its queries find their department
    base, tuned = SentenceTransformerEncoder(backend="torch"), SentenceTransformerEncoder(str(out), backend="torch")
    titles = [t for ts in CATALOG.values() for t in ts]
    department = [d for d, ts in CATALOG.items() for _ in ts]

    def precision_at_4(encoder) -> float:
        docs = encoder.encode(titles)
        shares = []
        for d, phrases in JARGON.items():
            for vector in encoder.encode_queries(phrases):
                top = np.argsort(-(docs @ vector))[:4]
                shares.append(sum(department[i] == d for i in top) / 4)
        return float(np.mean(shares))

    assert precision_at_4(tuned) >= precision_at_4(base) + 0.3, (precision_at_4(base), precision_at_4(tuned))
