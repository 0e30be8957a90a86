"""The configured encoder and vector store, built once per configuration and process."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import semantic_settings
from .engine.encoders.base import Encoder
from .engine.errors import ConfigurationError
from .engine.loading import load_backend
from .engine.stores.base import VectorStore

_cache: dict[str, Any] = {}
_lock = threading.Lock()


class BackendImproperlyConfigured(ImproperlyConfigured):
    """A backend in SEMANTIC_CATALOG could not be loaded."""


def _build(setting: str, base: type, defaults: dict[str, Any]) -> Any:
    config = getattr(semantic_settings, setting)
    options = {**defaults, **config["OPTIONS"]}
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


def get_encoder() -> Encoder:
    """The encoder every index uses (loaded lazily: torch is imported on the first encode)."""
    return _build("ENCODER", Encoder, {})


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


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting == "SEMANTIC_CATALOG":
        from .search import clear_query_cache

        clear_query_cache()
