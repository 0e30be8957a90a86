"""The test settings on PostgreSQL: Django's database and the vector store (PgVectorStore) on the server
named by SEMANTIC_CATALOG_TEST_PG_DSN (``export SEMANTIC_CATALOG_TEST_PG_DSN="$(bash scripts/postgres.sh)"``).

Django creates its test database (``test_<name>``) next to the DSN's database; the store keeps its
tables in the DSN's database under a schema of its own, emptied before each test (see conftest).
``pytest --ds=tests.settings_pg tests/test_sync.py ...`` runs a suite on it."""

import os
from urllib.parse import unquote, urlsplit

from tests.settings import *  # noqa: F403
from tests.settings import SEMANTIC_CATALOG

PG_DSN_VARIABLE = "SEMANTIC_CATALOG_TEST_PG_DSN"
PG_DSN = os.environ.get(PG_DSN_VARIABLE, "")
if not PG_DSN:
    raise RuntimeError(
        f"tests.settings_pg needs {PG_DSN_VARIABLE}: "
        f'export {PG_DSN_VARIABLE}="$(bash scripts/postgres.sh)" starts a local server and prints it'
    )
STORE_SCHEMA = "semantic_catalog_django_tests"


def database_from_dsn(dsn: str) -> dict:
    """Django's DATABASES entry for a ``postgresql://user:password@host:port/name`` DSN."""
    url = urlsplit(dsn)
    if url.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"{PG_DSN_VARIABLE} must be a postgresql:// URL, got {url.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(url.path.lstrip("/")),
        "USER": unquote(url.username or ""),
        "PASSWORD": unquote(url.password or ""),
        "HOST": url.hostname or "",
        "PORT": str(url.port or ""),
    }


DATABASES = {"default": {**database_from_dsn(PG_DSN), "ATOMIC_REQUESTS": True}}
SEMANTIC_CATALOG = {
    **SEMANTIC_CATALOG,
    "VECTOR_STORE": {
        "BACKEND": "semantic_catalog.engine.stores.pgvector.PgVectorStore",
        "OPTIONS": {"dsn": PG_DSN, "schema": STORE_SCHEMA},
    },
}
