"""The embed job on Ray Data: the same checked input, skip rule and output columns as
``embedding.embed_file``, spread over a local Ray or an existing cluster (one model replica per
worker, GPUs when present)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.indexer import chunked
from semantic_catalog.engine.offline.embedding import EmbedReport, done_keys, unembedded
from semantic_catalog.engine.offline.records import vector_parts

CHUNK_ROWS = 16_384  # records read on the driver per block handed to Ray Data
RAY_COLUMNS = ("id", "index", "text", "content_hash")  # what the workers need; "fields" stays behind


class _Embedder:
    """One model replica per Ray actor, built from a picklable factory."""

    def __init__(self, make_encoder: Any) -> None:
        self.encoder = make_encoder()

    def __call__(self, batch: Any) -> Any:
        import numpy as np

        from semantic_catalog.engine.offline.records import VectorRecord, vector_table

        vectors = self.encoder.encode([str(t) for t in batch.column("text").to_pylist()])
        records = [
            VectorRecord(str(i), str(x), str(h), self.encoder.name, self.encoder.dimension, np.asarray(v))
            for i, x, h, v in zip(
                batch.column("id").to_pylist(),
                batch.column("index").to_pylist(),
                batch.column("content_hash").to_pylist(),
                vectors,
            )
        ]
        return vector_table(records, self.encoder.dimension)


def embed_with_ray(
    input_path: str | Path,
    out_dir: str | Path,
    make_encoder: Any,
    model_name: str,
    batch_size: int = 64,
    address: str | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0,
    chunk_rows: int = CHUNK_ROWS,
) -> EmbedReport:
    """Embed what ``out_dir`` does not hold yet for ``model_name``; ``address`` None starts a local Ray.

    The driver reads the export once through ``records.read_records``, so a malformed record fails
    here exactly as on the local path (a ``BadFile`` naming the line or row), and the workers need
    no access to the file. It holds ``chunk_rows`` records at a time and puts each chunk into Ray's
    object store as one block; the trade-off: the texts still to embed sit in the object store
    until the job has run (Ray spills them to disk past its memory), not in the driver. Ray starts
    only once there is something to embed, and is shut down again (if it was started here) on any
    error.
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigurationError("--ray needs Ray Data: pip install 'ray[data]'.") from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = done_keys(out, model_name)
    report = EmbedReport(batch_size=batch_size)
    started = time.perf_counter()
    started_here = False
    blocks: list[Any] = []
    try:
        for chunk in chunked(unembedded(input_path, done, report), chunk_rows):
            if not blocks and not ray.is_initialized():
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
                started_here = True
            blocks.append(ray.put(pa.table({c: [str(r[c]) for r in chunk] for c in RAY_COLUMNS})))
            report.embedded += len(chunk)
        if blocks:
            vectors = ray.data.from_arrow_refs(blocks).map_batches(
                _Embedder,
                fn_constructor_kwargs={"make_encoder": make_encoder},
                batch_size=batch_size,
                batch_format="pyarrow",
                concurrency=workers,
                num_gpus=gpus_per_worker,
            )
            before = len(vector_parts(out))
            vectors.write_parquet(str(out))
            report.parts = len(vector_parts(out)) - before
    finally:
        if started_here:
            ray.shutdown()
    report.seconds = time.perf_counter() - started
    return report
