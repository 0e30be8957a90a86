"""Greedy one-to-one assignment of scored pairs (category links, product matches)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar


class Pair(Protocol):
    @property
    def source(self) -> str: ...

    @property
    def target(self) -> str: ...


P = TypeVar("P", bound=Pair)


def one_to_one(pairs: Iterable[P]) -> list[P]:
    """Keep each pair whose source and target are both still free, in the given (best-first) order.

    Greedy rather than optimal: simple, deterministic, and for well-separated scores the same."""
    used_source: set[str] = set()
    used_target: set[str] = set()
    chosen = []
    for pair in pairs:
        if pair.source not in used_source and pair.target not in used_target:
            chosen.append(pair)
            used_source.add(pair.source)
            used_target.add(pair.target)
    return chosen
