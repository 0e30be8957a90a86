"""Keyword search per language: the analyser options, LanceDB's full-text index built with them, the
terms mirror following them, and a changed analyser rebuilding the keyword index only."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_catalog.engine.documents import Document
from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.search.pipeline import QueryOptions, search
from semantic_catalog.engine.stores.analyzer import STEMMED, TextAnalyzer
from semantic_catalog.engine.stores.lancedb import LanceDBStore
from semantic_catalog.engine.stores.terms import terms as english_terms

CZECH = [
    Document("1", "Akumulátorová vrtačka Makita 18V"),
    Document("2", "Příklepová vrtačka Bosch s kufrem"),
    Document("3", "Šroubovák a bity, sada 32 kusů"),
]


def vectors(count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(count, 8)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def store_with(tmp_path, analyzer: TextAnalyzer | None, documents=CZECH) -> LanceDBStore:
    store = LanceDBStore(tmp_path / "lance")
    if analyzer is not None:
        store.set_analyzer("c", analyzer)
    store.create_collection("c", 8, [])
    store.upsert("c", documents, vectors(len(documents)))
    return store


def keyword_ids(store: LanceDBStore, query: str) -> list[str]:
    return sorted(h.id for h in search(store, "c", query, None, QueryOptions("keyword", 10)))


def fts_details(store: LanceDBStore) -> dict:
    return next(i.index_details for i in store._table("c").list_indices() if i.index_type == "FTS")


def test_languages_resolve_by_name_or_code_and_bad_ones_say_what_to_use():
    assert TextAnalyzer("cs").language == "czech" and TextAnalyzer("Indonesian").language == "indonesian"
    with pytest.raises(ConfigurationError, match="Unknown keyword language 'klingon'.*czech"):
        TextAnalyzer("klingon")
    with pytest.raises(ConfigurationError, match="LanceDB cannot stem Czech"):
        TextAnalyzer("czech", stem=True)
    with pytest.raises(ConfigurationError, match="Unknown keyword option"):
        TextAnalyzer.from_options({"language": "cs", "stemmer": "x"})
    with pytest.raises(ConfigurationError, match="ngram"):
        TextAnalyzer.from_options({"ngram": [4, 2]})
    with pytest.raises(ConfigurationError, match="exclude each other"):
        TextAnalyzer.from_options({"ngram": [3, 3], "stem": True})


def test_the_default_is_lancedbs_default_and_the_old_english_mirror(tmp_path):
    store = store_with(tmp_path, None, [Document("1", "The drills are drilling")])
    assert not store.set_analyzer("c", TextAnalyzer())  # an existing collection is not rebuilt
    analyzer = TextAnalyzer()
    text = "Cordless drills, the DRILLING kind: vrtačka 18V"
    assert analyzer.terms(text) == english_terms(text) == {"cordless", "drill", "kind", "vrtacka", "18v"}


@pytest.mark.parametrize("language", STEMMED)
def test_lancedb_builds_every_stemmed_language(tmp_path, language):
    store = store_with(tmp_path, TextAnalyzer(language), [Document("1", "text")])
    assert fts_details(store)["language"] == language.title() and fts_details(store)["stem"]


def test_czech_folds_accents_drops_its_stop_words_and_mirrors_the_index(tmp_path):
    store = store_with(tmp_path, TextAnalyzer("cs"))
    assert keyword_ids(store, "vrtacka") == ["1", "2"]  # accents fold both ways
    assert keyword_ids(store, "vrtačka makita") == ["1", "2"]
    assert keyword_ids(store, "sroubovak") == ["3"]
    assert keyword_ids(store, "a") == [] and keyword_ids(store, "s") == []  # Czech stop words
    analyzer = TextAnalyzer("cs")
    assert analyzer.terms("Příklepová vrtačka Bosch s kufrem") == {"priklepova", "vrtacka", "bosch", "kufrem"}
    hits = search(store, "c", "vrtacka makita", None, QueryOptions("keyword", 10))
    assert {h.id: h.coverage for h in hits} == {"1": 1.0, "2": 0.5}  # coverage follows the Czech analyser


def test_indonesian_and_ngrams_for_inflected_forms(tmp_path):
    recipes = [Document("1", "Ayam goreng bumbu kuning"), Document("2", "Menggoreng tahu yang renyah")]
    plain = store_with(tmp_path / "plain", TextAnalyzer("id"), recipes)
    assert keyword_ids(plain, "goreng") == ["1"] and keyword_ids(plain, "yang") == []  # 'yang' is a stop word
    grams = store_with(tmp_path / "grams", TextAnalyzer.from_options({"language": "id", "ngram": [3, 3]}), recipes)
    assert keyword_ids(grams, "goreng") == ["1", "2"]  # finds 'menggoreng' too
    assert fts_details(grams)["base_tokenizer"] == "ngram"
    hits = search(grams, "c", "goreng", None, QueryOptions("keyword", 10))
    assert all(h.coverage == 1.0 for h in hits)


def test_a_changed_analyser_rebuilds_the_keyword_index_only(tmp_path):
    store = store_with(tmp_path, None)
    before = store.fetch("c", ["1", "2", "3"], with_vectors=True)
    assert keyword_ids(store, "vrtacka") == ["1", "2"]
    assert store.set_analyzer("c", TextAnalyzer.from_options({"language": "cs", "ascii_folding": False}))
    assert keyword_ids(store, "vrtacka") == [] and keyword_ids(store, "vrtačka") == ["1", "2"]
    assert fts_details(store)["ascii_folding"] is False and fts_details(store)["custom_stop_words"]
    after = store.fetch("c", ["1", "2", "3"], with_vectors=True)
    assert all(np.array_equal(before[i].vector, after[i].vector) for i in before)  # rows and vectors stay
    assert not store.set_analyzer("c", TextAnalyzer.from_options({"language": "cs", "ascii_folding": False}))
    reopened = LanceDBStore(tmp_path / "lance")  # another process: the built index is read, not rebuilt
    assert not reopened.set_analyzer("c", TextAnalyzer.from_options({"language": "cs", "ascii_folding": False}))


def test_options_lancedb_refuses_change_nothing(tmp_path, monkeypatch):
    store = store_with(tmp_path, TextAnalyzer("cs"))
    bad = TextAnalyzer("english")
    monkeypatch.setattr(TextAnalyzer, "fts_options", lambda self: {"language": "Czech", "stem": True})
    with pytest.raises(ConfigurationError, match="LanceDB refuses"):
        store.set_analyzer("c", bad)
    monkeypatch.undo()
    assert keyword_ids(store, "vrtacka") == ["1", "2"] and store.analyzer("c") == TextAnalyzer("cs")
