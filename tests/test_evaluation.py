"""`semantic_evaluate` and the metrics behind it."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError

from semantic_catalog.engine.evaluation import evaluate, ndcg
from tests.helpers import run


def test_metrics_on_hand_computed_cases():
    judgments = {"q1": {"a": 3, "b": 1, "c": 2}, "q2": {"x": 1}}
    perfect = evaluate({"q1": ["a", "c", "b"]}, judgments, relevant_at=2)
    assert perfect == {"ndcg@10": 1.0, "recall@10": 1.0, "recall@100": 1.0, "mrr": 1.0, "queries": 1}
    swapped = evaluate({"q1": ["z", "c", "a"], "q2": ["x"]}, judgments, relevant_at=2)
    assert swapped["mrr"] == pytest.approx(0.5) and swapped["queries"] == 1  # q2 has nothing >= 2
    expected = (2 / 1.5849625 + 3 / 2) / (3 + 2 / 1.5849625 + 1 / 2)
    assert ndcg(["z", "c", "a"], {"a": 3, "b": 1, "c": 2}) == pytest.approx(expected, rel=1e-6)


@pytest.mark.django_db(transaction=True)
def test_semantic_evaluate_runs_every_mode(make_product, tmp_path):
    drill = make_product("Cordless drill driver", description="battery drill")
    pan = make_product("Cast iron skillet", category="pans", description="searing pan")
    make_product("Garden hose", category="hoses", store="b")
    queries = tmp_path / "queries.csv"
    queries.write_text("query_id,query\n1,battery drill\n2,frying utensil for steak\n")
    judgments = tmp_path / "judgments.jsonl"
    judgments.write_text(
        json.dumps({"query_id": "1", "id": str(drill.pk), "relevance": 3})
        + "\n"
        + json.dumps({"query_id": "2", "id": str(pan.pk), "relevance": 3})
        + "\n"
    )
    out = tmp_path / "results.json"
    text = run(
        "semantic_evaluate",
        "--index",
        "products",
        "--queries",
        str(queries),
        "--judgments",
        str(judgments),
        "--output",
        str(out),
        "--no-progress",
    )
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"semantic", "keyword", "hybrid"} and "ndcg@10" in text
    assert results["semantic"]["mrr"] == 1.0 and results["semantic"]["queries"] == 2
    assert results["keyword"]["recall@10"] == 0.5  # query 2 shares no word with the skillet
    with pytest.raises(CommandError, match="needs 'query_id'"):
        run("semantic_evaluate", "--index", "products", "--queries", str(judgments), "--judgments", str(judgments))
