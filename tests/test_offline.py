"""The offline path: export -> `semantic-catalog embed` (resumable) -> validated import, by command and HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError

from semantic_catalog.backends import get_store
from semantic_catalog.cli import main as cli
from semantic_catalog.collections import active_collection
from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.errors import BadFile
from semantic_catalog.engine.offline.embedding import embed_file
from semantic_catalog.engine.offline.records import read_records
from semantic_catalog.models import Collection
from semantic_catalog.registry import registry
from semantic_catalog.search import search
from tests.helpers import run, write_vectors

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalog(make_product, settings):
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENQUEUE_DRAIN": False}  # the server embeds nothing
    products = [
        make_product("Cordless drill driver", description="battery drill"),
        make_product("Cast iron skillet", category="pans", description="searing pan"),
        make_product("Garden hose 30 m", category="hoses", store="b"),
        make_product("Leaf blower", category="hoses", store="b", description="battery powered"),
    ]
    make_product("Old stock", active=False)
    return products


def export(tmp_path: Path, fmt: str = "jsonl") -> Path:
    out = run("semantic_export", "--index", "products", "--format", fmt, "--output-dir", str(tmp_path))
    return Path(out.split("-> ")[1].strip())


def test_export_embed_import_round_trip(catalog, tmp_path, counting):
    path = export(tmp_path)
    records = list(read_records(path))
    assert len(records) == 4 and {"id", "index", "text", "fields", "content_hash"} <= set(records[0])
    assert records[0]["fields"]["store"] == catalog[0].store_id

    out = tmp_path / "vectors"
    assert cli(["embed", str(path), "--out", str(out), "--batch-size", "2", "--quiet"]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 4 and set(table.column("model").to_pylist()) == {"all-MiniLM-L6-v2"}
    assert cli(["embed", str(path), "--out", str(out), "--quiet"]) == 0  # resume: nothing left to do
    assert pq.read_table(out).num_rows == 4

    report = json.loads(run("semantic_import", str(out), "--index", "products", "--dry-run", "--json"))
    assert (report["new"], report["invalid"], report["applied"]) == (4, 0, False)
    assert active_collection(registry.get("products")) is None  # the dry run built nothing

    counting.reset()
    out_text = run("semantic_import", str(out), "--index", "products")
    assert "4 new" in out_text and counting.texts_encoded == 0
    index = registry.get("products")
    assert [r.id for r in search(index, "battery powered drill", mode="semantic", limit=1)] == [str(catalog[0].pk)]
    again = json.loads(run("semantic_import", str(out), "--index", "products", "--json"))
    assert (again["unchanged"], again["new"]) == (4, 0)


def test_import_reports_stale_unknown_and_rejects_invalid(catalog, tmp_path):
    path = export(tmp_path, "parquet")
    out = tmp_path / "vectors"
    cli(["embed", str(path), "--out", str(out), "--quiet"])
    table = pq.read_table(out)
    catalog[1].description = "now enamelled"
    catalog[1].save()  # stale: text changed after the export
    catalog[2].delete()  # unknown
    bad = sorted(table.to_pylist(), key=lambda row: int(row["id"]))  # catalog order (parts are by text length)
    bad.append({**bad[0]})  # duplicate id
    nan_row = {**bad[3], "id": str(catalog[3].pk)}
    nan_row["vector"] = [float("nan")] * 384
    bad[3] = nan_row
    broken = tmp_path / "broken.parquet"
    pq.write_table(pa.Table.from_pylist(bad, schema=table.schema), broken)

    with pytest.raises(CommandError, match="2 invalid records; nothing was imported"):
        run("semantic_import", str(broken), "--index", "products")
    assert not get_store().has_collection("anything") and active_collection(registry.get("products")) is None

    report = json.loads(run("semantic_import", str(broken), "--index", "products", "--skip-invalid", "--json"))
    assert (report["new"], report["stale"], report["unknown"], report["invalid"]) == (1, 1, 1, 2)
    assert any("NaN" in e for e in report["errors"]) and any("duplicate" in e for e in report["errors"])
    assert any("stale" in e for e in report["errors"]) and any("unknown id" in e for e in report["errors"])


def test_import_rejects_wrong_dimension_and_other_index(catalog, tmp_path):
    path = export(tmp_path)
    wrong = write_vectors(path, tmp_path / "wrong.parquet", "all-MiniLM-L6-v2", [0.1] * 8)
    with pytest.raises(CommandError, match="has dimension 384"):
        run("semantic_import", str(wrong), "--index", "products")
    with pytest.raises(CommandError, match="Unknown index"):
        run("semantic_import", str(wrong), "--index", "nope")
    not_vectors = tmp_path / "not-vectors.parquet"
    pq.write_table(pa.table({"id": ["1"], "text": ["x"]}), not_vectors)
    with pytest.raises(CommandError, match="missing columns"):
        run("semantic_import", str(not_vectors), "--index", "products")


def test_vectors_of_another_model_go_to_that_models_collection(catalog, tmp_path, settings):
    run("semantic_index", "--no-progress")
    index = registry.get("products")
    active = active_collection(index)
    path = export(tmp_path)
    other = write_vectors(path, tmp_path / "other.parquet", "other-model", [384**-0.5] * 384)
    with pytest.raises(CommandError, match="'other-model', which this server does not have"):
        run("semantic_import", str(other), "--index", "products", "--dry-run")
    evil = write_vectors(path, tmp_path / "evil.parquet", "evil/../model", [0.5, 0.5, 0.5])
    with pytest.raises(CommandError, match="which this server does not have"):
        run("semantic_import", str(evil), "--index", "products")
    assert {c.model for c in Collection.objects.all()} == {"all-MiniLM-L6-v2"}  # nothing was created
    other_encoder = {"BACKEND": "tests.encoders.CountingEncoder", "OPTIONS": {"name": "other-model"}}
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENCODERS": {"other-model": other_encoder}}
    report = json.loads(run("semantic_import", str(other), "--index", "products", "--json"))
    assert report["applied"] and not report["activated"] and report["collection"] != active.table
    assert active_collection(index).table == active.table  # the old model keeps serving
    status = json.loads(run("semantic_status", "--json"))[0]
    states = {(c["model"], c["state"]) for c in status["collections"]}
    assert states == {("all-MiniLM-L6-v2", "active"), ("other-model", "building")}


class OutOfMemoryOnBigBatches(Encoder):
    """Stands in for a GPU that runs out of memory above 3 texts per call (no GPU here)."""

    name = "oom-test"
    dimension = 3
    calls: list[int] = []

    def _encode(self, texts):
        self.calls.append(len(texts))
        if len(texts) > 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return np.ones((len(texts), 3), dtype=np.float32)


def test_embed_halves_the_batch_on_out_of_memory_and_resumes(tmp_path):
    export_file = tmp_path / "in.jsonl"
    export_file.write_text(
        "".join(
            json.dumps({"id": str(i), "index": "x", "text": f"t{i}", "fields": {}, "content_hash": f"h{i}"}) + "\n"
            for i in range(20)
        )
    )
    encoder = OutOfMemoryOnBigBatches()
    report = embed_file(export_file, tmp_path / "v", encoder, batch_size=16)
    assert report.embedded == 20 and report.batch_size == 2 and max(c for c in encoder.calls[-5:]) <= 3
    assert pq.read_table(tmp_path / "v").num_rows == 20
    parts = sorted((tmp_path / "v").glob("part-*.parquet"))
    # one part per batch (16 asked for, split on out-of-memory, then 2 and 2): a crash loses one batch
    assert [pq.read_table(p).num_rows for p in parts] == [16, 2, 2]
    parts[-1].unlink()  # as if the run had died while writing the last batch
    again = embed_file(export_file, tmp_path / "v", encoder, batch_size=2)
    assert (again.skipped, again.embedded) == (18, 2)


class Ones(Encoder):
    """A stand-in model for tests about reading the input, not about vectors."""

    name = "ones"
    dimension = 3

    def _encode(self, texts):
        return np.ones((len(texts), 3), dtype=np.float32)


def write_export(path: Path, count: int, broken_line: int | None = None) -> Path:
    """A JSONL export of ``count`` records; the one on ``broken_line`` (1-based) has no "text"."""
    records = [
        {"id": str(i), "index": "x", "text": f"t{i}", "fields": {}, "content_hash": f"h{i}"} for i in range(count)
    ]
    if broken_line is not None:
        del records[broken_line - 1]["text"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


class ByWordCount(Encoder):
    """Measures a text in words (as a tokenizer would count tokens) and records the batches it is given."""

    name = "by-words"
    dimension = 3

    def __init__(self):
        self.batches: list[list[str]] = []

    def text_lengths(self, texts):
        return [len(t.split()) for t in texts]

    def _encode(self, texts):
        self.batches.append(list(texts))
        return np.ones((len(texts), 3), dtype=np.float32)


def test_embed_batches_texts_of_like_length_by_the_encoder_s_measure(tmp_path):
    # characters and words disagree: long single words, short many-word texts
    texts = [("x" * (40 - n)) if n % 2 else " ".join(["a"] * n) for n in range(1, 33)]
    export_file = tmp_path / "in.jsonl"
    export_file.write_text(
        "".join(
            json.dumps({"id": str(i), "index": "x", "text": t, "fields": {}, "content_hash": f"h{i}"}) + "\n"
            for i, t in enumerate(texts)
        )
    )
    encoder = ByWordCount()
    report = embed_file(export_file, tmp_path / "v", encoder, batch_size=4, window=4)  # windows of 16 texts
    assert report.embedded == 32 and report.parts == 8
    for batch in encoder.batches:
        words = [len(t.split()) for t in batch]
        assert words == sorted(words)
    # each window is cut into batches in word order: a batch's longest text is no longer than the next's shortest
    words = [[len(t.split()) for t in batch] for batch in encoder.batches]
    for window in (words[:4], words[4:]):
        assert all(max(a) <= min(b) for a, b in zip(window, window[1:]))
    table = pq.read_table(tmp_path / "v")
    assert sorted(table.column("id").to_pylist(), key=int) == [str(i) for i in range(32)]


def test_a_part_that_cannot_be_written_stops_the_job_and_a_rerun_resumes(tmp_path, monkeypatch):
    from semantic_catalog.engine.offline import embedding

    export_file = write_export(tmp_path / "in.jsonl", 10)
    real_write = embedding._write_part

    def fail_third(out, number, records, dimension):
        if number == 2:
            raise OSError("No space left on device")
        real_write(out, number, records, dimension)

    monkeypatch.setattr(embedding, "_write_part", fail_third)
    with pytest.raises(OSError, match="No space left"):
        embed_file(export_file, tmp_path / "v", Ones(), batch_size=2)
    parts = sorted(p.name for p in (tmp_path / "v").iterdir())
    # the parts before the failure are on disk, none after it was handed over, nothing half-written stays
    assert parts == ["part-000000.parquet", "part-000001.parquet"]
    monkeypatch.setattr(embedding, "_write_part", real_write)
    again = embed_file(export_file, tmp_path / "v", Ones(), batch_size=2)
    assert (again.skipped, again.embedded) == (4, 6)
    assert pq.read_table(tmp_path / "v").num_rows == 10


def test_embed_reads_the_input_once_and_counts_it_at_most_once(tmp_path, monkeypatch, capsys):
    export_file = write_export(tmp_path / "in.jsonl", 5)
    opened: list[str] = []
    real_open = Path.open

    def watched_open(self, *args, **kwargs):
        if self == export_file:
            opened.append(args[0] if args else kwargs.get("mode", "r"))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", watched_open)
    report = embed_file(export_file, tmp_path / "a", Ones(), batch_size=2)
    assert (report.total, report.embedded, opened) == (5, 5, ["r"])  # one pass: it reads, and counts as it reads
    opened.clear()
    assert cli(["embed", str(export_file), "--out", str(tmp_path / "b"), "--batch-size", "2"]) == 0
    assert opened == ["rb", "r"]  # one counting pass (for the progress bar's total), one reading pass
    captured = capsys.readouterr()
    assert "5/5" in captured.err and "5 embedded, 0 already done, 5 in the input" in captured.out
    opened.clear()
    assert cli(["embed", str(export_file), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert opened == ["r"]  # no bar, no count
    assert "0 embedded, 5 already done, 5 in the input" in capsys.readouterr().out


def test_a_malformed_record_fails_on_ray_as_it_does_locally(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray Data is not installed (the dev extra installs it)")
    from semantic_catalog.engine.offline.ray_embed import embed_with_ray

    export_file = write_export(tmp_path / "in.jsonl", 6, broken_line=5)
    with pytest.raises(BadFile, match=r"in\.jsonl line 5: missing text\.") as local:
        embed_file(export_file, tmp_path / "a", Ones())
    # chunks of 2: Ray has started and holds the first records when line 5 is read
    with pytest.raises(BadFile) as on_ray:
        embed_with_ray(export_file, tmp_path / "b", Ones, Ones.name, chunk_rows=2)
    assert str(on_ray.value) == str(local.value)
    assert not ray.is_initialized() and not list((tmp_path / "b").glob("*.parquet"))  # shut down, nothing written


def test_http_export_and_import_need_staff_and_validate(catalog, client, tmp_path):
    assert client.get("/api/semantic/products/export").status_code in (401, 403)
    User.objects.create_superuser("admin", "a@example.com", "pw")
    client.login(username="admin", password="pw")
    response = client.get("/api/semantic/products/export", {"file_format": "jsonl", "limit": 2})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert response.status_code == 200 and len(lines) == 2 and json.loads(lines[0])["index"] == "products"
    assert client.get("/api/semantic/products/export", {"since": "yesterday"}).status_code == 400
    parquet = client.get("/api/semantic/products/export", {"file_format": "parquet"})
    export_path = tmp_path / "export.parquet"
    export_path.write_bytes(b"".join(parquet.streaming_content))
    cli(["embed", str(export_path), "--out", str(tmp_path / "v"), "--quiet"])
    body = (tmp_path / "v" / "part-000000.parquet").read_bytes()
    dry = client.post(
        "/api/semantic/products/import?dry_run=1", body, content_type="application/vnd.apache.parquet"
    ).json()
    assert dry["new"] == 4 and not dry["applied"]
    done = client.post("/api/semantic/products/import", body, content_type="application/vnd.apache.parquet").json()
    assert done["applied"] and done["new"] == 4
    bad = client.post("/api/semantic/products/import", b"not parquet", content_type="application/vnd.apache.parquet")
    assert bad.status_code == 400 and "not a Parquet file" in bad.json()["detail"]


def test_export_since_takes_only_changed_rows(catalog, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from shop.models import Product

    Product.objects.update(updated_at=timezone.now() - timedelta(days=2))
    catalog[2].name = "Garden hose 50 m"
    catalog[2].save()
    since = (timezone.now() - timedelta(days=1)).isoformat()
    out = run("semantic_export", "--index", "products", "--since", since, "--output-dir", str(tmp_path))
    path = Path(out.split("-> ")[1].strip())
    assert [r["id"] for r in read_records(path)] == [str(catalog[2].pk)]
    with pytest.raises(CommandError, match="ISO date-time"):
        run("semantic_export", "--since", "last tuesday", "--output-dir", str(tmp_path))


def test_cli_pull_and_push_over_real_http_with_a_token(catalog, live_server, tmp_path, capsys):
    from rest_framework.authtoken.models import Token

    admin = User.objects.create_superuser("admin", "a@example.com", "pw")
    token = Token.objects.create(user=admin).key
    export_path = tmp_path / "pulled.parquet"
    assert cli(["pull", live_server.url, "--index", "products", "--out", str(export_path), "--token", token]) == 0
    assert len(list(read_records(export_path))) == 4
    labels = tmp_path / "pulled.labels.jsonl"
    assert not labels.exists()  # no labelled pairs yet
    from semantic_catalog.engine.crossstore.labels import read_label_file
    from semantic_catalog.models import MatchLabel

    a, b = sorted(str(p.pk) for p in catalog[:2])
    MatchLabel.objects.create(index="products", left=a, right=b, label=True, source="api")
    assert cli(["pull", live_server.url, "--index", "products", "--out", str(export_path), "--token", token]) == 0
    assert [(p.left, p.right, p.label) for p in read_label_file(labels)] == [(a, b, True)]
    MatchLabel.objects.all().delete()
    assert cli(["pull", live_server.url, "--index", "products", "--out", str(export_path), "--token", token]) == 0
    assert not labels.exists()  # a stale labels file does not outlive the labels
    cli(["embed", str(export_path), "--out", str(tmp_path / "v"), "--quiet"])
    capsys.readouterr()
    assert cli(["push", live_server.url, "--index", "products", str(tmp_path / "v"), "--token", token]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 4
    index = registry.get("products")
    assert [r.id for r in search(index, "garden hose", mode="keyword")] == [str(catalog[2].pk)]
    assert cli(["pull", live_server.url, "--index", "products", "--out", str(export_path), "--token", "wrong"]) == 2
    assert "Invalid token" in capsys.readouterr().err
    # a page that is not the API's (here Django's 404 page for a wrong site URL) is one line, not the HTML
    wrong_site = f"{live_server.url}/elsewhere"
    assert cli(["push", wrong_site, "--index", "products", str(tmp_path / "v"), "--token", token]) == 2
    err = capsys.readouterr().err
    assert "404 Not Found" in err and len(err.strip().splitlines()) == 1 and "<" not in err


def test_embed_defaults_to_the_onnx_export_on_cpu(tmp_path, onnx_cache, capsys):
    from semantic_catalog.engine.encoders import SentenceTransformerEncoder

    texts = ["Cordless drill driver 18V", "Garden hose 30 m", "Cast iron skillet 12 in.", "LED bulb 60W warm white"]
    export_file = tmp_path / "in.jsonl"
    export_file.write_text(
        "".join(
            json.dumps({"id": str(i), "index": "x", "text": t, "fields": {}, "content_hash": str(i)}) + "\n"
            for i, t in enumerate(texts)
        )
    )
    assert cli(["embed", str(export_file), "--out", str(tmp_path / "a"), "--device", "cpu", "--quiet"]) == 0
    assert "SentenceTransformerEncoder, onnx" in capsys.readouterr().out
    exported = next(onnx_cache.glob("semantic-catalog/onnx/*/model.int8.onnx"))
    table = pq.read_table(tmp_path / "a")
    torch_vectors = SentenceTransformerEncoder(device="cpu", backend="torch").encode(texts)
    assert np.min(np.sum(vectors_by_id(tmp_path / "a") * torch_vectors, axis=1)) > 0.999
    cli(["embed", str(export_file), "--out", str(tmp_path / "q"), "--backend", "onnx-int8", "--quiet"])
    assert np.min(np.sum(vectors_by_id(tmp_path / "q") * torch_vectors, axis=1)) > 0.95
    assert set(table.column("model").to_pylist()) == {"all-MiniLM-L6-v2"}  # imports into the same collection
    mtime = exported.stat().st_mtime
    cli(["embed", str(export_file), "--out", str(tmp_path / "b"), "--quiet"])
    assert exported.stat().st_mtime == mtime  # the export is reused, not redone
    fresh = ["--cache-dir", str(tmp_path / "fresh-cache"), "--quiet"]
    capsys.readouterr()
    cli(["embed", str(export_file), "--out", str(tmp_path / "d"), *fresh])
    assert "exporting all-MiniLM-L6-v2 to ONNX in" in capsys.readouterr().err  # said when the export is made
    assert len(list((tmp_path / "fresh-cache").glob("*/model.onnx"))) == 1
    cli(["embed", str(export_file), "--out", str(tmp_path / "e"), *fresh])
    assert "exporting" not in capsys.readouterr().err  # and not again
    cli(["embed", str(export_file), "--out", str(tmp_path / "c"), "--backend", "torch", "--quiet"])
    assert np.allclose(vectors_by_id(tmp_path / "c"), torch_vectors, atol=1e-5)


def vectors_by_id(path: Path) -> np.ndarray:
    table = pq.read_table(path)
    order = np.argsort([int(i) for i in table.column("id").to_pylist()])
    return np.stack(table.column("vector").to_pylist())[order]


def test_embed_on_ray_gives_the_same_output_and_resumes(tmp_path):
    pytest.importorskip("ray", reason="Ray Data is not installed (the dev extra installs it)")
    texts = [f"Product number {i} with a {w} finish" for i, w in enumerate(["matte", "gloss", "satin"] * 4)]
    export_file = tmp_path / "in.jsonl"
    export_file.write_text(
        "".join(
            json.dumps({"id": str(i), "index": "x", "text": t, "fields": {"n": i}, "content_hash": f"h{i}"}) + "\n"
            for i, t in enumerate(texts)
        )
    )
    local = ["embed", str(export_file), "--backend", "torch", "--quiet", "--batch-size", "4"]
    assert cli([*local, "--out", str(tmp_path / "plain")]) == 0
    assert cli([*local, "--out", str(tmp_path / "ray"), "--ray"]) == 0
    plain, on_ray = pq.read_table(tmp_path / "plain"), pq.read_table(tmp_path / "ray")
    assert (
        on_ray.schema.names == plain.schema.names
        and on_ray.schema.field("vector").type == plain.schema.field("vector").type
    )
    assert np.allclose(vectors_by_id(tmp_path / "ray"), vectors_by_id(tmp_path / "plain"), atol=1e-5)
    assert cli([*local, "--out", str(tmp_path / "ray"), "--ray"]) == 0  # resume: nothing left
    assert pq.read_table(tmp_path / "ray").num_rows == len(texts)
