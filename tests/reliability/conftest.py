"""The suite runs once per database: SQLite + LanceDB in the main pass (tests.settings), PostgreSQL +
pgvector when pytest runs with --ds=tests.settings_pg and SEMANTIC_CATALOG_TEST_PG_DSN (scripts/test.sh
reruns it so). Each test gets a ``Cluster`` of its own, closed (processes stopped, database dropped,
folder removed) at its end."""

from __future__ import annotations

import os

import pytest
from django.conf import settings as django_settings

from tests.reliability.cluster import Cluster

PG_DSN_VARIABLE = "SEMANTIC_CATALOG_TEST_PG_DSN"


# Read once, at import: inside a test, pytest-django's ``settings`` fixture (used by an autouse fixture
# of tests/conftest.py) puts a holder in front whose SETTINGS_MODULE is None.
ON_PG = django_settings.SETTINGS_MODULE == "tests.settings_pg"


def _on_pg() -> bool:
    return ON_PG


@pytest.fixture(params=["sqlite", "pg"])
def backend(request) -> str:
    if request.param == "sqlite" and _on_pg():
        pytest.skip("the SQLite variant runs in the main pass (tests.settings)")
    if request.param == "pg" and not (_on_pg() and os.environ.get(PG_DSN_VARIABLE)):
        pytest.skip(f"the PostgreSQL variant needs {PG_DSN_VARIABLE} and --ds=tests.settings_pg "
                    f"(scripts/test.sh reruns this suite so when the variable is set)")
    return request.param


@pytest.fixture
def cluster(backend):
    """A function making the test's ``Cluster`` (``store_server=True``: on PostgreSQL, the store on a
    server of its own that the test may stop)."""
    made: list[Cluster] = []

    def make(store_server: bool = False) -> Cluster:
        made.append(Cluster(backend, pg_dsn=os.environ.get(PG_DSN_VARIABLE), store_server=store_server))
        return made[-1]

    yield make
    for cluster in made:
        cluster.close()
