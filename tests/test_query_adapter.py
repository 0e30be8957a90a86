"""Query adapters: learned from judged queries, applied to query vectors in every search path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semantic_catalog.engine import Document, index_documents
from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.search.pipeline import QueryOptions, search
from semantic_catalog.engine.search.query_adapter import (
    AdapterSettings,
    QueryAdapter,
    folds,
    train_query_adapter,
    training_data,
)
from semantic_catalog.engine.stores.lancedb import LanceDBStore
from tests.encoders import CountingEncoder

CATALOG = {
    "paint": ["Interior wall paint white 1 gal.", "Exterior deck stain cedar", "Paint roller 9 in.", "Primer grey"],
    "pans": ["Cast iron skillet 12 in.", "Non-stick frying pan", "Stainless saute pan", "Wok carbon steel"],
    "hoses": ["Garden hose 30 m", "Hose reel cart", "Spray nozzle 8 patterns", "Soaker hose 15 m"],
    "bulbs": ["LED bulb warm white", "Halogen spot GU10", "Smart bulb colour", "Filament bulb vintage"],
    "chairs": ["Office chair mesh", "Folding chair steel", "Patio chair teak", "Bar stool oak"],
}
# Made-up promotion codes the general model cannot know: each one means one department.
JARGON = {
    "paint": ["zorblax deal", "quimby week", "florp offer"],
    "pans": ["brindle vax", "snorkum deal", "wexley week"],
    "hoses": ["plunto offer", "grivax deal", "mossle week"],
    "bulbs": ["trandle offer", "vimbo deal", "kestrix week"],
    "chairs": ["yorple offer", "dravik deal", "blenso week"],
}


@pytest.fixture(scope="module")
def encoder():
    return CountingEncoder(device="cpu")


@pytest.fixture
def judged(tmp_path, encoder):
    """A store with the catalog, query vectors and gains: every title of the department is relevant."""
    store = LanceDBStore(tmp_path / "lance")
    store.create_collection("c", encoder.dimension, [])
    ids = {}
    documents = []
    for department, titles in CATALOG.items():
        for n, title in enumerate(titles):
            ids[title] = f"{department}-{n}"
            documents.append(Document(ids[title], title))
    index_documents(store, "c", encoder, documents)
    queries = {f"{d}-{n}": text for d, phrases in JARGON.items() for n, text in enumerate(phrases)}
    vectors = dict(zip(queries, encoder.encode_queries(list(queries.values()))))
    gains = {q: {ids[t]: 2.0 for t in CATALOG[q.rsplit("-", 1)[0]]} for q in queries}
    return store, queries, vectors, gains


def precision_at_4(store, queries, vectors, gains, adapter=None):
    """Share of each query's top 4 that is in its department (4 relevant titles each), averaged."""
    shares = []
    for q in queries:
        vector = adapter.apply(vectors[q]) if adapter else vectors[q]
        top = [h.id for h in search(store, "c", queries[q], vector, QueryOptions("semantic", 4))]
        shares.append(len(set(top) & set(gains[q])) / 4)
    return float(np.mean(shares))


def test_training_moves_queries_to_what_was_judged_relevant(judged):
    store, queries, vectors, gains = judged
    training, doc_vectors = training_data(store, "c", vectors, gains, hard_negatives=4)
    assert set(training) == set(queries) and len(doc_vectors) == 20
    assert all(len(t.negatives) == 4 and not set(t.negatives) & set(t.gains) for t in training.values())
    settings = AdapterSettings(epochs=60, l2=1e-4, batch_size=8, hard_negatives=4)
    adapter = train_query_adapter(list(training.values()), doc_vectors, "all-MiniLM-L6-v2", settings)
    plain = precision_at_4(store, queries, vectors, gains)
    adapted = precision_at_4(store, queries, vectors, gains, adapter)
    assert plain < 0.5 and adapted > 0.9, (plain, adapted)
    batch = adapter.apply(np.stack(list(vectors.values())))
    assert batch.dtype == np.float32 and np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert np.allclose(batch[0], adapter.apply(vectors[next(iter(vectors))]), atol=1e-6)

    # A stronger pull toward the identity (l2) keeps the matrix closer to it and fits less.
    stiff = train_query_adapter(
        list(training.values()), doc_vectors, "m", AdapterSettings(**{**vars(settings), "l2": 1.0})
    )
    change = np.linalg.norm(stiff.matrix - np.eye(384)), np.linalg.norm(adapter.matrix - np.eye(384))
    assert change[0] < change[1] / 2, change
    assert precision_at_4(store, queries, vectors, gains, stiff) < adapted


def test_adapter_files_round_trip_and_bad_ones_are_refused(tmp_path):
    adapter = QueryAdapter(np.eye(4, dtype=np.float32) * 2, "mini", {"queries": 3})
    path = adapter.save(tmp_path / "a.npz")
    loaded = QueryAdapter.load(path)
    assert loaded.model == "mini" and loaded.info == {"queries": 3} and np.array_equal(loaded.matrix, adapter.matrix)
    assert np.allclose(loaded.apply(np.array([3.0, 4.0, 0, 0])), [0.6, 0.8, 0, 0])
    with pytest.raises(ConfigurationError, match="4-dimensional vectors of 'mini', got 3"):
        loaded.apply(np.ones(3))
    with pytest.raises(ConfigurationError, match="no such file"):
        QueryAdapter.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_text("not numpy")
    with pytest.raises(ConfigurationError, match="not an adapter file"):
        QueryAdapter.load(tmp_path / "bad.npz")
    with pytest.raises(ConfigurationError, match="at least 1"):
        AdapterSettings(epochs=0)
    with pytest.raises(ConfigurationError, match="No judged query"):
        train_query_adapter([], {}, "mini")


def test_folds_split_every_query_once():
    split = folds([str(i) for i in range(11)], 3)
    assert sorted(sum(split, [])) == sorted(str(i) for i in range(11)) and [len(f) for f in split] == [4, 4, 3]
    assert split == folds([str(i) for i in reversed(range(11))], 3)  # the order given does not matter
    with pytest.raises(ConfigurationError):
        folds(["a"], 1)


@pytest.mark.django_db(transaction=True)
def test_query_adapter_setting_applies_to_searches(make_product, settings, tmp_path):
    """QUERY_ADAPTER changes the query vector of semantic and hybrid searches; a file for another
    model is refused with a message that names both."""
    from semantic_catalog.backends import BackendImproperlyConfigured, get_encoder
    from semantic_catalog.search.service import query_vector

    make_product("Cordless drill driver")
    plain = query_vector("battery drill").copy()
    rotation = np.roll(np.eye(384, dtype=np.float32), 1, axis=1)  # moves coordinate i to i + 1
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "QUERY_ADAPTER": str(tmp_path / "a.npz")}
    QueryAdapter(rotation, get_encoder().name).save(tmp_path / "a.npz")
    assert np.allclose(query_vector("battery drill"), np.roll(plain, 1), atol=1e-6)

    QueryAdapter(rotation, "e5-large").save(tmp_path / "b.npz")
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "QUERY_ADAPTER": str(tmp_path / "b.npz")}
    with pytest.raises(BackendImproperlyConfigured, match="trained for model 'e5-large'"):
        query_vector("battery drill")


def judged_files(tmp_path):
    """The catalog as an export file, the jargon queries and their judgments (every title of the
    department relevant), for the commands that learn from judged queries."""
    records = tmp_path / "products.jsonl"
    lines = []
    for department, titles in CATALOG.items():
        for n, title in enumerate(titles):
            record = {"id": f"{department}-{n}", "index": "p", "text": title, "fields": {}, "content_hash": title}
            lines.append(json.dumps(record) + "\n")
    records.write_text("".join(lines))
    queries = tmp_path / "queries.csv"
    queries.write_text(
        "query_id,query\n" + "".join(f"{d}-{n},{t}\n" for d, ts in JARGON.items() for n, t in enumerate(ts))
    )
    judgments = tmp_path / "judgments.csv"
    judgments.write_text(
        "query_id,id,relevance\n"
        + "".join(f"{d}-{n},{d}-{k},2\n" for d, ts in JARGON.items() for n in range(len(ts)) for k in range(4))
    )
    return records, ["--queries", str(queries), "--judgments", str(judgments), "--backend", "torch", "--quiet"]


def test_cli_adapt_measures_by_cross_validation_and_writes_an_adapter(tmp_path, capsys):
    from semantic_catalog.cli import main as cli

    records, common = judged_files(tmp_path)
    out, report = tmp_path / "adapter.npz", tmp_path / "cv.json"
    args = ["adapt", str(records), *common, "--out", str(out), "--folds", "3", "--epochs", "60", "--l2", "1e-4"]
    assert cli([*args, "--output", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "cross-validated over 3 folds" in printed and "hybrid+adapter" in printed
    results = json.loads(report.read_text())["cross_validation"]["results"]
    assert set(results) == {"keyword", "semantic", "hybrid", "semantic+adapter", "hybrid+adapter"}
    assert all(row["queries"] == 15 for row in results.values())
    # Each department's jargon shares nothing across phrases, so held-out queries gain little; the
    # adapter trained on all of them must fit them.
    adapter = QueryAdapter.load(out)
    assert adapter.model == "all-MiniLM-L6-v2" and adapter.info["queries"] == 15

    assert cli(["evaluate", str(records), *common, "--adapter", str(out), "--output", str(report)]) == 0
    adapted = json.loads(report.read_text())["results"]
    assert (
        adapted["semantic"]["ndcg@10"] > results["semantic"]["ndcg@10"] + 0.2
        and adapted["keyword"]["ndcg@10"] == results["keyword"]["ndcg@10"]
    )
    capsys.readouterr()
    QueryAdapter(np.eye(384, dtype=np.float32), "e5-large").save(tmp_path / "other.npz")
    assert cli(["evaluate", str(records), *common, "--adapter", str(tmp_path / "other.npz")]) == 2
    assert "adapts queries of 'e5-large'" in capsys.readouterr().err
    assert cli(["evaluate", str(records), *common, "--adapter", str(tmp_path / "missing.npz")]) == 2
    assert "no such file" in capsys.readouterr().err
