"""A product matcher learned from a shop's labelled pairs, in place of the hand-weighted ``match_score``.

Two parts, both trained on the offline machine (``semantic-catalog train-matcher``):

- a logistic regression (scikit-learn) over the scorer's own features (``match_features``) and its score:
  it learns how much each signal counts in this catalog; its probabilities are calibrated by
  construction, and it is stored as plain numbers, so the web server scores with numpy alone;
- optionally a cross-encoder fine-tuned from the bundled MiniLM on the pairs' texts (``cross_encoder``):
  its probability is one more feature of the regression. Its scores for the regression's training are
  out-of-fold (each pair scored by a cross-encoder that never saw it), so the regression does not learn
  to trust a model on the pairs it memorised.

The threshold is the one with the best F1 over out-of-fold probabilities, and the report gives
precision / recall / F1 by k-fold cross-validation, each fold's threshold chosen on the other folds, next
to the unsupervised scorer's on the same labels. The result is a folder: ``matcher.json`` (versioned:
features, weights, threshold, the embedding model whose cosines it learned, the report) and, when used,
``cross-encoder/``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.engine.crossstore.labels import LabelledPair, summary
from semantic_catalog.engine.crossstore.product_matching import (
    DEFAULT_THRESHOLD,
    ProductRecord,
    match_features,
    match_score,
)
from semantic_catalog.engine.errors import BadFile, ConfigurationError, InvalidQuery

FORMAT = "semantic-catalog-matcher"
VERSION = 1
FILE = "matcher.json"
CROSS_ENCODER_DIR = "cross-encoder"
MIN_PER_CLASS = 10  # labelled pairs of each kind (same item, not the same item) training needs
DEFAULT_FOLDS = 5
REGULARISATION = 0.1  # LogisticRegression's C: 0.1 beat 1.0 out-of-fold on ProMapCz (benchmarks/matching_quality.py)
SIGNALS = tuple(match_features(ProductRecord("a", "1", "a"), ProductRecord("b", "2", "b"), 0.0))
CROSS_ENCODER_FEATURE = "cross_encoder"
Progress = Callable[[str], None]


def feature_row(features: Mapping[str, float]) -> list[float]:
    """The regression's inputs of one pair: every signal and the unsupervised score."""
    return [float(features[name]) for name in SIGNALS] + [match_score(features)]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _pushes(matrix: np.ndarray, mean: Sequence[float], scale: Sequence[float], coef: Sequence[float]) -> np.ndarray:
    """The standardised features times their weights: a logistic regression's log-odds, term by term."""
    return (matrix - np.asarray(mean)) / np.asarray(scale) * np.asarray(coef)


@dataclass
class TrainedMatcher:
    """A trained matcher as ``match_products`` uses it (a ``PairScorer``)."""

    model: str  # the embedding model whose cosines it learned
    dimension: int
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float
    labels: dict[str, int]
    report: dict[str, Any]
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    cross_encoder: Any = field(default=None, repr=False)  # a loaded CrossEncoder, or None

    @property
    def uses_cross_encoder(self) -> bool:
        return CROSS_ENCODER_FEATURE in self.features

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Each feature's push on the log-odds of the same item, against an average labelled pair."""
        return _pushes(matrix, self.mean, self.scale, self.coef)

    def matrix(self, pairs: Sequence[tuple[ProductRecord, ProductRecord]], features: Sequence[Mapping[str, float]]):
        rows = np.array([feature_row(f) for f in features], dtype=np.float64).reshape(len(features), len(SIGNALS) + 1)
        if not self.uses_cross_encoder:
            return rows
        from semantic_catalog.engine.crossstore.cross_encoder import pair_text, score_pairs

        texts = [(pair_text(a), pair_text(b)) for a, b in pairs]
        return np.column_stack([rows, score_pairs(self.cross_encoder, texts)])

    def score_pairs(
        self, pairs: Sequence[tuple[ProductRecord, ProductRecord]], features: Sequence[Mapping[str, float]]
    ) -> list[tuple[float, dict[str, float]]]:
        """(probability of the same item, reasons) per pair; reasons are the features' pushes on the
        log-odds (see ``contributions``), those of at least 0.01."""
        if not pairs:
            return []
        matrix = self.matrix(pairs, features)
        pushes = self.contributions(matrix)
        scores = _sigmoid(pushes.sum(axis=1) + self.intercept)
        return [
            (float(score), {n: round(float(v), 4) for n, v in zip(self.features, row) if abs(v) >= 0.01})
            for score, row in zip(scores, pushes)
        ]

    # -- the file ---------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cross_encoder")
        return {"format": FORMAT, "version": VERSION, **data}

    def save(self, folder: str | Path) -> Path:
        """Write the matcher folder; an existing matcher folder there is replaced, any other folder is refused."""
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / FILE).exists())):
            raise BadFile(f"{folder} exists and holds no matcher: choose a new folder for --out.")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            (staging / FILE).write_text(json.dumps(self.to_json(), indent=1))
            if self.cross_encoder is not None:
                self.cross_encoder.save(str(staging / CROSS_ENCODER_DIR))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder


def load_matcher(folder: str | Path, model: str | None = None, dimension: int | None = None) -> TrainedMatcher:
    """A matcher folder, checked against the embedding ``model`` and ``dimension`` whose vectors it will
    score (when given): a matcher learned on one model's cosines is refused for another's."""
    folder = Path(folder)
    try:
        data = json.loads((folder / FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"{folder}: no {FILE}; give a folder that train-matcher wrote.") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigurationError(f"{folder / FILE}: not JSON.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigurationError(f"{folder / FILE} is not a matcher file.")
    if data.get("version") != VERSION:
        raise ConfigurationError(
            f"{folder / FILE} has format version {data.get('version')!r}; this library reads version {VERSION}: "
            "train the matcher again with this version."
        )
    names = ("model", "dimension", "features", "mean", "scale", "coef", "intercept", "threshold", "labels", "report")
    try:
        matcher = TrainedMatcher(**{name: data[name] for name in names}, created_at=data.get("created_at", ""))
    except KeyError as exc:
        raise ConfigurationError(f"{folder / FILE} lacks {exc.args[0]!r}.") from None
    expected = [*SIGNALS, "score"] + ([CROSS_ENCODER_FEATURE] if matcher.uses_cross_encoder else [])
    sizes = {len(matcher.mean), len(matcher.scale), len(matcher.coef)}
    if matcher.features != expected or sizes != {len(expected)}:
        raise ConfigurationError(
            f"{folder / FILE} was trained on other features than this library computes: train it again."
        )
    if dimension is not None and matcher.dimension != dimension or model is not None and matcher.model != model:
        raise ConfigurationError(
            f"{folder} was trained on the cosines of {matcher.model!r} ({matcher.dimension} dimensions); these "
            f"vectors come from {model!r} ({dimension} dimensions). Train the matcher again on this model's vectors."
        )
    if matcher.uses_cross_encoder:
        from semantic_catalog.engine.crossstore.cross_encoder import load_cross_encoder

        if not (folder / CROSS_ENCODER_DIR).is_dir():
            raise ConfigurationError(f"{folder}: the matcher uses a cross-encoder but {CROSS_ENCODER_DIR}/ is missing.")
        matcher.cross_encoder = load_cross_encoder(folder / CROSS_ENCODER_DIR)
    return matcher


# -- training ----------------------------------------------------------------------------------------------


@dataclass
class Examples:
    """Labelled pairs as training reads them."""

    pairs: list[tuple[ProductRecord, ProductRecord]]
    matrix: np.ndarray  # feature_row per pair
    labels: np.ndarray  # bool


def examples(
    records: Mapping[str, ProductRecord], vectors: Mapping[str, np.ndarray], labels: Sequence[LabelledPair]
) -> Examples:
    """The features of every labelled pair; ``InvalidQuery`` naming labels of products the catalog (or
    its vectors) lacks."""
    unknown = sorted({i for p in labels for i in (p.left, p.right) if i not in records or i not in vectors})
    if unknown:
        raise InvalidQuery(
            f"{len(unknown)} labelled products are not in the catalog export (or have no vector): "
            f"{summary(unknown)}. Export the catalog and its labels together (semantic_export)."
        )
    pairs = [(records[p.left], records[p.right]) for p in labels]
    rows = []
    for a, b in pairs:
        cosine = float(np.dot(np.asarray(vectors[a.id], dtype=np.float32), np.asarray(vectors[b.id], dtype=np.float32)))
        rows.append(feature_row(match_features(a, b, cosine)))
    return Examples(pairs, np.array(rows, dtype=np.float64), np.array([p.label for p in labels], dtype=bool))


def check_trainable(labels: np.ndarray, folds: int) -> None:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InvalidQuery(f"folds must be a whole number of at least 2, not {folds!r}.")
    same, other = int(labels.sum()), int((~labels).sum())
    needed = max(MIN_PER_CLASS, folds)
    if min(same, other) < needed:
        raise InvalidQuery(
            f"Training needs at least {needed} labelled pairs of each kind (the same item, and not the same "
            f"item); these labels have {same} and {other}. Confirm or reject more proposed matches (admin, API "
            "or a label file) and export again."
        )


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "Training a matcher needs scikit-learn: pip install 'django-semantic-catalog[train]'."
        ) from None


def fold_indices(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    _require_sklearn()
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


def fit_regression(matrix: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """mean, scale, coef and intercept of a standardised logistic regression (constant features kept at scale 1)."""
    from sklearn.linear_model import LogisticRegression

    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=REGULARISATION, max_iter=5000).fit((matrix - mean) / scale, labels)
    return {
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": model.coef_[0].tolist(),
        "intercept": float(model.intercept_[0]),
    }


def _predict(fitted: Mapping[str, Any], matrix: np.ndarray) -> np.ndarray:
    pushes = _pushes(matrix, fitted["mean"], fitted["scale"], fitted["coef"])
    return _sigmoid(pushes.sum(axis=1) + fitted["intercept"])


def prf(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    true_positive = int((predicted & labels).sum())
    precision = true_positive / predicted.sum() if predicted.sum() else 0.0
    recall = true_positive / labels.sum() if labels.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(float(precision), 4), "recall": round(float(recall), 4), "f1": round(float(f1), 4)}


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold with the best F1 (the highest of equals: fewer false matches)."""
    candidates = np.unique(scores)
    f1 = [prf(scores >= t, labels)["f1"] for t in candidates]
    best = max(f1)
    return float(max(t for t, value in zip(candidates, f1) if value == best))


def cross_validated(scores: np.ndarray, labels: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Precision / recall / F1 of out-of-fold ``scores``, each fold's threshold chosen on the other folds
    (so no pair's label picks its own threshold)."""
    predicted = np.zeros(len(labels), dtype=bool)
    for train, test in folds:
        predicted[test] = scores[test] >= best_threshold(scores[train], labels[train])
    return prf(predicted, labels)


def out_of_fold(matrix: np.ndarray, labels: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    scores = np.zeros(len(labels))
    for train, test in folds:
        scores[test] = _predict(fit_regression(matrix[train], labels[train]), matrix[test])
    return scores


def cross_encoder_out_of_fold(
    data: Examples, folds: Sequence[tuple[np.ndarray, np.ndarray]], epochs: int, seed: int, progress: Progress | None
) -> np.ndarray:
    """Each pair's cross-encoder probability from a cross-encoder trained on the other folds."""
    from semantic_catalog.engine.crossstore.cross_encoder import pair_text, score_pairs, train_cross_encoder

    texts = [(pair_text(a), pair_text(b)) for a, b in data.pairs]
    scores = np.zeros(len(texts))
    for number, (train, test) in enumerate(folds, start=1):
        if progress:
            progress(f"cross-encoder fold {number} of {len(folds)}: training on {len(train)} pairs")
        model = train_cross_encoder(
            [texts[i] for i in train], data.labels[train].tolist(), epochs, seed, progress is not None
        )
        scores[test] = score_pairs(model, [texts[i] for i in test])
    return scores


def evaluate_labels(
    data: Examples, folds: int = DEFAULT_FOLDS, cross_encoder: bool = True, epochs: int = 4, seed: int = 0,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The cross-validated report, the regression's inputs (with the out-of-fold cross-encoder column when
    used) and its out-of-fold probabilities."""
    check_trainable(data.labels, folds)
    splits = fold_indices(data.labels, folds, seed)
    unsupervised = data.matrix[:, -1]
    report: dict[str, Any] = {
        "labels": {"pairs": len(data.labels), "same": int(data.labels.sum()), "different": int((~data.labels).sum())},
        "folds": folds,
        "unsupervised": {"threshold": DEFAULT_THRESHOLD, **prf(unsupervised >= DEFAULT_THRESHOLD, data.labels)},
        "unsupervised_tuned": cross_validated(unsupervised, data.labels, splits),
    }
    started = time.perf_counter()
    scores = out_of_fold(data.matrix, data.labels, splits)
    report["classifier"] = cross_validated(scores, data.labels, splits)
    matrix = data.matrix
    if cross_encoder:
        column = cross_encoder_out_of_fold(data, splits, epochs, seed, progress)
        report["cross_encoder_alone"] = cross_validated(column, data.labels, splits)
        matrix = np.column_stack([data.matrix, column])
        scores = out_of_fold(matrix, data.labels, splits)
        report["classifier_cross_encoder"] = cross_validated(scores, data.labels, splits)
    report["cross_validation_seconds"] = round(time.perf_counter() - started, 1)
    return report, matrix, scores


def train_matcher(
    records: Mapping[str, ProductRecord],
    vectors: Mapping[str, np.ndarray],
    labels: Sequence[LabelledPair],
    model: str,
    folds: int = DEFAULT_FOLDS,
    cross_encoder: bool = True,
    epochs: int = 4,
    seed: int = 0,
    progress: Progress | None = None,
) -> TrainedMatcher:
    """Cross-validate on ``labels`` (the report), then fit on all of them: the regression, the
    cross-encoder when asked, and the threshold with the best out-of-fold F1."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InvalidQuery(f"epochs must be a whole number of at least 1, not {epochs!r}.")
    data = examples(records, vectors, labels)
    dimension = len(next(iter(vectors.values())))
    report, matrix, scores = evaluate_labels(data, folds, cross_encoder, epochs, seed, progress)
    started = time.perf_counter()
    fitted = fit_regression(matrix, data.labels)
    trained = None
    if cross_encoder:
        from semantic_catalog.engine.crossstore.cross_encoder import pair_text, train_cross_encoder

        if progress:
            progress(f"cross-encoder: training on all {len(data.labels)} pairs")
        texts = [(pair_text(a), pair_text(b)) for a, b in data.pairs]
        trained = train_cross_encoder(texts, data.labels.tolist(), epochs, seed, progress is not None)
    report["final_training_seconds"] = round(time.perf_counter() - started, 1)
    features = [*SIGNALS, "score"] + ([CROSS_ENCODER_FEATURE] if cross_encoder else [])
    return TrainedMatcher(
        model=model,
        dimension=int(dimension),
        features=features,
        **fitted,
        threshold=best_threshold(scores, data.labels),
        labels=report["labels"],
        report=report,
        cross_encoder=trained,
    )
