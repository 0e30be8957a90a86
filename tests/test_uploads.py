"""Imports stream the upload to disk: a vector file far above Django's 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE
goes through `semantic-catalog push` (a real HTTP server) and as a multipart form; MAX_UPLOAD_BYTES
refuses a larger one with a 413 JSON error that names the setting, and nothing changes."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User

from semantic_catalog.backends import get_encoder, get_store
from semantic_catalog.cli import main as cli
from semantic_catalog.models import Collection
from semantic_catalog.offline.export import export_records
from semantic_catalog.registry import registry

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 3000  # 3,000 MiniLM vectors: about 5 MB of Parquet (Django refuses bodies over 2.5 MB)


@pytest.fixture
def big_catalog(shop, settings):
    """3,000 products written in bulk (no sync: the vectors come from the upload)."""
    from shop.models import Product

    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "ENQUEUE_DRAIN": False}
    Product.objects.bulk_create(
        Product(name=f"Product {n}", price=Decimal("5.00"), category=shop["drills"], store=shop["a"])
        for n in range(ROWS)
    )
    return registry.get("products")


def vector_table(index, rows: int | None = None) -> tuple[pa.Table, np.ndarray]:
    """Vector rows of the real encoder's name and dimension for the index's rows (random unit vectors)."""
    encoder = get_encoder()
    records = list(export_records(index))[:rows]
    vectors = np.random.default_rng(7).normal(size=(len(records), encoder.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = pa.table(
        {
            "id": [r["id"] for r in records],
            "index": [r["index"] for r in records],
            "content_hash": [r["content_hash"] for r in records],
            "model": [encoder.name] * len(records),
            "dimension": [encoder.dimension] * len(records),
            "vector": pa.array(list(vectors), type=pa.list_(pa.float32())),
        }
    )
    return table, vectors


def stored_rows(index) -> int:
    collection = Collection.objects.filter(index=index.name).first()
    return 0 if collection is None else len(get_store().content_hashes(collection.table))


def staff_token(name: str = "admin") -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=User.objects.create_superuser(name, f"{name}@example.com", "pw")).key


def test_push_streams_a_vector_folder_far_above_2_5_mb_to_a_real_server(big_catalog, live_server, tmp_path, capsys):
    table, vectors = vector_table(big_catalog)
    folder = tmp_path / "vectors"
    folder.mkdir()
    pq.write_table(table.slice(0, 1000), folder / "part-000000.parquet")  # two parts: joined on disk, then sent
    pq.write_table(table.slice(1000), folder / "part-000001.parquet")
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE, size

    token = staff_token()
    assert cli(["push", live_server.url, "--index", "products", str(folder), "--token", token, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["new"] == ROWS and not dry["applied"] and stored_rows(big_catalog) == 0
    assert cli(["push", live_server.url, "--index", "products", str(folder), "--token", token]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["new"] == ROWS and report["applied"] and report["invalid"] == 0
    assert stored_rows(big_catalog) == ROWS
    collection = Collection.objects.get(index="products")
    last = table["id"][ROWS - 1].as_py()
    stored = get_store().fetch(collection.table, [last], with_vectors=True)[last].vector
    assert np.allclose(stored, vectors[ROWS - 1], atol=1e-6)


def test_a_multipart_upload_above_2_5_mb_imports(big_catalog, client, tmp_path):
    table, _ = vector_table(big_catalog)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    assert buffer.tell() > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    buffer.seek(0)
    buffer.name = "vectors.parquet"
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    response = client.post("/api/semantic/products/import", {"file": buffer})
    assert response.status_code == 200, response.content
    assert response.json()["new"] == ROWS and stored_rows(big_catalog) == ROWS


def test_an_upload_over_max_upload_bytes_is_a_413_and_changes_nothing(big_catalog, live_server, client, settings):
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_UPLOAD_BYTES": 1_000_000}
    table, _ = vector_table(big_catalog, rows=1000)  # ~1.6 MB
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    body = buffer.getvalue()
    assert len(body) > 1_000_000
    expected = (
        "The upload is larger than this server accepts (1000000 bytes, SEMANTIC_CATALOG['MAX_UPLOAD_BYTES']): "
        "raise that setting, or import the file on the server with `manage.py semantic_import`."
    )
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    raw = client.post("/api/semantic/products/import", body, content_type="application/vnd.apache.parquet")
    assert raw.status_code == 413 and raw.json() == {"detail": expected}
    form = client.post("/api/semantic/products/import", {"file": io.BytesIO(body)})
    assert form.status_code == 413 and form.json() == {"detail": expected}
    analysis = client.post("/api/semantic/import/analysis", b" " * 1_000_001, content_type="application/json")
    assert analysis.status_code == 413 and analysis.json() == {"detail": expected}
    assert stored_rows(big_catalog) == 0 and not Collection.objects.exists()

    # over real HTTP, declared by Content-Length: refused before the body is read, shown in one line
    import httpx

    url = f"{live_server.url}/api/semantic/products/import"
    token = {"Authorization": f"Token {staff_token('pusher')}"}
    response = httpx.post(url, content=body, headers={**token, "Content-Type": "application/vnd.apache.parquet"})
    assert response.status_code == 413 and response.json() == {"detail": expected}
    # a chunked body (no Content-Length) never reaches a WSGI view: a 400 that says so, not "empty"
    response = httpx.post(url, content=iter([body[:500_000], body[500_000:]]), headers=token)
    assert response.status_code == 400 and "Transfer-Encoding: chunked" in response.json()["detail"]
    assert stored_rows(big_catalog) == 0 and not Collection.objects.exists()


def test_push_shows_a_413_in_one_line(big_catalog, live_server, tmp_path, settings, capsys):
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_UPLOAD_BYTES": 100_000}
    table, _ = vector_table(big_catalog, rows=200)
    path = tmp_path / "vectors.parquet"
    pq.write_table(table, path)
    assert cli(["push", live_server.url, "--index", "products", str(path), "--token", staff_token()]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "<" not in err, err
    assert "413" in err and "SEMANTIC_CATALOG['MAX_UPLOAD_BYTES']" in err, err
    assert stored_rows(big_catalog) == 0


def test_max_upload_bytes_must_be_a_whole_number_of_bytes(settings):
    from django.core.exceptions import ImproperlyConfigured

    from semantic_catalog.checks import check_settings
    from semantic_catalog.conf import semantic_settings

    assert semantic_settings.MAX_UPLOAD_BYTES == 512 * 1024 * 1024
    for bad in (0, -1, 2.5, "1000", True, None):
        settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "MAX_UPLOAD_BYTES": bad}
        with pytest.raises(ImproperlyConfigured, match=r"MAX_UPLOAD_BYTES'\] must be a whole number of bytes"):
            semantic_settings.MAX_UPLOAD_BYTES  # noqa: B018
        assert [e.id for e in check_settings()] == ["semantic_catalog.E010"]
