"""What the Temporal tests share: encoders with injected faults (the real bundled model underneath),
a worker run in a thread of the test process, and a child-process entry point for the kill test
(``python -m tests.temporal_helpers setup|check``)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from typing import Any

import numpy as np

from tests.encoders import CountingEncoder

ADDRESS_VARIABLE = "SEMANTIC_CATALOG_TEST_TEMPORAL_ADDRESS"


class FaultyEncoder(CountingEncoder):
    """The bundled model, slowed down (``delay`` seconds per call) and failing on purpose: any batch
    with a text containing "poison" always fails; one containing "flaky" fails its first two tries."""

    flaky_calls = 0
    poison_calls = 0

    def __init__(self, delay: float = 0.0, **options: Any):
        super().__init__(**options)
        self.delay = delay

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        if any("poison" in t.lower() for t in texts):
            FaultyEncoder.poison_calls += 1
            raise RuntimeError("the model choked on a poison row")
        if any("flaky" in t.lower() for t in texts):
            FaultyEncoder.flaky_calls += 1
            if FaultyEncoder.flaky_calls <= 2:
                raise RuntimeError(f"flaky failure {FaultyEncoder.flaky_calls}")
        return super()._encode(texts)

    @classmethod
    def reset(cls) -> None:
        super().reset()
        cls.flaky_calls = cls.poison_calls = 0


class ThreadWorker:
    """A Temporal worker (``workflows.worker.build_worker``) on an event loop in a thread of this
    process, so its activities use the test's database; ``stop()`` shuts it down."""

    def __init__(self, task_queue: str):
        self.task_queue = task_queue
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        from semantic_catalog.workflows.worker import run_worker

        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(run_worker(self.task_queue, 2, self.ready.set))
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # surfaced by start()
            self.error = exc
            self.ready.set()
        finally:
            from django.db import connections

            connections.close_all()
            self.loop.close()

    def start(self) -> ThreadWorker:
        from semantic_catalog.workflows.activities import warm_up

        warm_up()  # as semantic_temporal_worker does: no activity pays for loading the model
        self.thread.start()
        if not self.ready.wait(60) or self.error is not None:
            raise RuntimeError(f"the Temporal worker did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        if self.task is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(60)


def _setup(count: int) -> None:
    """Migrate the child's database and create ``count`` products (outside the index: AUTO_SYNC off)."""
    from decimal import Decimal

    from django.core.management import call_command

    from shop.models import Category, Product, Store

    call_command("migrate", verbosity=0)
    shop = Store.objects.create(name="Brightfield Home", slug="brightfield")
    tools = Category.objects.create(store=shop, name="Tools")
    words = ["drill", "hose", "saw", "pan", "kettle", "rake", "lamp", "ladder", "sander", "wrench"]
    Product.objects.bulk_create([
        Product(name=f"{words[n % 10].title()} {words[(n * 7) % 10]} {n}", description=f"a handy {words[n % 10]}",
                price=Decimal(n % 90 + 1), category=tools, store=shop)
        for n in range(count)
    ])
    print(json.dumps({"products": Product.objects.count()}))


def _check() -> None:
    """The index against SQL: check_index's differences and the store's row count."""
    from semantic_catalog.backends import get_store
    from semantic_catalog.collections import active_collection
    from semantic_catalog.registry import registry
    from semantic_catalog.sync.check import check_index

    index = registry.get("products")
    report = check_index(index)
    collection = active_collection(index)
    stored = get_store().count(collection.table) if collection else 0
    print(json.dumps({
        "in_queryset": report.in_queryset,
        "indexed": report.indexed,
        "stored_rows": stored,
        "missing": len(report.missing.ids),
        "stale": len(report.stale.ids),
        "orphaned": len(report.orphaned.ids),
    }))


if __name__ == "__main__":
    import django

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    django.setup()
    if sys.argv[1] == "setup":
        _setup(int(sys.argv[2]))
    else:
        _check()
