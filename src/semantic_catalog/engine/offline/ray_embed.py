"""The embed job on Ray Data: the same input, skip rule and output columns as ``embedding.embed_file``,
spread over a local Ray or an existing cluster (one model replica per worker, GPUs when present)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.offline.embedding import EmbedReport, done_keys
from semantic_catalog.engine.offline.records import count_records, file_format


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
) -> EmbedReport:
    """Embed what ``out_dir`` does not hold yet for ``model_name``; ``address`` None starts a local Ray."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigurationError("--ray needs Ray Data: pip install 'ray[data]'.") from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = done_keys(out, model_name)
    report = EmbedReport(total=count_records(input_path), batch_size=batch_size)
    started = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    path = str(Path(input_path).resolve())
    dataset = ray.data.read_json(path, lines=True) if file_format(path) == "jsonl" else ray.data.read_parquet(path)
    dataset = dataset.select_columns(["id", "index", "text", "content_hash"])
    if done:
        dataset = dataset.filter(lambda row: (str(row["id"]), row["content_hash"]) not in done)
    vectors = dataset.map_batches(
        _Embedder,
        fn_constructor_kwargs={"make_encoder": make_encoder},
        batch_size=batch_size,
        batch_format="pyarrow",
        concurrency=workers,
        num_gpus=gpus_per_worker,
    )
    try:
        vectors.write_parquet(str(out))
    finally:
        if started_here:
            ray.shutdown()
    report.embedded = len(done_keys(out, model_name)) - len(done)
    report.skipped = report.total - report.embedded
    report.seconds = time.perf_counter() - started
    return report
