"""``naming="keywords"``: embedding-first clusters named by their most distinctive words (c-TF-IDF), with no LLM
call at all: no client is made, a closed port or a live server sees nothing, and the run folder, the result
file and a resume work as for an LLM-named run."""

from __future__ import annotations

import math
import re
import socket

import numpy as np
import pytest

from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.segmentation import (
    Item,
    SegmentationConfig,
    read_result,
    run_segmentation,
    validate_result,
    write_result,
)
from semantic_catalog.engine.segmentation import pipeline as pipeline_module
from semantic_catalog.engine.segmentation.keywords import c_tf_idf, cluster_names, distinctive_words, tokenize
from tests.llm_server import llm_server_fixture  # noqa: F401 (the llm_server fixture)
from tests.test_segmentation_embedding_first import PER_CLUSTER, dataset

CHICKEN = [
    "fried chicken with garlic and chili",
    "grilled chicken wings with honey",
    "chicken curry with coconut milk",
    "roast chicken with lemon and thyme",
    "chicken noodle soup",
    "spicy chicken satay skewers",
    "crispy chicken thighs with garlic",
    "chicken stir fry with vegetables",
    "butter chicken with rice",
    "chicken breast baked with herbs",
]
CAKE = [
    "chocolate cake with cream frosting",
    "vanilla sponge cake with strawberries",
    "chocolate brownies with walnuts",
    "lemon cake with sugar glaze",
    "carrot cake with cream cheese frosting",
    "dark chocolate mousse cake",
    "cheesecake with berry sauce",
    "chocolate chip cookies",
    "banana cake with cinnamon sugar",
    "red velvet cake with vanilla frosting",
]


def closed_port_url() -> str:
    """An address nothing listens on: a port the OS handed out and that was closed again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def keywords_config(base_url: str, **overrides) -> SegmentationConfig:
    values = {"model": "none", "base_url": base_url, "mode": "embedding_first", "naming": "keywords", "segments": 2}
    values.update(overrides)
    return SegmentationConfig(**values)


def test_tokenizer_keeps_words_of_three_letters_in_any_script():
    text = "Ayam GORENG 250ml 12 500gram sdm dan Émincé_de crème brûlée курица"
    assert tokenize(text) == ["ayam", "goreng", "500gram", "sdm", "émincé", "crème", "brûlée", "курица"]
    assert tokenize("the chicken", stop_words=()) == ["the", "chicken"]


def test_c_tf_idf_is_bertopic_formula():
    texts = [["apel apel jeruk"], ["jeruk mangga"]]
    vocabulary, scores = c_tf_idf(texts, stop_words=())
    assert vocabulary == ["apel", "jeruk", "mangga"]
    average = 5 / 2  # words per cluster
    frequency = {"apel": 2, "jeruk": 2, "mangga": 1}  # over all clusters
    expected = np.array(
        [
            [2 / 3 * math.log(1 + average / frequency["apel"]), 1 / 3 * math.log(1 + average / 2), 0.0],
            [0.0, 1 / 2 * math.log(1 + average / 2), 1 / 2 * math.log(1 + average / frequency["mangga"])],
        ]
    )
    np.testing.assert_allclose(scores, expected)


def test_distinctive_words_of_two_obvious_topics():
    shared = "resep mudah garam"  # in every text of both topics: never distinctive
    ayam = [f"ayam goreng bawang {shared} {extra}" for extra in ("kunyit", "serai", "kecap", "cabai")]
    tahu = [f"tahu tempe kecap {shared} {extra}" for extra in ("isi", "bacem", "santan", "cabai")]
    words = distinctive_words([ayam, tahu], top=8)
    assert set(words[0][:3]) == {"ayam", "goreng", "bawang"}
    assert set(words[1][:2]) == {"tahu", "tempe"}
    for ranked in words:  # in every text of both topics: weighed down below each topic's own words
        assert min(ranked.index(word) for word in shared.split()) >= 3
    (name_ayam, definition_ayam), (name_tahu, _) = cluster_names([ayam, tahu])
    assert name_ayam == " · ".join(words[0][:3]) and len(name_ayam.split(" · ")) == 3
    assert "not by an LLM" in definition_ayam and ", ".join(words[0][:8]) in definition_ayam
    assert name_tahu.startswith(" · ".join(sorted(["tahu", "tempe"])))


def test_clusters_with_the_same_top_words_get_unique_names():
    same = ["ayam goreng bawang kunyit serai", "ayam goreng bawang kunyit"]
    texts = [same, same, ["ayam goreng"], ["12 34 x"]]
    words = distinctive_words(texts)
    assert words[0] == words[1] and len(words[0]) == 5
    names = [name for name, _ in cluster_names(texts)]
    assert names[0] == " · ".join(words[0][:3])
    assert names[1] == " · ".join(words[0][:4])  # the next distinctive word tells it apart
    assert names[2] == "ayam · goreng"  # fewer than three words: named by those it has
    assert names[3] == "Cluster S_4"  # no word of three letters at all
    assert len(set(names)) == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"naming": "LLM"}, "naming 'LLM' is not 'llm' or 'keywords'"),
        ({"naming": None}, "naming None is not 'llm' or 'keywords'"),
        ({"naming": "keywords", "mode": "full"}, "naming 'keywords' needs mode 'embedding_first'"),
        ({"naming": "llm", "model": ""}, "model is empty"),
    ],
)
def test_bad_naming_is_refused(tmp_path, overrides, message):
    items, vectors = dataset()
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        run_segmentation(items, keywords_config(closed_port_url(), **overrides), storage_url=str(tmp_path / "logs"))
    assert not (tmp_path / "logs").exists()


def test_keywords_run_on_real_vectors_makes_no_request(tmp_path, monkeypatch):
    from tests.encoders import CountingEncoder

    def no_client(config):
        raise AssertionError("a keywords run must not make an LLM client")

    monkeypatch.setattr(pipeline_module, "OpenAIChatClient", no_client)
    texts = CHICKEN + CAKE
    items = [Item(f"r{i}", text) for i, text in enumerate(texts)]
    vectors = CountingEncoder(device="cpu").encode(texts)
    config = keywords_config(closed_port_url(), uncertain_margin=1.0)  # every item is "uncertain": none is asked
    seen = []
    result = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), vectors=vectors, progress=seen.append)

    assert len(result.segments) == 2 and validate_result(result, [i.id for i in items]) == []
    names = {s.id: s.name for s in result.segments}
    by_item = {a.item_id: names[a.segment] for a in result.refined}
    chicken = {by_item[f"r{i}"] for i in range(len(CHICKEN))}
    cake = {by_item[f"r{i}"] for i in range(len(CHICKEN), len(texts))}
    assert len(chicken) == 1 and len(cake) == 1 and chicken != cake
    assert "chicken" in next(iter(chicken)).split(" · ")
    assert {"cake", "chocolate"} & set(next(iter(cake)).split(" · "))
    assert all("not by an LLM" in s.definition for s in result.segments)
    assert result.config["naming"] == "keywords"
    assert set(result.usage) == {"cluster", "name", "refine"}
    assert all(u.calls == u.tokens_in == u.tokens_out == 0 for u in result.usage.values())
    assert [(p.stage, p.processed, p.total) for p in seen] == [("name", 2, 2)]
    assert not any("arbitrated" in p for p in result.problems)  # uncertain items keep their cluster by design

    run_dir = tmp_path / "logs" / result.run_id
    assert sorted(p.name for p in run_dir.iterdir()) == ["checksums.sha256"]  # no prompt archived, no call
    again = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), vectors=vectors, run_id=result.run_id)
    assert [(a.item_id, a.segment) for a in again.refined] == [(a.item_id, a.segment) for a in result.refined]
    loaded = read_result(write_result(result, str(tmp_path / "segmentation.json")))
    assert [s.name for s in loaded.segments] == list(names.values()) and loaded.config["naming"] == "keywords"


def test_a_live_server_is_never_asked(llm_server, tmp_path):
    items, vectors = dataset()
    config = keywords_config(llm_server.base_url, segments=3, uncertain_margin=0.3)
    result = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), vectors=vectors)
    assert llm_server.count == 0
    names = sorted(s.name.split(" · ")[0] for s in result.segments)
    assert names == ["ayam", "ikan", "tahu"]
    assert sorted(s.item_count for s in result.segments) == [PER_CLUSTER, PER_CLUSTER, PER_CLUSTER + 4]


def test_a_bogus_base_url_and_no_model_are_fine(tmp_path):
    items, vectors = dataset()
    config = keywords_config("not a url at all", model="", segments=3)
    result = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), vectors=vectors)
    assert len(result.segments) == 3 and result.usage["name"].calls == 0
