"""Semantic Catalog: a semantic layer (index, search, recommend) for Django catalogs.

The Django-free core lives in ``semantic_catalog.engine``; the Django app is this package.
Public Django-side helpers (``register``, ``mark_dirty``) are importable from ``semantic_catalog.api_helpers``
lazily, so importing this package never requires Django settings.
"""

__version__ = "0.1.0"
