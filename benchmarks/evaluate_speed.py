"""How long `semantic-catalog evaluate` (3 modes) and `adapt --folds 5` take on the Home Depot titles and
all 4,357 dev queries: the commands a user runs, timed end to end as subprocesses.

The titles are written once as an export file (id, title as text) and embedded once with
`semantic-catalog embed` (both kept in benchmarks/results/cache/evaluate_speed/, so a rerun times only
the two commands); then `evaluate` and `adapt` run with `--vectors`. Prints the wall times and the
metrics, writes benchmarks/results/evaluate_speed.json.

    nice .venv/bin/python benchmarks/evaluate_speed.py
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from _homedepot import DATA, require_data
from _results import ROOT, write_report

sys.path.insert(0, str(ROOT / "src"))

from semantic_catalog.engine.documents import content_hash  # noqa: E402

CACHE = ROOT / "benchmarks" / "results" / "cache" / "evaluate_speed"
CLI = str(ROOT / ".venv" / "bin" / "semantic-catalog")
JUDGED = ["--queries", str(DATA / "queries_dev.csv"), "--judgments", str(DATA / "qrels_dev.csv")]
SCALE = ["--relevant-at", "2.5", "--gain-offset", "1"]  # the data set's README: gain = relevance - 1


def export_file() -> Path:
    path = CACHE / "products.jsonl"
    if not path.exists():
        with open(DATA / "products.csv", newline="") as rows, open(path, "w") as out:
            for row in csv.DictReader(rows):
                text = row["product_title"]
                record = {"id": row["product_uid"], "index": "products", "text": text, "fields": {}}
                out.write(json.dumps({**record, "content_hash": content_hash(text, {})}) + "\n")
    return path


def timed(args: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([CLI, *args], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def main() -> None:
    require_data()
    CACHE.mkdir(parents=True, exist_ok=True)
    records = export_file()
    vectors = CACHE / "vectors"
    embed_seconds = None
    if not vectors.exists():
        embed_seconds, _ = timed(["embed", str(records), "--out", str(vectors), "--quiet"])
    evaluate_seconds, evaluate_out = timed(
        ["evaluate", str(records), *JUDGED, "--vectors", str(vectors), *SCALE, "--quiet"]
    )
    adapt_seconds, adapt_out = timed(
        ["adapt", str(records), *JUDGED, "--vectors", str(vectors), *SCALE, "--folds", "5", "--quiet",
         "--out", str(CACHE / "adapter.npz")]
    )  # fmt: skip
    print(f"embed: {'cached' if embed_seconds is None else f'{embed_seconds:.1f} s'}")
    print(f"evaluate, 3 modes: {evaluate_seconds:.1f} s\n{evaluate_out}")
    print(f"adapt --folds 5: {adapt_seconds:.1f} s\n{adapt_out}")
    write_report(
        "evaluate_speed",
        {
            "embed_seconds": embed_seconds,
            "evaluate_seconds": round(evaluate_seconds, 1),
            "adapt_seconds": round(adapt_seconds, 1),
            "evaluate_output": evaluate_out,
            "adapt_output": adapt_out,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        },
    )


if __name__ == "__main__":
    main()
