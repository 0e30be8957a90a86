"""A web server that never imports torch: queries are embedded by the ONNX export of the bundled model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    from semantic_catalog.engine.encoders.onnx_export import export_onnx

    return export_onnx(None, tmp_path_factory.mktemp("onnx") / "minilm")


def test_server_process_serves_search_without_torch(onnx_model, tmp_path):
    script = Path(__file__).parent / "scripts" / "torch_free_server.py"
    done = subprocess.run(
        [sys.executable, str(script), str(onnx_model), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "answers": {
            "semantic": ["Cordless drill driver"],
            "hybrid": ["Cast iron skillet"],
            "keyword": ["Garden hose 30 m"],
        },
        "torch_loaded": False,
        "sentence_transformers_loaded": False,
    }
