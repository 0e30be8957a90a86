"""The test settings on PostgreSQL: Django's database and the vector store (PgVectorStore) on the server
named by SEMANTIC_CATALOG_TEST_PG_DSN (``export SEMANTIC_CATALOG_TEST_PG_DSN="$(bash scripts/postgres.sh)"``).

Django creates its test database (``test_<name>``) next to the DSN's database; the store keeps its
tables in the DSN's database under a schema of its own, emptied before each test (see conftest).
``pytest --ds=tests.settings_pg tests/test_sync.py ...`` runs a suite on it."""

import os

from demo.settings import postgres_database
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


DATABASES = {"default": {**postgres_database(PG_DSN, PG_DSN_VARIABLE), "ATOMIC_REQUESTS": True}}
SEMANTIC_CATALOG = {
    **SEMANTIC_CATALOG,
    "VECTOR_STORE": {
        "BACKEND": "semantic_catalog.engine.stores.pgvector.PgVectorStore",
        "OPTIONS": {"dsn": PG_DSN, "schema": STORE_SCHEMA},
    },
}
