"""The configured encoder and vector store, built once per configuration and process."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.errors import ConfigurationError, SemanticCatalogError
from semantic_catalog.engine.loading import load_backend
from semantic_catalog.engine.search.query_adapter import QueryAdapter
from semantic_catalog.engine.stores.base import VectorStore

_cache: dict[str, Any] = {}
_lock = threading.Lock()


class BackendImproperlyConfigured(ImproperlyConfigured):
    """A backend in SEMANTIC_CATALOG could not be loaded."""


class EncoderUnavailable(SemanticCatalogError):
    """A collection's model is not configured on this server."""


def _build(setting: str, base: type, defaults: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
    config = config or getattr(semantic_settings, setting)
    options = {**defaults, **(config.get("OPTIONS") or {})}
    key = setting + json.dumps([config["BACKEND"], options], sort_keys=True, default=str)
    instance = _cache.get(key)
    if instance is None:
        with _lock:
            instance = _cache.get(key)
            if instance is None:
                try:
                    instance = load_backend(config["BACKEND"], base, options)
                except ConfigurationError as exc:
                    raise BackendImproperlyConfigured(f"SEMANTIC_CATALOG[{setting!r}]: {exc}") from exc
                _cache[key] = instance
    return instance


def get_encoder(name: str | None = None) -> Encoder:
    """The configured ENCODER, or the one named ``name`` (ENCODER itself or a key of ENCODERS).

    Models load lazily: torch is imported on the first encode, not here.
    """
    default = _build("ENCODER", Encoder, {})
    if name is None or name == default.name:
        return default
    config = semantic_settings.ENCODERS.get(name)
    if config is None:
        raise EncoderUnavailable(
            f"No encoder named {name!r}: ENCODER is {default.name!r}; add {name!r} to SEMANTIC_CATALOG['ENCODERS'] "
            "to keep using its collections, or rebuild them with the current ENCODER."
        )
    return _build("ENCODERS", Encoder, {"name": name}, {"BACKEND": config["BACKEND"], "OPTIONS": config.get("OPTIONS")})


def get_query_adapter(model: str) -> QueryAdapter | None:
    """The QUERY_ADAPTER for query vectors of ``model``; None when none is set or it is for another model.

    An adapter trained for a model that no configured encoder has is a configuration error, so a
    changed ENCODER cannot silently leave an old adapter unused.
    """
    path = semantic_settings.QUERY_ADAPTER
    if not path:
        return None
    key = f"QUERY_ADAPTER:{path}"
    adapter = _cache.get(key)
    if adapter is None:
        try:
            adapter = QueryAdapter.load(path)
        except ConfigurationError as exc:
            raise BackendImproperlyConfigured(f"SEMANTIC_CATALOG['QUERY_ADAPTER']: {exc}") from exc
        if adapter.model not in available_encoder_names():
            raise BackendImproperlyConfigured(
                f"SEMANTIC_CATALOG['QUERY_ADAPTER'] {path} was trained for model {adapter.model!r}, which no "
                f"configured encoder has ({', '.join(sorted(available_encoder_names()))}); retrain it or remove it."
            )
        _cache[key] = adapter
    return adapter if adapter.model == model else None


def available_encoder_names() -> set[str]:
    return {get_encoder().name, *semantic_settings.ENCODERS}


def get_store() -> VectorStore:
    """The vector store; the LanceDB default lives under DATA_DIR/lancedb."""
    config = semantic_settings.VECTOR_STORE
    defaults: dict[str, Any] = {}
    if config["BACKEND"].endswith("LanceDBStore") and "uri" not in config["OPTIONS"]:
        defaults["uri"] = os.path.join(semantic_settings.data_dir, "lancedb")
    return _build("VECTOR_STORE", VectorStore, defaults)


def reset_backends() -> None:
    """Forget built backends (tests, or after changing settings at run time)."""
    _cache.clear()
