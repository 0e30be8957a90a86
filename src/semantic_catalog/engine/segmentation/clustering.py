"""embedding_first's cluster stage: k-means over the items' (normalised) vectors, the number of clusters given
or chosen by silhouette, and each item's margin between its two nearest centroids (small: the LLM arbitrates).

scikit-learn is used when it is installed (it is not a dependency); otherwise a small numpy k-means++ with the
same contract, so results are deterministic for a given seed either way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semantic_catalog.engine.errors import SegmentationInputError
from semantic_catalog.engine.segmentation.types import SegmentationConfig

SILHOUETTE_SAMPLE = 2000  # silhouette is quadratic: scored on at most this many items


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # cluster of each item, 0..k-1, clusters ordered by size (largest first)
    centroids: np.ndarray  # (k, dim), unit length
    margins: np.ndarray  # (d2 - d1) / d2 per item, cosine distances to the two nearest centroids
    distances: np.ndarray  # cosine distance of each item to its own centroid
    silhouette: dict[int, float]  # k -> score, for every k tried (empty when k was given)


def check_vectors(vectors: Any, n_items: int) -> np.ndarray:
    """The vectors as a float (n_items, dim) array of unit rows; SegmentationInputError for anything else."""
    if vectors is None:
        raise SegmentationInputError(
            'mode "embedding_first" needs the items\' vectors (an array with one row per item); '
            'the index has none: build its vectors first, or use mode "full".'
        )
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise SegmentationInputError("the vectors are not a numeric array (one row of numbers per item).") from None
    if array.ndim != 2 or array.shape[0] != n_items or array.shape[1] < 1:
        raise SegmentationInputError(
            f"the vectors have shape {tuple(array.shape)}; expected ({n_items}, <dimension>): one row per item."
        )
    if not np.isfinite(array).all():
        raise SegmentationInputError("the vectors contain NaN or infinite values.")
    norms = np.linalg.norm(array, axis=1)
    if (empty := np.flatnonzero(norms == 0)).size:
        raise SegmentationInputError(f"{empty.size} vector(s) are all zeros (item positions {empty[:10].tolist()}).")
    return array / norms[:, None]


def check_range(config: SegmentationConfig, n_items: int, distinct: int) -> list[int]:
    """The numbers of clusters to try; SegmentationInputError when they make no sense for these items."""
    if config.segments is not None:
        if config.segments < 2:
            raise SegmentationInputError(f"segments must be at least 2 (got {config.segments}).")
        if config.segments > n_items:
            raise SegmentationInputError(f"{config.segments} segments asked for {n_items} item(s): more than items.")
        if config.segments > distinct:
            raise SegmentationInputError(
                f"{config.segments} segments asked but the vectors have only {distinct} distinct value(s)."
            )
        return [config.segments]
    low, high = config.min_segments, config.max_segments
    if low < 2 or high < low:
        raise SegmentationInputError(
            f"the segment range {low}..{high} makes no sense; give 2 <= min_segments <= max_segments."
        )
    usable = min(n_items - 1, distinct)  # silhouette needs at least one item more than clusters
    if low > usable:
        raise SegmentationInputError(
            f"the segment range {low}..{high} needs more items: {n_items} item(s) with {distinct} distinct "
            f"vector(s) allow at most {max(usable, 0)} segments chosen by silhouette."
        )
    return list(range(low, min(high, usable) + 1))


def cluster(vectors: np.ndarray, config: SegmentationConfig) -> Clustering:
    """k-means for each candidate k, the best silhouette kept (the given k when there is only one)."""
    distinct = len(np.unique(np.round(vectors, 9), axis=0))
    candidates = check_range(config, len(vectors), distinct)
    scores: dict[int, float] = {}
    best: tuple[float, np.ndarray] | None = None
    for k in candidates:
        labels = _kmeans(vectors, k, config.seed)
        if len(candidates) == 1:
            best = (0.0, labels)
            break
        scores[k] = _silhouette(vectors, labels, config.seed)
        if best is None or scores[k] > best[0]:
            best = (scores[k], labels)
    assert best is not None
    return _describe(vectors, best[1], scores)


def _describe(vectors: np.ndarray, raw: np.ndarray, scores: dict[int, float]) -> Clustering:
    sizes = np.bincount(raw)
    order = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] > 0]
    remap = np.full(len(sizes), -1)
    remap[order] = np.arange(len(order))
    labels = remap[raw]
    centroids = np.stack([vectors[labels == c].mean(axis=0) for c in range(len(order))])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    distances = 1.0 - vectors @ centroids.T  # cosine distance
    nearest = np.sort(distances, axis=1)
    d1, d2 = nearest[:, 0], nearest[:, 1]
    margins = np.where(d2 > 0, (d2 - d1) / np.maximum(d2, 1e-12), 0.0)
    own = distances[np.arange(len(labels)), labels]
    return Clustering(labels=labels, centroids=centroids, margins=margins, distances=own, silhouette=scores)


def _kmeans(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        return _numpy_kmeans(vectors, k, seed)
    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(vectors)


def _silhouette(vectors: np.ndarray, labels: np.ndarray, seed: int) -> float:
    if len(np.unique(labels)) < 2:
        return -1.0
    try:
        from sklearn.metrics import silhouette_score
    except ImportError:
        return _numpy_silhouette(vectors, labels, seed)
    size = min(len(vectors), SILHOUETTE_SAMPLE)
    return float(silhouette_score(vectors, labels, metric="cosine", sample_size=size, random_state=seed))


def _numpy_kmeans(vectors: np.ndarray, k: int, seed: int, n_init: int = 4, iterations: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding, the lowest inertia of ``n_init`` starts."""
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray] | None = None
    for _ in range(n_init):
        centers = [vectors[rng.integers(len(vectors))]]
        for _ in range(1, k):
            d = np.min(((vectors[:, None, :] - np.array(centers)[None]) ** 2).sum(-1), axis=1)
            total = d.sum()
            pick = rng.choice(len(vectors), p=d / total) if total > 0 else rng.integers(len(vectors))
            centers.append(vectors[pick])
        c = np.array(centers)
        labels = np.zeros(len(vectors), dtype=int)
        for _ in range(iterations):
            labels = (((vectors[:, None, :] - c[None]) ** 2).sum(-1)).argmin(axis=1)
            new = np.array([vectors[labels == j].mean(0) if (labels == j).any() else c[j] for j in range(k)])
            if np.allclose(new, c):
                break
            c = new
        inertia = float(((vectors - c[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels)
    assert best is not None
    return best[1]


def _numpy_silhouette(vectors: np.ndarray, labels: np.ndarray, seed: int) -> float:
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(vectors), size=min(len(vectors), SILHOUETTE_SAMPLE), replace=False)
    x, y = vectors[pick], labels[pick]
    d = 1.0 - x @ x.T
    scores = []
    for i in range(len(x)):
        same = y == y[i]
        if same.sum() < 2:
            scores.append(0.0)
            continue
        a = d[i, same].sum() / (same.sum() - 1)
        b = min(d[i, y == c].mean() for c in np.unique(y) if c != y[i])
        scores.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(scores))


def samples(clustering: Clustering, size: int) -> list[list[int]]:
    """Item positions shown for each cluster: spread evenly from the centroid outwards (its core and its edge)."""
    chosen = []
    for c in range(len(clustering.centroids)):
        members = np.flatnonzero(clustering.labels == c)
        ordered = members[np.argsort(clustering.distances[members], kind="stable")]
        if len(ordered) > size:
            ordered = ordered[np.unique(np.linspace(0, len(ordered) - 1, size).round().astype(int))]
        chosen.append([int(i) for i in ordered])
    return chosen


def uncertain(clustering: Clustering, threshold: float) -> Sequence[int]:
    """Positions of the items whose two nearest centroids are almost as near (the LLM arbitrates them)."""
    return [int(i) for i in np.flatnonzero(clustering.margins < threshold)]
