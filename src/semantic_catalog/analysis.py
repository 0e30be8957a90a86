"""Cross-store analysis on the server (for catalogs small enough to hold in memory): category links,
same-product matches and substitutions from the index's stored vectors, saved as new runs."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from .backends import get_encoder, get_store
from .collections import require_searchable
from .engine.cross_store import KINDS, analyze_catalog, catalog_from_rows
from .engine.product_matching import DEFAULT_THRESHOLD
from .engine.substitutions import LEVELS
from .indexes import SemanticIndex
from .results import RunReport, save_run

__all__ = ["KINDS", "analyze"]


def analyze(
    index: SemanticIndex,
    kinds: Sequence[str] = KINDS,
    levels: Sequence[int] = LEVELS,
    k: int = 5,
    link_threshold: float = 0.6,
    match_threshold: float = DEFAULT_THRESHOLD,
    dry_run: bool = False,
) -> list[RunReport]:
    """Compute and save the asked kinds. Substitutions use the links and matches computed here."""
    if not index.analysis_ready:
        raise ImproperlyConfigured(f"{type(index).__name__}: set store_field and category_field for analysis.")
    collection = require_searchable(index)
    encoder = get_encoder(collection.encoder)
    rows = [(str(obj.pk), index.analysis_data(obj)) for obj in index.get_queryset()]
    stored = get_store().fetch(collection.table, [pk for pk, _ in rows], with_vectors=True)
    catalog = catalog_from_rows(rows, {i: r.vector for i, r in stored.items()})  # type: ignore[arg-type]
    parameters = {"k": k, "link_threshold": link_threshold, "match_threshold": match_threshold, "levels": list(levels)}
    results = analyze_catalog(catalog, encoder, kinds, levels, k, link_threshold, match_threshold)
    now = timezone.now()
    return [
        save_run(index, kind, results[kind], encoder.name, now, parameters=parameters, dry_run=dry_run)
        for kind in ("links", "matches", "substitutions")
        if kind in results
    ]
