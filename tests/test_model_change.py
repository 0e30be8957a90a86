"""Changing the model: a new collection is built while the old one keeps serving, then the switch."""

from __future__ import annotations

import json

import pytest

from semantic_catalog.collections import active_collection
from semantic_catalog.models import Collection
from semantic_catalog.registry import registry
from semantic_catalog.search import search
from tests.helpers import run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    from semantic_catalog.engine.encoders.onnx_export import export_onnx

    return export_onnx(None, tmp_path_factory.mktemp("onnx") / "minilm")


def test_new_model_builds_beside_the_old_which_keeps_serving(make_product, settings, onnx_dir, monkeypatch):
    old_config = settings.SEMANTIC_CATALOG["ENCODER"]
    drill = make_product("Cordless drill driver", description="battery drill")
    make_product("Cast iron skillet", category="pans")
    index = registry.get("products")
    old = active_collection(index)
    assert old.model == "all-MiniLM-L6-v2"

    # Switch ENCODER to another model; keep the old one under ENCODERS so its collection keeps working.
    new_config = {
        "BACKEND": "semantic_catalog.engine.encoders.onnx.OnnxEncoder",
        "OPTIONS": {"model_dir": str(onnx_dir), "name": "minilm-onnx"},
    }
    settings.SEMANTIC_CATALOG = {
        **settings.SEMANTIC_CATALOG,
        "ENCODER": new_config,
        "ENCODERS": {"all-MiniLM-L6-v2": old_config},
    }
    assert [r.id for r in search(index, "battery drill", mode="semantic", limit=1)] == [str(drill.pk)]
    status = json.loads(run("semantic_status", "--json"))[0]
    assert any("serving with 'all-MiniLM-L6-v2'" in w for w in status["warnings"])

    # A rebuild that dies before the switch leaves the old collection serving, the new one building...
    import semantic_catalog.sync.reconcile as indexing

    monkeypatch.setattr(indexing, "activate", lambda c: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        run("semantic_index", "--rebuild", "--no-progress")
    building = Collection.objects.get(index="products", state="building")
    assert building.model == "minilm-onnx" and active_collection(index).table == old.table
    # ...and writes meanwhile reach both collections, each with its own model.
    hose = make_product("Garden hose 30 m", category="hoses", store="b")
    from semantic_catalog.backends import get_store

    assert str(hose.pk) in get_store().content_hashes(old.table)
    assert str(hose.pk) in get_store().content_hashes(building.table)

    monkeypatch.undo()
    run("semantic_index", "--rebuild", "--no-progress")
    new = active_collection(index)
    assert new.model == "minilm-onnx" and get_store().count(new.table) == 3
    assert Collection.objects.get(table=old.table).state == "retired"
    assert [r.id for r in search(index, "garden hose", mode="semantic", limit=1)] == [str(hose.pk)]

    # Without the old model configured, its collection is reported, not silently mixed with new vectors.
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENCODERS": {}}
    assert [r.id for r in search(index, "garden hose", mode="semantic", limit=1)] == [str(hose.pk)]
