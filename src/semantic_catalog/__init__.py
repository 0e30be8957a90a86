"""Semantic Catalog: a semantic layer (index, search, recommend) for Django catalogs.

The Django-free core lives in ``semantic_catalog.engine``; the Django app is this package
(``semantic_catalog.indexes.SemanticIndex``, ``semantic_catalog.registry``, ``semantic_catalog.sync.mark_dirty``).
Importing this package itself needs neither Django settings nor torch.
"""

__version__ = "0.1.0"
