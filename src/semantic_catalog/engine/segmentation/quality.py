"""How well segments agree with known classes (a classes x segments count table): NMI, ARI and harmonic
purity, in numpy so the library needs no scikit-learn. The run report's confusion table and the
segmentation benchmarks use them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def contingency(truth: Sequence[str], predicted: Sequence[str]) -> np.ndarray:
    """The classes x segments count table of two labelings of the same items."""
    classes = {label: row for row, label in enumerate(dict.fromkeys(truth))}
    segments = {label: column for column, label in enumerate(dict.fromkeys(predicted))}
    table = np.zeros((len(classes), len(segments)), dtype=np.int64)
    for label, segment in zip(truth, predicted, strict=True):
        table[classes[label], segments[segment]] += 1
    return table


def agreement(table: np.ndarray) -> dict[str, float]:
    """NMI (arithmetic normalisation, scikit-learn's default), ARI and harmonic purity (of purity and
    inverse purity, as TopicGPT reports it) of a classes x clusters count table; {} when it is empty."""
    counts = np.asarray(table, dtype=np.float64)
    n = counts.sum()
    if n == 0:
        return {}
    rows, cols = counts.sum(axis=1) / n, counts.sum(axis=0) / n
    joint = counts / n
    nonzero = joint > 0
    mutual = float((joint[nonzero] * np.log(joint[nonzero] / np.outer(rows, cols)[nonzero])).sum())
    entropy_rows = float(-(rows[rows > 0] * np.log(rows[rows > 0])).sum())
    entropy_cols = float(-(cols[cols > 0] * np.log(cols[cols > 0])).sum())
    mean_entropy = (entropy_rows + entropy_cols) / 2
    nmi = 1.0 if entropy_rows == entropy_cols == 0 else (mutual / mean_entropy if mean_entropy > 0 else 0.0)

    def pairs(x: np.ndarray | float) -> np.ndarray | float:
        return x * (x - 1) / 2

    index = float(pairs(counts).sum())
    row_pairs, col_pairs = float(pairs(counts.sum(axis=1)).sum()), float(pairs(counts.sum(axis=0)).sum())
    expected = row_pairs * col_pairs / float(pairs(n)) if n > 1 else 0.0
    maximum = (row_pairs + col_pairs) / 2
    ari = 1.0 if maximum == expected else (index - expected) / (maximum - expected)
    purity = float(counts.max(axis=0).sum() / n)
    inverse = float(counts.max(axis=1).sum() / n)
    harmonic = 2 * purity * inverse / (purity + inverse) if purity + inverse else 0.0
    return {
        "nmi": round(max(0.0, min(1.0, nmi)), 4),
        "ari": round(ari, 4),
        "purity": round(purity, 4),
        "inverse_purity": round(inverse, 4),
        "harmonic_purity": round(harmonic, 4),
    }
