"""Query adapters: a linear map, learned from judged queries, applied to query vectors before search.

A general sentence model ranks by topic; a catalog's judgments say which products answer which
queries. An adapter (``adapted = normalise(query_vector @ matrix)``, ``matrix`` starting at the
identity) moves queries toward the products judged relevant, without re-embedding the catalog: the
document vectors, the collection and the keyword side stay as they are, and applying it costs one
matrix product per query. Training needs torch (wherever the model runs); applying needs numpy only.

The loss is a listwise softmax over each batch's candidates (its queries' judged products plus a few
unjudged products the plain model ranks high), with the target shares proportional to gain squared,
plus an L2 penalty that keeps the matrix near the identity so a few thousand queries do not overfit.
benchmarks/search_quality.py measures it with cross-validation on the Home Depot dev queries.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.engine.encoders.base import normalise
from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.stores.base import VectorStore

FORMAT = 1


@dataclass(frozen=True)
class AdapterSettings:
    """Training settings; the defaults were chosen on one fold of the Home Depot dev queries."""

    epochs: int = 5
    l2: float = 1e-2  # penalty on (matrix - identity); lower fits the training queries more closely
    temperature: float = 0.05
    learning_rate: float = 1e-3
    batch_size: int = 64
    hard_negatives: int = 10  # unjudged products the plain model ranks highest, per query
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"Adapter {name} must be at least 1.")
        if self.hard_negatives < 0 or self.l2 < 0 or self.temperature <= 0 or self.learning_rate <= 0:
            raise ConfigurationError("Adapter hard_negatives and l2 must be >= 0; temperature and learning_rate > 0.")


@dataclass(frozen=True)
class QueryAdapter:
    """A learned (dimension x dimension) map for the query vectors of one model."""

    matrix: np.ndarray
    model: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        return int(self.matrix.shape[0])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Adapt one vector (shape (d,)) or a batch (shape (n, d)); results have unit length."""
        array = np.asarray(vectors, dtype=np.float32)
        if array.shape[-1] != self.dimension:
            raise ConfigurationError(
                f"The query adapter is for {self.dimension}-dimensional vectors of {self.model!r}, "
                f"got {array.shape[-1]} dimensions."
            )
        adapted = normalise(np.atleast_2d(array) @ self.matrix)
        return adapted[0] if array.ndim == 1 else adapted

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"format": FORMAT, "model": self.model, "info": self.info})
        with path.open("wb") as handle:  # a file object keeps numpy from appending ".npz"
            np.savez(handle, matrix=self.matrix.astype(np.float32), meta=np.array(meta))
        return path

    @classmethod
    def load(cls, path: str | Path) -> QueryAdapter:
        path = Path(path)
        if not path.exists():
            raise ConfigurationError(f"Query adapter {path}: no such file (make one with `semantic-catalog adapt`).")
        try:
            with np.load(path, allow_pickle=False) as data:
                matrix = np.asarray(data["matrix"], dtype=np.float32)
                meta = json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigurationError(f"Query adapter {path}: not an adapter file made by `adapt` ({exc}).") from None
        if meta.get("format") != FORMAT or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ConfigurationError(f"Query adapter {path}: unsupported format or a matrix that is not square.")
        return cls(matrix, str(meta["model"]), dict(meta.get("info") or {}))


@dataclass
class TrainingQuery:
    """One judged query: its plain vector, gains of judged ids, and unjudged ids ranked high."""

    vector: np.ndarray
    gains: dict[str, float]
    negatives: list[str]


def training_data(
    store: VectorStore,
    collection: str,
    query_vectors: Mapping[str, np.ndarray],
    gains: Mapping[str, Mapping[str, float]],
    hard_negatives: int = AdapterSettings.hard_negatives,
) -> tuple[dict[str, TrainingQuery], dict[str, np.ndarray]]:
    """Training queries (those with a positive gain) and the stored vectors of every id they name.

    Judged ids missing from the collection are dropped; hard negatives come from a plain vector search.
    """
    queries: dict[str, TrainingQuery] = {}
    for query_id, vector in query_vectors.items():
        judged = {doc: g for doc, g in gains.get(query_id, {}).items() if g >= 0}
        if not any(g > 0 for g in judged.values()):
            continue
        negatives: list[str] = []
        if hard_negatives:
            hits = store.vector_search(collection, vector, hard_negatives + len(judged))
            negatives = [h.id for h in hits if h.id not in judged][:hard_negatives]
        queries[query_id] = TrainingQuery(np.asarray(vector, dtype=np.float32), judged, negatives)
    wanted = sorted({doc for q in queries.values() for doc in [*q.gains, *q.negatives]})
    stored = store.fetch(collection, wanted, with_vectors=True)
    vectors = {doc: record.vector for doc, record in stored.items() if record.vector is not None}
    for query in queries.values():
        query.gains = {doc: g for doc, g in query.gains.items() if doc in vectors}
        query.negatives = [doc for doc in query.negatives if doc in vectors]
    return {q: t for q, t in queries.items() if any(g > 0 for g in t.gains.values())}, vectors


def train_query_adapter(
    queries: Sequence[TrainingQuery],
    doc_vectors: Mapping[str, np.ndarray],
    model: str,
    settings: AdapterSettings = AdapterSettings(),
) -> QueryAdapter:
    """Learn ``matrix = identity + A`` on the queries (see the module docstring for the loss)."""
    import torch

    if not queries:
        raise ConfigurationError("No judged query with a relevant product to learn from: check the judgments' ids.")
    dimension = len(queries[0].vector)
    ids = sorted(doc_vectors)
    row = {doc: i for i, doc in enumerate(ids)}
    documents = torch.from_numpy(np.stack([np.asarray(doc_vectors[d], dtype=np.float32) for d in ids]))
    delta = torch.zeros(dimension, dimension, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=settings.learning_rate)
    order = list(range(len(queries)))
    shuffle = random.Random(settings.seed).shuffle  # the only randomness: the loss and Adam are deterministic
    for _ in range(settings.epochs):
        shuffle(order)
        for start in range(0, len(order), settings.batch_size):
            batch = [queries[i] for i in order[start : start + settings.batch_size]]
            loss = _batch_loss(batch, documents, row, delta, settings) + settings.l2 * (delta**2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    matrix = (torch.eye(dimension) + delta.detach()).numpy()
    info = {**asdict(settings), "queries": len(queries), "documents": len(ids)}
    return QueryAdapter(matrix.astype(np.float32), model, info)


def _batch_loss(
    batch: Sequence[TrainingQuery], documents: Any, row: Mapping[str, int], delta: Any, settings: AdapterSettings
) -> Any:
    import torch

    candidates = sorted({row[d] for q in batch for d in [*q.gains, *q.negatives]})
    column = {r: j for j, r in enumerate(candidates)}
    plain = torch.from_numpy(np.stack([q.vector for q in batch]))
    adapted = plain + plain @ delta
    adapted = adapted / adapted.norm(dim=1, keepdim=True).clamp(min=1e-12)
    logits = adapted @ documents[candidates].T / settings.temperature
    target = torch.zeros_like(logits)
    for i, query in enumerate(batch):
        for doc, gain in query.gains.items():
            target[i, column[row[doc]]] = gain**2
    target = target / target.sum(dim=1, keepdim=True)
    return -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def out_of_fold_adapters(
    queries: Mapping[str, TrainingQuery],
    doc_vectors: Mapping[str, np.ndarray],
    model: str,
    count: int,
    settings: AdapterSettings = AdapterSettings(),
) -> dict[str, QueryAdapter]:
    """Cross-validation: each query id -> an adapter trained on the other ``count - 1`` folds only."""
    adapters: dict[str, QueryAdapter] = {}
    for held_out in folds(list(queries), count):
        held = set(held_out)
        others = [t for q, t in queries.items() if q not in held]
        adapters.update(dict.fromkeys(held_out, train_query_adapter(others, doc_vectors, model, settings)))
    return adapters


def folds(query_ids: Sequence[str], count: int, seed: int = 0) -> list[list[str]]:
    """Split query ids into ``count`` shuffled folds of near-equal size, for cross-validation."""
    if count < 2:
        raise ConfigurationError("Cross-validation needs at least 2 folds.")
    shuffled = sorted(query_ids)
    random.Random(seed).shuffle(shuffled)
    return [shuffled[k::count] for k in range(count)]
