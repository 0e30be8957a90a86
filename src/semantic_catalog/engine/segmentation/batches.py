"""What the stages share: stable ``P_<n>`` labels, one-line item texts, batch planning that shrinks a batch
until its prompt fits the model's context, and the id checks of an answer."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
SPACES = re.compile(r"\s+")


def product_label(position: int) -> str:
    """The stable id of the run's item at ``position`` (0-based) in every prompt: P_1, P_2, ..."""
    return f"P_{position + 1}"


def segment_label(position: int) -> str:
    return f"S_{position + 1}"


def one_line(text: str, max_chars: int) -> str:
    """The text on one line, cut to ``max_chars`` (a prompt line per item)."""
    flat = SPACES.sub(" ", text).strip()
    return flat if len(flat) <= max_chars else flat[: max(1, max_chars - 1)].rstrip() + "…"


def normalize_name(name: str) -> str:
    """A segment name's identity for merging: case, accents, punctuation and spacing ignored."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or name
    return " ".join(re.findall(r"\w+", folded.lower()))


def plan_batches(items: Sequence[T], size: int, fits: Callable[[Sequence[T]], bool]) -> list[list[T]]:
    """Chunks of ``size``, each halved until ``fits`` accepts it (a single item that does not fit stays alone:
    the caller decides what that means)."""
    planned: list[list[T]] = []

    def place(batch: list[T]) -> None:
        if len(batch) > 1 and not fits(batch):
            middle = len(batch) // 2
            place(batch[:middle])
            place(batch[middle:])
        else:
            planned.append(batch)

    for start in range(0, len(items), max(1, size)):
        place(list(items[start : start + size]))
    return planned


def id_problems(expected: Sequence[str], answered: Sequence[str]) -> list[str]:
    """Missing, duplicated and unknown product ids of an answer, each named."""
    counts = Counter(answered)
    wanted = set(expected)
    problems = []
    if missing := [label for label in expected if label not in counts]:
        problems.append(f"missing product ids {', '.join(missing)} (every product must be assigned)")
    if duplicated := [label for label, n in counts.items() if n > 1 and label in wanted]:
        problems.append(f"duplicated product ids {', '.join(duplicated)} (assign each product once)")
    if unknown := [label for label in counts if label not in wanted]:
        problems.append(f"unknown product ids {', '.join(unknown)} (use only the ids listed)")
    return problems
