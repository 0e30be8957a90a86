"""Category links between the demo's two stores, against the intended mapping shipped with the fixture."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_catalog.engine.crossstore.category_links import link_categories
from semantic_catalog.engine.errors import InvalidQuery


def scored(demo, links):
    text = {n.id: n.text for n in demo["nodes"]}
    found = {(text[link.source], text[link.target]) for link in links}
    hits = len(found & demo["intended"])
    return hits / len(found), hits / len(demo["intended"])


def test_leaf_links_match_the_intended_mapping(demo):
    source, target = demo["leaves"]["1"], demo["leaves"]["2"]
    one = link_categories(source, target, demo["encoder"], demo["centroids"], mode="one_to_one")
    precision, recall = scored(demo, one)
    assert precision >= 0.95 and recall >= 0.9, (precision, recall)
    many = link_categories(source, target, demo["encoder"], demo["centroids"], mode="one_to_many")
    precision, recall = scored(demo, many)
    assert precision >= 0.9 and recall >= 0.95, (precision, recall)
    assert len({link.source for link in one}) == len(one) and len({link.target for link in one}) == len(one)
    assert all(link.product_score is not None for link in many)  # every demo leaf has products
    path_only = link_categories(source, target, demo["encoder"], demo["centroids"], mode="one_to_one", path_weight=1)
    assert scored(demo, path_only)[1] < recall  # the products' centroid adds links the names alone miss


def test_centroids_cover_ancestors_and_same_level_restricts(demo):
    nodes = demo["nodes"]
    tools = next(n for n in nodes if n.path == ("Tools",))
    drills = next(n for n in nodes if n.path == ("Tools", "Power Tools", "Drills", "Cordless Drills"))
    assert tools.id in demo["centroids"] and np.isclose(np.linalg.norm(demo["centroids"][tools.id]), 1.0)
    assert float(demo["centroids"][tools.id] @ demo["centroids"][drills.id]) > 0.5
    b_nodes = [n for n in nodes if n.shop == "2"]
    links = link_categories([drills], b_nodes, demo["encoder"], demo["centroids"], same_level=True, threshold=0)
    assert links and all(next(n for n in b_nodes if n.id == link.target).level == 4 for link in links)


def test_bad_arguments_are_clear_errors(demo):
    with pytest.raises(InvalidQuery, match="one_to_one"):
        link_categories(demo["leaves"]["1"], demo["leaves"]["2"], demo["encoder"], mode="many")
    with pytest.raises(InvalidQuery, match="path_weight"):
        link_categories(demo["leaves"]["1"], demo["leaves"]["2"], demo["encoder"], path_weight=2)
    assert link_categories([], demo["leaves"]["2"], demo["encoder"]) == []
