"""Cross-store analysis on the server (for catalogs small enough to hold in memory): category links,
same-product matches and substitutions from the index's stored vectors, saved as new runs."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from semantic_catalog.backends import get_encoder, get_store
from semantic_catalog.collections import require_searchable
from semantic_catalog.conf import semantic_settings
from semantic_catalog.crossstore.declaration import analysis_ready
from semantic_catalog.crossstore.results import RunReport, save_run
from semantic_catalog.engine.crossstore.analysis import KINDS, analysis_parameters, analyze_catalog, catalog_from_rows
from semantic_catalog.engine.crossstore.category_links import DEFAULT_LINK_THRESHOLD
from semantic_catalog.engine.crossstore.substitutions import DEFAULT_K, LEVELS
from semantic_catalog.engine.crossstore.trained_matcher import load_matcher
from semantic_catalog.indexes import SemanticIndex

__all__ = ["KINDS", "analyze"]


def analyze(
    index: SemanticIndex,
    kinds: Sequence[str] = KINDS,
    levels: Sequence[int] = LEVELS,
    k: int = DEFAULT_K,
    link_threshold: float = DEFAULT_LINK_THRESHOLD,
    match_threshold: float | None = None,
    dry_run: bool = False,
    matcher: str | None = None,
) -> list[RunReport]:
    """Compute and save the asked kinds. Substitutions use the links and matches computed here.
    ``matcher``: a trained matcher's folder (default: the index's entry in the MATCHERS setting, else
    the unsupervised scorer)."""
    if not analysis_ready(index):
        raise ImproperlyConfigured(
            f"{type(index).__name__}: cross-store analysis needs CrossStoreMixin with shop_field and category_field."
        )
    collection = require_searchable(index)
    encoder = get_encoder(collection.model)
    folder = matcher or semantic_settings.MATCHERS.get(index.name)
    scorer = load_matcher(folder, encoder.name, encoder.dimension) if folder and "matches" in kinds else None
    rows = [(str(obj.pk), index.analysis_data(obj)) for obj in index.get_queryset()]
    stored = get_store().fetch(collection.table, [pk for pk, _ in rows], with_vectors=True)
    catalog = catalog_from_rows(rows, {i: r.vector for i, r in stored.items()})  # type: ignore[arg-type]
    parameters = analysis_parameters(k, link_threshold, match_threshold, levels, scorer)
    results = analyze_catalog(catalog, encoder, kinds, levels, k, link_threshold, parameters["match_threshold"], scorer)
    now = timezone.now()
    return [
        save_run(index, kind, results[kind], encoder.name, now, parameters=parameters, dry_run=dry_run)
        for kind in ("links", "matches", "substitutions")
        if kind in results
    ]
