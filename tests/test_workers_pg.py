"""Several real ``manage.py db_worker`` processes drain one index at once (issue 15, item 4).

Needs PostgreSQL shared by the processes (``pytest --ds=tests.settings_pg``, with
SEMANTIC_CATALOG_TEST_PG_DSN set): an in-memory SQLite database cannot be shared between processes.
"""

from __future__ import annotations

import os
import random
import time
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from tests.reliability.processes import Child, child_env, db_worker_command, start, stop, tails

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("SEMANTIC_CATALOG_TEST_PG_DSN") or django_settings.SETTINGS_MODULE != "tests.settings_pg",
        reason="several db_worker processes need a database they share: run with SEMANTIC_CATALOG_TEST_PG_DSN "
        "set and --ds=tests.settings_pg (the default settings use an in-memory SQLite database)",
    ),
]

WORKERS = 3
CONVERGE_SECONDS = 120  # model loading in each worker on a busy machine included

WORKER_SETTINGS = """\
from tests.settings_pg import *  # noqa: F403
from tests.settings_pg import DATABASES, SEMANTIC_CATALOG

DATABASES = {{"default": {{**DATABASES["default"], "NAME": {name!r}}}}}
TASKS = {{"default": {{"BACKEND": "django_tasks_db.DatabaseBackend"}}}}
SEMANTIC_CATALOG = {{**SEMANTIC_CATALOG, "DATA_DIR": {data_dir!r}, "SYNC_BATCH_SIZE": 16}}
DEBUG = False
"""


class Workers:
    """The running ``db_worker`` processes; calling it stops them (SIGTERM, then SIGKILL)."""

    def __init__(self, children: list[Child]):
        self.children = children

    def __call__(self) -> None:
        stop(self.children)

    @property
    def processes(self) -> list:
        return [child.process for child in self.children]


@pytest.fixture
def workers(settings, tmp_path, semantic_data_dir):
    """Start WORKERS ``db_worker`` processes on this test's database (committed data: transaction=True)
    and the same vector store (tests/reliability/processes.py starts them)."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    module = tmp_path / "sc_worker_settings.py"
    module.write_text(WORKER_SETTINGS.format(name=connection.settings_dict["NAME"], data_dir=str(semantic_data_dir)))
    env = child_env(tmp_path, "sc_worker_settings")
    running = Workers(
        [start(f"worker-{n}", db_worker_command(f"worker-{n}"), env, tmp_path, tmp_path) for n in range(WORKERS)]
    )
    try:
        yield running
    finally:
        running()


def _tail(workers: Workers) -> str:
    return tails(workers.children)


def test_several_workers_apply_each_event_once_and_converge(workers, shop):
    """Three db_worker processes drain while this process writes 300 changes (creates, updates,
    deactivations, reactivations, deletes; some alone, some in transactions of several) and queues
    extra drains in bursts, so that drains run at the same time in several processes.

    Asserted, once the outbox is empty and no drain is running (within CONVERGE_SECONDS):

    - the index converges to exactly the queryset: ``check_index`` finds no missing, stale (content
      hash other than the row's document's) or orphaned row, and the store holds exactly one row per
      row of the queryset (an upsert that was not idempotent would leave a second row);
    - no event was applied twice: each task result says how many events its drain applied (a drain
      counts the events it read from the outbox and deletes them once written; none fails here), and
      these add up to exactly the number of events written. Two drains holding the index at the same
      time would both read the oldest due events and count them twice. (Comparing the tasks' start
      and finish times would not be sound: a drain that finds the index leased returns at once, and a
      task's time also covers work outside the lease.)
    - no task failed, and every worker is still alive.
    """
    from django_tasks_db.models import DBTaskResult

    from semantic_catalog.backends import get_store
    from semantic_catalog.collections import active_collection
    from semantic_catalog.models import SyncEvent
    from semantic_catalog.registry import registry
    from semantic_catalog.sync.check import check_index
    from semantic_catalog.sync.tasks import drain_outbox
    from shop.models import Product

    index = registry.get("products")
    indexes_per_write = len(registry.for_model(Product))
    rng = random.Random(15)
    words = ["drill", "hose", "saw", "pan", "kettle", "rake", "lamp", "ladder", "sander", "wrench", "mower", "grill"]
    categories = [("drills", "a"), ("pans", "a"), ("tools", "a"), ("hoses", "b")]
    writes = 0
    products: list[Product] = []

    def create() -> None:
        category, store = rng.choice(categories)
        name = f"{rng.choice(words).title()} {rng.choice(words)} {len(products)}"
        product = Product.objects.create(
            name=name,
            description=f"a {rng.choice(words)} for the {rng.choice(words)}",
            price=Decimal(rng.randint(1, 500)),
            category=shop[category],
            store=shop[store],
        )
        products.append(product)

    def change() -> None:
        product = rng.choice(products)
        what = rng.random()
        if what < 0.5:
            product.name = f"{product.name.split(' (')[0]} ({rng.choice(words)})"
        elif what < 0.7:
            product.price = Decimal(rng.randint(1, 500))  # a filter field: the vector is reused
        else:
            product.active = not product.active  # deactivations and reactivations
        product.save()

    def delete() -> None:
        product = products.pop(rng.randrange(len(products)))
        product.delete()

    def wait_for_empty_outbox() -> None:
        deadline = time.monotonic() + CONVERGE_SECONDS
        while SyncEvent.objects.exists():
            assert time.monotonic() < deadline, f"the outbox did not empty in {CONVERGE_SECONDS}s\n{_tail(workers)}"
            time.sleep(0.2)

    for round_ in range(10):
        if round_ == 5:  # the first drain (and the models' loading) done: later ones start in other workers too
            wait_for_empty_outbox()
        for _ in range(15):
            create()
            writes += 1
        with transaction.atomic():  # several changes, one commit
            for _ in range(10):
                change()
                writes += 1
        for _ in range(3):
            delete()
            writes += 1
        for _ in range(2):
            change()
            writes += 1
        if round_ % 3 == 0:
            for _ in range(WORKERS):  # more drains than the writes queue, all at once
                drain_outbox.enqueue("products")
        time.sleep(rng.uniform(0, 0.3))
    assert writes == 300
    expected_events = writes * indexes_per_write

    deadline = time.monotonic() + CONVERGE_SECONDS
    while True:
        running = DBTaskResult.objects.filter(status="RUNNING").exists()
        due = DBTaskResult.objects.ready().exists()
        if not running and not due and not SyncEvent.objects.exists():
            break
        dead = [p.returncode for p in workers.processes if p.poll() is not None]
        assert not dead, f"a worker exited ({dead}):\n{_tail(workers)}"
        assert time.monotonic() < deadline, (
            f"not converged in {CONVERGE_SECONDS}s: {SyncEvent.objects.count()} events pending, "
            f"running={running}, due={due}\n{_tail(workers)}"
        )
        time.sleep(0.2)
    assert all(p.poll() is None for p in workers.processes), _tail(workers)
    workers()  # stop them: what follows reads a database and a store nobody writes

    results = list(DBTaskResult.objects.all())
    failed = [(r.exception_class_path, r.traceback[-500:]) for r in results if r.status == "FAILED"]
    assert not failed, failed
    done = [r.return_value for r in results if r.status == "SUCCESSFUL"]
    assert sum(v["events"] for v in done) == expected_events, (expected_events, done)
    assert sum(v["failed"] for v in done) == 0 and not any(v["outage"] for v in done)
    assert not SyncEvent.objects.exists()

    report = check_index(index)
    assert report.differences == 0, report.as_dict()
    in_queryset = index.get_queryset().count()
    assert 0 < in_queryset == report.in_queryset == report.indexed
    collection = active_collection(index)
    assert get_store().count(collection.table) == in_queryset  # one stored row per row: no duplicate upserts
    workers_that_drained = {w for r in results if r.status == "SUCCESSFUL" for w in r.worker_ids}
    print(
        f"{len(done)} drains by {len(workers_that_drained)} workers, "
        f"{sum(bool(v['events']) for v in done)} applied events, "
        f"{sum(v['busy'] for v in done)} found the index leased; {expected_events} events, {in_queryset} rows"
    )
