"""The offline embed job: export file in, Parquet vector parts out; resumable, batched, OOM-tolerant."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow.parquet as pq

from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.indexer import chunked
from semantic_catalog.engine.offline.records import (
    VectorRecord,
    read_records,
    vector_parts,
    vector_table,
)

T = TypeVar("T")


@dataclass
class EmbedReport:
    total: int = 0
    skipped: int = 0
    embedded: int = 0
    parts: int = 0
    seconds: float = 0.0
    batch_size: int = 0

    @property
    def rate(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA (and other accelerators') out-of-memory errors, without importing torch."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def encode_adaptive(encoder: Encoder, texts: Sequence[str], batch_size: int) -> tuple[np.ndarray, int]:
    """Encode in chunks of ``batch_size``; on out-of-memory halve it and go on. Returns the vectors
    and the batch size that worked (the caller keeps using it)."""
    vectors: list[np.ndarray] = []
    start = 0
    while start < len(texts):
        chunk = list(texts[start : start + batch_size])
        try:
            vectors.append(encoder.encode(chunk))
        except Exception as exc:
            if not is_out_of_memory(exc) or batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            _free_accelerator_memory()
            continue
        start += len(chunk)
    return np.vstack(vectors), batch_size


def _free_accelerator_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def done_keys(out_dir: Path, model: str) -> set[tuple[str, str]]:
    """(id, content_hash) pairs already embedded with ``model`` in this output folder."""
    keys: set[tuple[str, str]] = set()
    for part in vector_parts(out_dir) if out_dir.exists() else []:
        table = pq.read_table(part, columns=["id", "content_hash", "model"])
        for row_id, chash, row_model in zip(*(table.column(c).to_pylist() for c in ("id", "content_hash", "model"))):
            if row_model == model:
                keys.add((row_id, chash))
    return keys


def _write_part(out_dir: Path, number: int, records: list[VectorRecord], dimension: int) -> None:
    final = out_dir / f"part-{number:06d}.parquet"
    temporary = final.with_suffix(".parquet.tmp")
    pq.write_table(vector_table(records, dimension), temporary)
    os.replace(temporary, final)  # a crash never leaves a half-written part behind


def unembedded(
    input_path: str | Path,
    done: set[tuple[str, str]],
    report: EmbedReport,
    progress: Callable[[int], Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """The records of an export that ``done`` does not hold, through the one checked reader.

    Counts ``report.total`` and ``report.skipped`` as it reads, so no path passes over the input
    again just to count it; skipped records still move ``progress``.
    """
    for record in read_records(input_path):
        report.total += 1
        if (str(record["id"]), record["content_hash"]) in done:
            report.skipped += 1
            if progress:
                progress(1)
            continue
        yield record


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items`` produced on a background thread, up to ``depth`` ahead of the consumer, so reading and
    parsing the input overlap encoding; an error raised while reading is raised here, in order."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        handoff.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            handoff.put(("error", exc))

    reader = threading.Thread(target=produce, name="embed-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()  # the consumer stopped early (an error while encoding): let the reader end
        while reader.is_alive():
            try:
                handoff.get_nowait()
            except queue.Empty:
                reader.join(timeout=0.1)


def embed_file(
    input_path: str | Path,
    out_dir: str | Path,
    encoder: Encoder,
    batch_size: int = 64,
    progress: Callable[[int], Any] | None = None,
    window: int = 64,
) -> EmbedReport:
    """Embed every record of an export that ``out_dir`` does not hold yet for this model.

    The input is read once, on a reader thread one window ahead; ``report.total`` is counted on the way
    (a caller that wants a progress bar total counts it itself, see ``records.count_records``). Records
    are taken in windows of ``window`` batches and sorted inside a window by the encoder's own measure of
    length (tokens where it has its tokenizer), so batches carry little padding. Each batch is written as
    its own part, atomically, on a writer thread while the next batch is encoded; a part is handed over
    only once the one before it is on disk, so a crash loses at most the batch being written and the one
    being encoded, and a re-run skips everything already written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.parquet.tmp"):
        stale.unlink()
    done = done_keys(out, encoder.name)
    numbers = [int(p.stem.split("-")[1]) for p in out.glob("part-*.parquet")]
    next_part = max(numbers, default=-1) + 1
    dimension = encoder.dimension
    report = EmbedReport(batch_size=batch_size)
    started = time.perf_counter()
    windows = read_ahead(chunked(unembedded(input_path, done, report, progress), batch_size * window))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-writer") as writer:
        writing: Future[None] | None = None
        writing_size = 0
        for pending in windows:
            lengths = encoder.text_lengths([r["text"] for r in pending])
            pending = [pending[i] for i in sorted(range(len(pending)), key=lengths.__getitem__)]
            start = 0
            while start < len(pending):
                batch = pending[start : start + report.batch_size]
                vectors, report.batch_size = encode_adaptive(encoder, [r["text"] for r in batch], report.batch_size)
                records = [
                    VectorRecord(str(r["id"]), r["index"], r["content_hash"], encoder.name, dimension, v)
                    for r, v in zip(batch, vectors)
                ]
                if writing is not None:
                    writing.result()  # one part in flight at most; a failed write stops the job here
                    _written(report, progress, writing_size)
                writing, writing_size = writer.submit(_write_part, out, next_part, records, dimension), len(records)
                next_part += 1
                start += len(batch)
        if writing is not None:
            writing.result()
            _written(report, progress, writing_size)
    report.seconds = time.perf_counter() - started
    return report


def _written(report: EmbedReport, progress: Callable[[int], Any] | None, size: int) -> None:
    """Counts a part once it is on disk (the report and the bar never run ahead of what a crash keeps)."""
    report.parts += 1
    report.embedded += size
    if progress:
        progress(size)
