"""`semantic_evaluate` and the metrics behind it."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError

from semantic_catalog.engine.search.evaluation import evaluate, ndcg
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


def test_cli_evaluate_scores_an_export_file_and_reuses_embed_vectors(tmp_path, capsys):
    """`semantic-catalog evaluate` on the offline machine: export file in, metrics per mode out; with
    --vectors it uses `embed` output, and vectors of another model are refused."""
    import numpy as np
    import pyarrow.parquet as pq

    from semantic_catalog.cli import main as cli
    from semantic_catalog.engine.offline.records import VectorRecord, vector_table

    texts = ["Cordless drill driver 18V", "Cast iron skillet 12 in.", "Garden hose 30 m", "LED bulb warm white"]
    records = tmp_path / "products.jsonl"
    records.write_text(
        "".join(
            json.dumps({"id": str(i), "index": "products", "text": t, "fields": {}, "content_hash": f"h{i}"}) + "\n"
            for i, t in enumerate(texts)
        )
    )
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        json.dumps({"query_id": "a", "query": "battery drill"})
        + "\n"
        + json.dumps({"query_id": "b", "query": "frying utensil for steak"})
        + "\n"
    )
    judgments = tmp_path / "judgments.csv"
    judgments.write_text("query_id,id,relevance\na,0,3\nb,1,3\nb,2,0\n")
    common = ["--queries", str(queries), "--judgments", str(judgments), "--backend", "torch", "--quiet"]
    out = tmp_path / "r.json"
    assert cli(["evaluate", str(records), *common, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ndcg@10" in printed and "hybrid" in printed
    report = json.loads(out.read_text())
    results = report["results"]
    assert report["documents"] == 4 and report["model"] == "all-MiniLM-L6-v2"
    assert results["semantic"]["mrr"] == 1.0 and results["semantic"]["queries"] == 2
    assert results["keyword"]["recall@10"] == 0.5  # "frying utensil for steak" shares no word with the skillet

    assert cli(["embed", str(records), "--out", str(tmp_path / "v"), "--backend", "torch", "--quiet"]) == 0
    capsys.readouterr()
    assert cli(["evaluate", str(records), *common, "--vectors", str(tmp_path / "v"), "--output", str(out)]) == 0
    assert json.loads(out.read_text())["results"] == results

    other = tmp_path / "other.parquet"
    pq.write_table(vector_table([VectorRecord("0", "products", "h0", "e5-large", 384, np.ones(384))], 384), other)
    assert cli(["evaluate", str(records), *common, "--vectors", str(other)]) == 2
    assert "embedded with 'e5-large'" in capsys.readouterr().err
    assert cli(["evaluate", str(records), *common, "--modes", "fuzzy"]) == 2
    assert "Unknown mode 'fuzzy'" in capsys.readouterr().err
