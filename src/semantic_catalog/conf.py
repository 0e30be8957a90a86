"""Settings: one dict, ``SEMANTIC_CATALOG``, merged over these defaults and read on every access
(so ``override_settings`` works in tests). Every key is documented in the README's settings table."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from semantic_catalog.engine.search.fusion import FUSIONS
from semantic_catalog.engine.search.pipeline import QueryLimits, QueryOptions

DEFAULTS: dict[str, Any] = {
    # Encoder backend: dotted path + options. With no "model", the bundled all-MiniLM-L6-v2 is used; on a CPU
    # it runs through its ONNX export (made once per machine; "backend": "torch" keeps torch).
    "ENCODER": {
        "BACKEND": "semantic_catalog.engine.encoders.SentenceTransformerEncoder",
        "OPTIONS": {},
    },
    # More encoders by name (a collection's "model"), so collections of another model keep serving
    # queries and receiving updates, e.g. the old model while a new one is rebuilt or imported.
    "ENCODERS": {},
    # Vector store backend. When OPTIONS has no "uri", DATA_DIR/"lancedb" is used.
    "VECTOR_STORE": {
        "BACKEND": "semantic_catalog.engine.stores.lancedb.LanceDBStore",
        "OPTIONS": {},
    },
    # Folder for the embedded store; defaults to BASE_DIR/"semantic_data" when BASE_DIR is set.
    "DATA_DIR": None,
    # Module name looked up in every installed app to discover SemanticIndex classes.
    "INDEX_MODULE": "semantic_indexes",
    # Sync: write outbox rows on save/delete (AUTO_SYNC) and enqueue a drain task at commit (ENQUEUE_DRAIN).
    # With ENQUEUE_DRAIN off, changes wait in the outbox for `semantic_sync` (cron) or the next enqueue.
    "AUTO_SYNC": True,
    "ENQUEUE_DRAIN": True,
    "SYNC_BATCH_SIZE": 128,
    # A row's own failures (its text cannot be built, the store refuses it alone) back off and give up
    # after MAX_ATTEMPTS; an outage of the store or the model never uses attempts up: drains retry it
    # with a backoff capped at OUTAGE_RETRY_MAX_SECONDS until it is back.
    "MAX_ATTEMPTS": 5,
    "RETRY_BASE_SECONDS": 5,
    "RETRY_MAX_SECONDS": 3600,
    "OUTAGE_RETRY_MAX_SECONDS": 300,
    # A drain's lease on its index: renewed after every batch and by a heartbeat while the drain runs,
    # so a killed worker's lease lapses after this; a drain that finds the index leased retries then.
    "LOCK_SECONDS": 30,
    # Status warns when changes have waited longer than this to reach the index (or a queued drain
    # has not started for this long).
    "STALE_EVENT_SECONDS": 600,
    # Compact the store's table after this many rows were written by drains in one process.
    "OPTIMIZE_AFTER_WRITES": 1000,
    # django-tasks backend alias and queue used for drain tasks.
    "TASK_BACKEND": "default",
    "TASK_QUEUE": "default",
    # Search limits and tuning.
    "DEFAULT_LIMIT": QueryLimits.default_limit,
    "MAX_LIMIT": QueryLimits.max_limit,
    "MAX_QUERY_LENGTH": QueryLimits.max_query_length,
    # The relevance window: offset + limit stay within it, and sorting by a field or counting facets
    # reads its rows (the best this many hits that are rows of the queryset), never the whole table.
    "MAX_RESULT_WINDOW": 1000,
    "HYBRID_CANDIDATES": QueryOptions.candidates,
    # How hybrid merges the two lists: "convex" (weighted normalised scores) or "rrf" (ranks only).
    # Chosen on the Home Depot dev queries (benchmarks/search_quality.py --tune).
    "HYBRID_FUSION": QueryOptions.fusion,
    "HYBRID_KEYWORD_WEIGHT": QueryOptions.keyword_weight,
    "RRF_K": QueryOptions.rrf_k,
    # A search hit is a "strong" match at this cosine to the query or when it contains every query word,
    # else "weak" (None: no signal). 0.45 suits the bundled model (benchmarks/match_calibration.py).
    "STRONG_MATCH_SIMILARITY": 0.45,
    # A query adapter file from `semantic-catalog adapt` (learned from judged queries), or None.
    "QUERY_ADAPTER": None,
    # Trained matchers (`semantic-catalog train-matcher`) by index name: {"products": "/srv/matchers/products"}.
    # semantic_analyze scores that index's match candidates with it; an index without one keeps match_score.
    "MATCHERS": {},
    "QUERY_CACHE_SIZE": 1024,
    # How long a process keeps using the collection it found active before asking SQL again.
    "COLLECTION_CACHE_SECONDS": 2.0,
    # DRF permission classes (dotted paths) per endpoint group.
    "SEARCH_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "STATUS_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "EXPORT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "IMPORT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # who may list and store labelled pairs (match / non-match) over HTTP: <index>/match-labels
    "LABEL_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # The largest upload the import endpoints take (bytes; 413 above it). Uploads stream to disk, so
    # Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not limit them.
    "MAX_UPLOAD_BYTES": 512 * 1024 * 1024,
    # LLM market segmentation (the segmentation wing): merged key by key over these defaults and checked
    # by `manage.py check` (semantic_catalog.E020). The README's settings table says what each key does.
    "SEGMENTATION": {
        "BASE_URL": "http://127.0.0.1:8088/v1",
        "MODEL": "qwen2.5-coder-1.5b-instruct",
        "API_KEY": "not-needed",
        "TEMPERATURE": 0.0,
        "PRODUCTS_PER_PROMPT": 40,
        "TAXONOMIES_PER_CONSOLIDATION": 20,
        "PRODUCTS_PER_REFINEMENT": 40,
        "MAX_RETRIES": 3,
        "CONCURRENCY": 4,
        "REQUESTS_PER_MINUTE": None,
        "TOKENS_PER_MINUTE": None,
        "CONTEXT_TOKENS": 32768,
        "MAX_OUTPUT_TOKENS": 4096,
        "REQUEST_TIMEOUT": 300.0,
        "PROMPTS_DIR": None,
        "LOG_STORAGE": None,
        "STORAGE_OPTIONS": {},
        "MAX_ITEMS": 20000,
        "PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    },
    # Temporal workflows for bulk indexing (the workflows wing; `pip install django-semantic-catalog[temporal]`):
    # the server, namespace and task queue that `semantic_temporal_worker` polls; DRAIN: True runs outbox
    # drains there too, as workflows, instead of tasks. Merged key by key; the README says what each does.
    "TEMPORAL": {
        "ADDRESS": "127.0.0.1:7233",
        "NAMESPACE": "default",
        "TASK_QUEUE": "semantic-catalog",
        "DRAIN": False,
        "BATCH_SIZE": 256,
        "MAX_ATTEMPTS": 5,
        "RETRY_SECONDS": 1.0,
        "HEARTBEAT_SECONDS": 60.0,
        "PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    },
}


_POSITIVE_SECONDS = ("LOCK_SECONDS", "OUTAGE_RETRY_MAX_SECONDS", "STALE_EVENT_SECONDS")


class SemanticSettings:
    """Attribute access to the merged settings; unknown keys in the user's dict are an error.

    Values are cached (they are read on every save) and the cache is dropped when Django's
    ``setting_changed`` fires for SEMANTIC_CATALOG (``override_settings``, pytest's ``settings``; see
    ``apps.reset_caches``).
    """

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def reload(self) -> None:
        self._cache = {}

    def _user(self) -> dict[str, Any]:
        user = getattr(django_settings, "SEMANTIC_CATALOG", {}) or {}
        unknown = sorted(set(user) - set(DEFAULTS))
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown SEMANTIC_CATALOG keys: {', '.join(unknown)}. Known keys: {', '.join(sorted(DEFAULTS))}."
            )
        return user

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        try:
            return self._cache[name]
        except KeyError:
            value = self._cache[name] = self._read(name)
            return value

    def _read(self, name: str) -> Any:
        value = self._user().get(name, DEFAULTS[name])
        if name in ("SEGMENTATION", "TEMPORAL"):  # checked key by key by their wings
            return {**DEFAULTS[name], **value} if isinstance(value, dict) else value
        if name in ("ENCODER", "VECTOR_STORE"):
            merged = dict(DEFAULTS[name])
            merged.update(value)
            merged["OPTIONS"] = dict(merged.get("OPTIONS") or {})
            return merged
        if name == "HYBRID_FUSION" and value not in FUSIONS:
            raise ImproperlyConfigured(f"SEMANTIC_CATALOG['HYBRID_FUSION'] must be 'convex' or 'rrf', not {value!r}.")
        if name == "HYBRID_KEYWORD_WEIGHT" and not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise ImproperlyConfigured(f"SEMANTIC_CATALOG['HYBRID_KEYWORD_WEIGHT'] must be from 0 to 1, not {value!r}.")
        if name == "STRONG_MATCH_SIMILARITY" and value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not -1 <= value <= 1
        ):
            raise ImproperlyConfigured(
                f"SEMANTIC_CATALOG['STRONG_MATCH_SIMILARITY'] must be a cosine from -1 to 1, or None, not {value!r}."
            )
        if name == "MATCHERS" and not (
            isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            raise ImproperlyConfigured(
                "SEMANTIC_CATALOG['MATCHERS'] must map index names to matcher folders, e.g. "
                f"{{'products': '/srv/matchers/products'}}, not {value!r}."
            )
        if name == "MAX_RESULT_WINDOW" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ImproperlyConfigured(
                f"SEMANTIC_CATALOG['MAX_RESULT_WINDOW'] must be a whole number of results, 1 or more, not {value!r}."
            )
        if name == "COLLECTION_CACHE_SECONDS" and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
        ):
            raise ImproperlyConfigured(
                f"SEMANTIC_CATALOG['COLLECTION_CACHE_SECONDS'] must be a number of seconds, 0 or more, not {value!r}."
            )
        if name == "MAX_UPLOAD_BYTES" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ImproperlyConfigured(
                f"SEMANTIC_CATALOG['MAX_UPLOAD_BYTES'] must be a whole number of bytes, 1 or more, not {value!r}."
            )
        if name in _POSITIVE_SECONDS and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ImproperlyConfigured(
                f"SEMANTIC_CATALOG['{name}'] must be a number of seconds greater than 0, not {value!r}."
            )
        return value

    @property
    def data_dir(self) -> str:
        """Where the embedded store lives unless its OPTIONS name a uri."""
        data_dir = self.DATA_DIR
        if data_dir:
            return str(data_dir)
        base_dir = getattr(django_settings, "BASE_DIR", None)
        if base_dir is None:
            raise ImproperlyConfigured(
                "Set SEMANTIC_CATALOG['DATA_DIR'] (or VECTOR_STORE OPTIONS 'uri'): there is no BASE_DIR to default to."
            )
        return str(base_dir / "semantic_data") if hasattr(base_dir, "__truediv__") else f"{base_dir}/semantic_data"


semantic_settings = SemanticSettings()
