"""What keeping the index in step costs a `Product.save()`.

(a) no index registered; (b) the index with the outbox, the work left to a `db_worker` (django_tasks_db);
(c) the naive way: embed and upsert inline in a post_save handler, one row at a time.
Each save runs in its own transaction, as with ATOMIC_REQUESTS, DEBUG off. Saves change the
product text so (c) really embeds. (a) and (b) alternate round by round so machine noise hits both
alike. Prints a table, writes benchmarks/results/sync_overhead.json.

    .venv/bin/python benchmarks/sync_overhead.py [--saves 100] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _django import setup
from _results import write_report


def timed_saves(products: list, label: str) -> list[float]:
    from django.db import transaction

    times = []
    for n, product in enumerate(products):
        product.description = f"{label} revision {n}: {product.description[-200:]}"
        start = time.perf_counter()
        with transaction.atomic():
            product.save()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(times) * 1000,
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))] * 1000,
        "saves": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=100, help="products saved per round")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds of (a) and (b)")
    parser.add_argument("--inline-saves", type=int, default=200, help="saves measured for (c)")
    args = parser.parse_args()

    data_dir = setup(tasks="db")
    from django.core.management import call_command
    from django.db.models.signals import post_save

    from semantic_catalog.backends import get_encoder, get_store
    from semantic_catalog.collections import ensure_active
    from semantic_catalog.engine.indexer import index_documents
    from semantic_catalog.models import SyncEvent
    from semantic_catalog.registry import registry
    from shop.models import Product

    call_command("loaddata", "demo_catalog", verbosity=0)
    index = registry.get("products")
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    call_command("semantic_index", "--no-progress", verbosity=0)
    products = list(Product.objects.filter(active=True).select_related("category", "store")[: args.saves])
    encoder, store = get_encoder(), get_store()
    collection = ensure_active(index)
    encoder.encode(["warm up"])

    index_class = type(index)
    times: dict[str, list[float]] = {"a_no_index": [], "b_outbox_worker": []}
    for round_no in range(args.rounds):
        # (b) index + outbox; the drain is left to the worker
        times["b_outbox_worker"] += timed_saves(products, f"outbox {round_no}")
        # (a) no index: the library's signal handlers disconnected
        registry.unregister("products")
        times["a_no_index"] += timed_saves(products, f"plain {round_no}")
        registry.register(index_class)
    results = {key: summary(value) for key, value in times.items()}
    pending = SyncEvent.objects.count()
    start = time.perf_counter()
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    drain_seconds = time.perf_counter() - start
    assert SyncEvent.objects.count() == 0, "the worker left events behind"

    # (c) inline embedding in post_save, one row at a time (the library's handlers disconnected)
    registry.unregister("products")

    def inline(sender, instance, **kwargs):
        index_documents(store, collection.table, encoder, [index.to_document(instance)])

    post_save.connect(inline, sender=Product, dispatch_uid="bench-inline")
    inline_products = (products * (1 + args.inline_saves // len(products)))[: args.inline_saves]
    results["c_inline_embedding"] = summary(timed_saves(inline_products, "inline"))
    post_save.disconnect(sender=Product, dispatch_uid="bench-inline")

    base = results["a_no_index"]["median_ms"]
    for row in results.values():
        row["ratio_to_a"] = row["median_ms"] / base
    report = {
        "benchmark": "sync_overhead",
        "saves_per_variant": {k: v["saves"] for k, v in results.items()},
        "results": results,
        "worker_drain": {
            "events": pending,
            "seconds": drain_seconds,
            "rows_per_second": pending / drain_seconds if drain_seconds else None,
        },
        "database": "SQLite (WAL, synchronous=NORMAL), one transaction per save, DEBUG off",
        "tasks_backend": "django_tasks_db.DatabaseBackend (db_worker run after the timed saves)",
        "data_dir": str(data_dir),
    }
    print(f"{'variant':<34}{'median ms':>10}{'p90 ms':>9}{'x (a)':>8}")
    labels = {
        "a_no_index": "(a) no index",
        "b_outbox_worker": "(b) index + outbox, worker drains",
        "c_inline_embedding": "(c) embed inline in post_save",
    }
    for key in ("a_no_index", "b_outbox_worker", "c_inline_embedding"):
        row = results[key]
        print(f"{labels[key]:<34}{row['median_ms']:>10.2f}{row['p90_ms']:>9.2f}{row['ratio_to_a']:>8.2f}")
    rate = report["worker_drain"]["rows_per_second"]
    print(f"worker drained {pending} events in {drain_seconds:.1f} s ({rate:.0f}/s)")
    write_report("sync_overhead", report)


if __name__ == "__main__":
    main()
