"""``mode="embedding_first"`` over real HTTP (tests/llm_server.py) and real log files: the vectors are clustered,
the LLM is asked only to name the clusters and to arbitrate the items near two centroids, the cache answers a
re-run, and bad input is refused before anything is written or asked."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from semantic_catalog.engine.errors import PromptTemplateError, SegmentationInputError
from semantic_catalog.engine.segmentation import (
    Item,
    SegmentationConfig,
    read_result,
    run_segmentation,
    validate_result,
    write_result,
)
from semantic_catalog.engine.segmentation.clustering import _numpy_kmeans, _numpy_silhouette
from semantic_catalog.engine.segmentation.prompts import BUNDLED, load_templates
from tests.llm_server import ScriptedLLMServer, llm_server_fixture  # noqa: F401 (the llm_server fixture)

WORDS = ["ayam", "tahu", "ikan"]
PER_CLUSTER = 30
BETWEEN = 4  # items halfway between the ayam and tahu centroids, whose text says tahu


def dataset(seed: int = 7) -> tuple[list[Item], np.ndarray]:
    """Three tight clusters in 16 dimensions (text word = cluster) plus BETWEEN ambiguous tahu items."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[:3] * 4.0
    items, rows = [], []
    for c, word in enumerate(WORDS):
        for i in range(PER_CLUSTER):
            items.append(Item(f"{word}-{i}", f"{word} resep nomor {i}"))
            rows.append(centres[c] + rng.normal(0, 0.3, 16))
    for i in range(BETWEEN):
        items.append(Item(f"between-{i}", f"tahu campur ayam {i}"))
        rows.append((centres[0] + centres[1]) / 2 + rng.normal(0, 0.01, 16))
    return items, np.array(rows)


def config_for(server: ScriptedLLMServer, **overrides) -> SegmentationConfig:
    values = {
        "model": "scripted",
        "base_url": server.base_url,
        "mode": "embedding_first",
        "segments": 3,
        "products_per_refinement": 3,
        "uncertain_margin": 0.3,  # the BETWEEN items have margins near 0.24, the others above 0.9
        "max_retries": 1,
        "concurrency": 2,
    }
    values.update(overrides)
    return SegmentationConfig(**values)


def segment_names(result) -> dict[str, str]:
    return {s.id: s.name for s in result.segments}


def test_clusters_named_and_only_uncertain_items_sent_to_the_llm(llm_server, tmp_path):
    items, vectors = dataset()
    result = run_segmentation(items, config_for(llm_server), storage_url=str(tmp_path / "logs"), vectors=vectors)

    names = segment_names(result)
    assert sorted(names.values()) == ["Ayam products", "Ikan products", "Tahu products"]
    by_item = {a.item_id: names[a.segment] for a in result.refined}
    for word in WORDS:
        assert {by_item[f"{word}-{i}"] for i in range(PER_CLUSTER)} == {f"{word.capitalize()} products"}
    # the ambiguous items were arbitrated by the LLM (their text starts with "tahu")
    assert {by_item[f"between-{i}"] for i in range(BETWEEN)} == {"Tahu products"}

    # calls: one naming call (3 clusters <= clusters_per_prompt), refine only for the BETWEEN uncertain items
    assert llm_server.stage_count("name") == 1
    assert llm_server.stage_count("refine") == -(-BETWEEN // 3)
    assert llm_server.stage_count("extract") == llm_server.stage_count("consolidate") == 0
    refined_lines = [r["messages"][0]["content"] for r in llm_server.requests if r["stage"] == "refine"]
    assert all("between-" not in line for line in refined_lines)  # ids never leave the run: P_<n> labels only
    assert sum(len(re.findall(r"^P_\d+ \(current S_\d+\)", p, re.M)) for p in refined_lines) == BETWEEN
    name_prompt = next(r["messages"][0]["content"] for r in llm_server.requests if r["stage"] == "name")
    assert re.findall(r"^Cluster (S_\d+) \((\d+) products\):$", name_prompt, re.M) == [
        ("S_1", "34"),  # the BETWEEN items sit with the first cluster until refined
        ("S_2", "30"),
        ("S_3", "30"),
    ]
    assert len(re.findall(r"^P_\d+: ", name_prompt, re.M)) == 3 * 10  # name_samples per cluster

    assert set(result.usage) == {"cluster", "name", "refine"}
    assert result.usage["name"].calls == 1 and result.usage["cluster"].calls == 0
    assert result.usage["refine"].calls == llm_server.stage_count("refine")
    assert sum(s.item_count for s in result.segments) == len(items)
    assert validate_result(result, [i.id for i in items]) == []
    confident = [a.confidence for a in result.refined if not a.item_id.startswith("between")]
    assert min(confident) > 0.5 and max(confident) <= 1.0
    assert len(result.first_pass) == len(items) and result.config["mode"] == "embedding_first"

    run_dir = tmp_path / "logs" / result.run_id
    assert len(list((run_dir / "name_clusters").glob("*.json"))) == 1
    assert (run_dir / "prompts" / "name_clusters_v1.txt").exists()
    assert not (run_dir / "segmentation").exists()
    assert "name_clusters/" in (run_dir / "checksums.sha256").read_text()
    path = write_result(result, str(tmp_path / "segmentation.json"))
    assert segment_names(read_result(path)) == names


def test_number_of_segments_chosen_by_silhouette(llm_server, tmp_path):
    items, vectors = dataset()
    config = config_for(llm_server, segments=None, min_segments=2, max_segments=6)
    result = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), vectors=vectors)
    assert len(result.segments) == 3
    assert sorted(segment_names(result).values()) == ["Ayam products", "Ikan products", "Tahu products"]


def test_rerun_is_answered_from_the_cache(llm_server, tmp_path):
    items, vectors = dataset()
    config = config_for(llm_server)
    first = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), vectors=vectors)
    asked = llm_server.count
    assert asked >= 2
    again = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), vectors=vectors)
    assert llm_server.count == asked  # no new request
    assert again.usage["name"].cached_calls == again.usage["name"].calls == 1
    assert [(a.item_id, a.segment) for a in again.refined] == [(a.item_id, a.segment) for a in first.refined]


def test_unnamed_cluster_falls_back_and_is_reported(llm_server, tmp_path):
    items, vectors = dataset()
    llm_server.fail_next("name", "malformed", "malformed")  # the first attempt and its one retry
    result = run_segmentation(items, config_for(llm_server), storage_url=str(tmp_path / "logs"), vectors=vectors)
    assert sorted(segment_names(result).values()) == ["Cluster S_1", "Cluster S_2", "Cluster S_3"]
    assert any("name_clusters batch 1: no name for S_1, S_2, S_3" in p for p in result.problems)
    assert validate_result(result, [i.id for i in items]) == []


@pytest.mark.parametrize(
    ("overrides", "vectors", "message"),
    [
        ({}, None, "needs the items' vectors"),
        ({}, np.ones((5, 4)), "expected (94, <dimension>)"),
        ({}, "not numbers", "not a numeric array"),
        ({}, "nan", "NaN or infinite"),
        ({}, "zero", "all zeros"),
        ({"segments": 95}, None, "more than items"),
        ({"segments": 1}, None, "at least 2"),
        ({"segments": None, "min_segments": 5, "max_segments": 3}, None, "makes no sense"),
        ({"segments": None, "min_segments": 1, "max_segments": 3}, None, "makes no sense"),
        ({"segments": None, "min_segments": 94, "max_segments": 99}, None, "needs more items"),
    ],
)
def test_bad_input_is_refused_before_anything_happens(llm_server, tmp_path, overrides, vectors, message):
    items, good = dataset()
    if vectors is None and overrides:
        vectors = good
    elif isinstance(vectors, str) and vectors == "nan":
        vectors = good.copy()
        vectors[3, 2] = np.nan
    elif isinstance(vectors, str) and vectors == "zero":
        vectors = good.copy()
        vectors[5] = 0.0
    config = config_for(llm_server, **overrides)
    with pytest.raises(SegmentationInputError, match=re.escape(message)):
        run_segmentation(items, config, storage_url=str(tmp_path / "logs"), vectors=vectors)
    assert llm_server.count == 0
    assert not (tmp_path / "logs").exists()


def test_too_few_distinct_vectors_for_the_segments(llm_server, tmp_path):
    items, _ = dataset()
    vectors = np.tile([[1.0, 0.0], [0.0, 1.0]], (len(items) // 2, 1))
    with pytest.raises(SegmentationInputError, match="only 2 distinct"):
        run_segmentation(items, config_for(llm_server), storage_url=str(tmp_path / "logs"), vectors=vectors)
    assert llm_server.count == 0


def test_a_full_mode_prompt_folder_needs_no_naming_template(tmp_path):
    folder = tmp_path / "prompts"
    shutil.copytree(BUNDLED, folder)
    (folder / "name_clusters_v1.txt").unlink()
    assert set(load_templates(folder)) == {
        "extract_taxonomy",
        "consolidate_taxonomy",
        "refine_assignments",
        "shared_retry",
    }
    with pytest.raises(PromptTemplateError, match="name_clusters_v1.txt is missing"):
        load_templates(folder, "embedding_first")
    assert Path(BUNDLED / "name_clusters_v1.txt").exists()


def test_numpy_kmeans_fallback_recovers_the_clusters():
    _, vectors = dataset()
    unit = vectors[: 3 * PER_CLUSTER] / np.linalg.norm(vectors[: 3 * PER_CLUSTER], axis=1, keepdims=True)
    labels = _numpy_kmeans(unit, 3, seed=0)
    groups = [set(labels[c * PER_CLUSTER : (c + 1) * PER_CLUSTER]) for c in range(3)]
    assert all(len(g) == 1 for g in groups) and len(set().union(*groups)) == 3


def test_numpy_silhouette_fallback_matches_scikit_learn():
    from sklearn.metrics import silhouette_score

    _, vectors = dataset()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.repeat([0, 1, 2], [PER_CLUSTER, PER_CLUSTER, PER_CLUSTER + BETWEEN])
    expected = silhouette_score(unit, labels, metric="cosine")
    assert _numpy_silhouette(unit, labels, seed=0) == pytest.approx(expected, abs=1e-9)


def test_clusters_given_the_same_name_are_reported(llm_server, tmp_path):
    items, vectors = dataset()
    items = [Item(i.id, i.text.replace("ikan", "ayam")) for i in items]  # the scripted LLM names both "Ayam"
    result = run_segmentation(items, config_for(llm_server), storage_url=str(tmp_path / "logs"), vectors=vectors)
    assert len(result.segments) == 3
    assert any("clusters share a name (Ayam products, Ayam products)" in p for p in result.problems)
