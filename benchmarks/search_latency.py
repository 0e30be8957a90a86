"""Search latency through the HTTP API of a real server process, on the 54,667 Home Depot titles.

The demo project (benchmarks/latency_site.py adds a naive endpoint) is loaded with one product per
Home Depot title, indexed with `semantic_index` (which builds the approximate vector index: 54,667 is
past the default 50,000-row threshold) and served by gunicorn (1 worker process x 4 threads: the
caches are per process, and the model and the store release the GIL; the encoder uses two threads,
one on torch, see latency_site.py). For each mode, at concurrency 1 and 4, a fresh server gets the
first N dev queries twice: a cold pass (every query new to the server) and a repeat pass (the same
queries again: query vectors come from the cache). The modes take turns, slice by slice, within each
pass (see ``measure``), so their ratios do not depend on when each ran. Reported per pass: p50, p99
and queries/s (requests over the seconds spent on that mode).

The naive baseline: encode the query and run LanceDB's flat search on every request, no cache, no
index (see latency_site.naive_search).

    .venv/bin/python benchmarks/search_latency.py [--queries 1000] [--workers 1] [--threads 4]
    .venv/bin/python benchmarks/search_latency.py --encoder fp32-queries --modes hybrid,naive,naive-server-encoder

``--encoder default`` serves our modes with the library's default encoder as configured in the demo
(on a CPU: the bundled model's ONNX export, made once into the cache folder; queries with its int8
weights, documents in fp32), ``--encoder fp32-queries`` encodes queries with the fp32 export too
(``int8_queries=False``: the same vectors as torch), ``--encoder torch`` forces the torch backend.
The naive baseline always uses sentence-transformers on torch. Mode ``naive-server-encoder`` is the naive baseline
with the server's encoder, to show how much of the gain is the encoder's.

The loaded site is kept in benchmarks/results/cache/latency-site (indexing takes about 5 minutes
once). Needs ../shared/data/search/homedepot (skips with a message otherwise). Writes
benchmarks/results/search_latency.json (``_torch`` / ``_fp32_queries`` for the other encoders).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _homedepot import load
from _results import ROOT, write_report

SITE = ROOT / "benchmarks" / "results" / "cache" / "latency-site"
SERVER_ENCODER_THREADS = 1  # set by --encoder-threads
MODES = ("naive", "keyword", "semantic", "hybrid")  # also: naive-server-encoder (see --encoder)


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "DEMO_DATA_DIR": str(SITE),
        "DJANGO_SETTINGS_MODULE": "latency_site",
        "DJANGO_DEBUG": "0",
        "HF_HUB_OFFLINE": "1",
        "LATENCY_ENCODER_THREADS": str(SERVER_ENCODER_THREADS),  # the server's encoder (see latency_site)
        "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT / "example"), str(ROOT / "src")]),
    }


def prepare(titles: dict[str, str]) -> None:
    """Products from the titles and their index, once (a no-op when the cached site is complete)."""
    os.environ.update(environment(), LATENCY_ENCODER_THREADS=str(os.cpu_count() or 1))  # indexing: all cores
    sys.path[:0] = [str(ROOT / "example"), str(ROOT / "src")]
    import django

    django.setup()
    from django.core.management import call_command

    from shop.models import Category, Product, Store

    call_command("migrate", verbosity=0)
    if Product.objects.count() != len(titles):
        Product.objects.all().delete()
        store, _ = Store.objects.get_or_create(slug="home-depot", defaults={"name": "Home Depot"})
        category, _ = Category.objects.get_or_create(store=store, parent=None, name="All")
        products = [
            Product(store=store, category=category, name=title[:200], price=10 + int(uid) % 490)
            for uid, title in titles.items()
        ]
        Product.objects.bulk_create(products, batch_size=2000)  # no signals: the index is built below
    call_command("semantic_index", index=["products"], verbosity=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "demo.wsgi:application",
        f"--workers={workers}",
        f"--threads={threads}",
        f"--bind=127.0.0.1:{port}",
        "--log-level=warning",
    ]
    server = subprocess.Popen(command, cwd=ROOT / "example", env=environment())
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(f"{url}/api/semantic/schema", timeout=1)
            return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


def request(client: httpx.Client, mode: str, text: str) -> float:
    if mode == "naive":
        path, params = "/naive/search", {"q": text}
    elif mode == "naive-server-encoder":
        path, params = "/naive/search", {"q": text, "encoder": "server"}
    else:
        path, params = "/api/semantic/products/search", {"q": text, "mode": mode, "limit": "10"}
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


ROUNDS = 10  # each pass runs the queries in this many slices, the modes taking turns on every slice


def timed_pass(url: str, mode: str, queries: list[str], concurrency: int) -> tuple[list[float], float]:
    """Latencies and wall seconds of one pass; each client thread keeps one connection (so one
    server worker) and takes every n-th query."""

    def client_loop(offset: int) -> list[float]:
        with httpx.Client(base_url=url, timeout=60) as client:
            return [request(client, mode, q) for q in queries[offset::concurrency]]

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        latencies = [t for part in pool.map(client_loop, range(concurrency)) for t in part]
    return latencies, time.perf_counter() - started


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    latencies = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2),
        "qps": round(len(latencies) / wall, 1),
        "requests": len(latencies),
    }


def measure(modes: list[str], queries: list[str], concurrency: int, workers: int, threads: int) -> dict:
    """A fresh server per mode; a cold pass then a repeat pass, each interleaved: slice by slice, every
    mode runs the same slice in turn, so a machine that slows down for a while slows all modes alike
    and the ratios between modes hold (on this shared VM, back-to-back runs differed by up to 30%)."""
    servers = {mode: start_server(workers, threads) for mode in modes}
    try:
        for mode, (_, url) in servers.items():
            warm_up(url, mode, workers)
        results: dict[str, dict[str, dict[str, float]]] = {mode: {} for mode in modes}
        for name in ("cold", "repeat"):
            latencies: dict[str, list[float]] = {mode: [] for mode in modes}
            wall = dict.fromkeys(modes, 0.0)
            for start in range(ROUNDS):
                for mode, (_, url) in servers.items():
                    part, seconds = timed_pass(url, mode, queries[start::ROUNDS], concurrency)
                    latencies[mode] += part
                    wall[mode] += seconds
            for mode in modes:
                results[mode][f"c{concurrency}_{name}"] = summary(latencies[mode], wall[mode])
        return results
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait()


def warm_up(url: str, mode: str, workers: int) -> None:
    """Load the model in every worker with queries that are not in the measured set; the first keyword
    or hybrid search also starts the collection's hot copy, read in the background (give it time)."""
    texts = [f"warm up {i}" for i in range(4 * workers)]
    with concurrent.futures.ThreadPoolExecutor(2 * workers) as pool:
        list(pool.map(lambda t: request(httpx.Client(base_url=url, timeout=120), mode, t), texts))
    time.sleep(3)


def cpu_reference_ms() -> float:
    """Median ms of a fixed pure-Python loop, so runs on different (virtual) machines can be compared."""
    times = []
    for _ in range(5):
        started, total = time.perf_counter(), 0
        for i in range(1_000_000):
            total += i
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--encoder", default="default", choices=["default", "fp32-queries", "torch"], help="the server's query encoder"
    )
    parser.add_argument(
        "--encoder-threads",
        type=int,
        default=None,
        help="the server encoder's threads, the naive baseline's too (default: 2 for ONNX, 1 for torch; see README)",
    )
    args = parser.parse_args()
    global SERVER_ENCODER_THREADS
    SERVER_ENCODER_THREADS = args.encoder_threads or (1 if args.encoder == "torch" else 2)
    from semantic_catalog.engine.encoders.onnx_export import cached_export

    if args.encoder == "torch":
        os.environ["LATENCY_ENCODER_BACKEND"] = "torch"
    else:  # the default encoder's export, made here once rather than by each server on its first request
        cached_export(None)
        if args.encoder == "fp32-queries":
            os.environ["LATENCY_FP32_QUERIES"] = "1"

    data = load(args.queries)
    prepare(data.titles)
    from semantic_catalog.backends import get_store
    from semantic_catalog.collections import require_searchable
    from semantic_catalog.registry import registry

    table = require_searchable(registry.get("products")).table
    has_index = get_store().has_vector_index(table)
    queries = list(data.queries.values())
    modes = args.modes.split(",")
    results: dict[str, dict[str, dict[str, float]]] = {mode: {} for mode in modes}
    for concurrency in (1, 4):
        for mode, passes in measure(modes, queries, concurrency, args.workers, args.threads).items():
            results[mode].update(passes)
            print(f"{mode:<20} concurrency {concurrency}: {passes}", flush=True)
    ratios: dict[str, dict[str, dict[str, float]]] = {}
    for baseline in ("naive", "naive-server-encoder"):
        if baseline in results:
            base = results[baseline]
            ratios[baseline] = {
                mode: {key: round(results[mode][key]["qps"] / base[key]["qps"], 2) for key in results[mode]}
                for mode in results
                if not mode.startswith("naive")
            }
    report = {
        "titles": len(data.titles),
        "queries": len(queries),
        "server": f"gunicorn, {args.workers} workers x {args.threads} threads",
        "encoder": args.encoder,
        "encoder_threads": SERVER_ENCODER_THREADS,
        "vector_index": has_index,
        "cpu_count": os.cpu_count(),
        "cpu_reference_ms": cpu_reference_ms(),  # measured after the passes
        "results": results,
        "qps_over": ratios,
    }
    print("queries/s over the baselines:", ratios)
    write_report(
        "search_latency" if args.encoder == "default" else f"search_latency_{args.encoder.replace('-', '_')}", report
    )


if __name__ == "__main__":
    if not Path(ROOT / ".venv" / "bin" / "gunicorn").exists():
        sys.exit("gunicorn is missing: run bash scripts/install.sh")
    main()
