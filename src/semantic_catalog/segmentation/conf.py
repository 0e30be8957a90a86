"""SEMANTIC_CATALOG["SEGMENTATION"]: checked key by key (``manage.py check`` reports the same messages as
semantic_catalog.E020) and turned into the engine's ``SegmentationConfig``."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from semantic_catalog.conf import DEFAULTS, semantic_settings
from semantic_catalog.engine.errors import InvalidQuery
from semantic_catalog.engine.segmentation.types import SegmentationConfig

_WHOLE = {  # key: smallest value
    "PRODUCTS_PER_PROMPT": 1,
    "TAXONOMIES_PER_CONSOLIDATION": 2,
    "PRODUCTS_PER_REFINEMENT": 1,
    "MAX_RETRIES": 0,
    "CONCURRENCY": 1,
    "CONTEXT_TOKENS": 256,
    "MAX_OUTPUT_TOKENS": 16,
    "MAX_ITEMS": 1,
}
_OPTIONAL_WHOLE = ("REQUESTS_PER_MINUTE", "TOKENS_PER_MINUTE")
_TEXT = ("BASE_URL", "MODEL", "API_KEY")
MAX_TEMPERATURE = 2.0


def problems(value: Any) -> list[str]:
    """What is wrong with a SEGMENTATION setting (already merged over the defaults), one line each."""
    name = "SEMANTIC_CATALOG['SEGMENTATION']"
    if not isinstance(value, dict):
        return [f"{name} must be a dict of settings, not {type(value).__name__}."]
    found: list[str] = []
    unknown = sorted(set(value) - set(DEFAULTS["SEGMENTATION"]))
    if unknown:
        found.append(
            f"Unknown {name} keys: {', '.join(map(str, unknown))}. "
            f"Known keys: {', '.join(sorted(DEFAULTS['SEGMENTATION']))}."
        )
    for key in _TEXT:
        if not isinstance(value[key], str) or not value[key].strip():
            found.append(f"{name}['{key}'] must be a non-empty string, not {value[key]!r}.")
    if not is_temperature(value["TEMPERATURE"]):
        found.append(
            f"{name}['TEMPERATURE'] must be a number from 0 to {MAX_TEMPERATURE}, not {value['TEMPERATURE']!r}."
        )
    for key, low in _WHOLE.items():
        if not _whole(value[key], low):
            found.append(f"{name}['{key}'] must be a whole number, {low} or more, not {value[key]!r}.")
    for key in _OPTIONAL_WHOLE:
        if value[key] is not None and not _whole(value[key], 1):
            found.append(f"{name}['{key}'] must be a whole number per minute, 1 or more, or None, not {value[key]!r}.")
    timeout = value["REQUEST_TIMEOUT"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        found.append(f"{name}['REQUEST_TIMEOUT'] must be a number of seconds greater than 0, not {timeout!r}.")
    prompts = value["PROMPTS_DIR"]
    if prompts is not None and not (isinstance(prompts, (str, os.PathLike)) and os.path.isdir(prompts)):
        found.append(
            f"{name}['PROMPTS_DIR'] must be None (the bundled prompts) or a folder that exists, not {prompts!r}."
        )
    storage = value["LOG_STORAGE"]
    if storage is not None and not (isinstance(storage, (str, os.PathLike)) and str(storage).strip()):
        found.append(f"{name}['LOG_STORAGE'] must be None (DATA_DIR/segmentation-logs), a folder or an fsspec URL.")
    if not isinstance(value["STORAGE_OPTIONS"], dict):
        found.append(f"{name}['STORAGE_OPTIONS'] must be a dict of fsspec options, not {value['STORAGE_OPTIONS']!r}.")
    classes = value["PERMISSION_CLASSES"]
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        found.append(f"{name}['PERMISSION_CLASSES'] must be a list of dotted paths, not {classes!r}.")
    return found


def is_temperature(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and 0 <= value <= MAX_TEMPERATURE
    )


def _whole(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def segmentation_settings() -> dict[str, Any]:
    """The merged, checked setting; a bad one is ImproperlyConfigured with every problem in its message."""
    value = semantic_settings.SEGMENTATION
    found = problems(value)
    if found:
        raise ImproperlyConfigured(" ".join(found))
    return value


def log_storage() -> str:
    """Root of the LLM call logs: LOG_STORAGE, or DATA_DIR/segmentation-logs."""
    storage = segmentation_settings()["LOG_STORAGE"]
    return str(storage) if storage else os.path.join(semantic_settings.data_dir, "segmentation-logs")


def storage_options() -> dict[str, Any]:
    return dict(segmentation_settings()["STORAGE_OPTIONS"])


EMBEDDING_FIRST_OPTIONS = ("segments", "min_segments", "max_segments", "naming")
RUN_OPTIONS = ("mode", *EMBEDDING_FIRST_OPTIONS)  # chosen per run, not in settings


def build_config(
    *, model: str | None = None, temperature: float | None = None, category: str = "", **options: Any
) -> SegmentationConfig:
    """The engine's config from the settings, with a run's own model, temperature and RUN_OPTIONS where given."""
    unknown = sorted(set(options) - set(RUN_OPTIONS))
    if unknown:
        raise TypeError(f"unknown run options: {', '.join(unknown)}")
    clustering = [key for key in EMBEDDING_FIRST_OPTIONS if options.get(key) is not None]
    if clustering and options.get("mode") != "embedding_first":
        raise InvalidQuery(f"{', '.join(clustering)}: only with mode embedding_first.")
    ranged = any(options.get(key) is not None for key in ("min_segments", "max_segments"))
    if options.get("segments") is not None and ranged:
        raise InvalidQuery("Give segments, or a range (min_segments, max_segments), not both.")
    value = segmentation_settings()
    prompts = value["PROMPTS_DIR"]
    config = SegmentationConfig(
        model=model or value["MODEL"],
        base_url=value["BASE_URL"],
        api_key=value["API_KEY"],
        temperature=float(value["TEMPERATURE"] if temperature is None else temperature),
        category=category,
        products_per_prompt=value["PRODUCTS_PER_PROMPT"],
        taxonomies_per_consolidation=value["TAXONOMIES_PER_CONSOLIDATION"],
        products_per_refinement=value["PRODUCTS_PER_REFINEMENT"],
        max_retries=value["MAX_RETRIES"],
        concurrency=value["CONCURRENCY"],
        requests_per_minute=value["REQUESTS_PER_MINUTE"],
        tokens_per_minute=value["TOKENS_PER_MINUTE"],
        context_tokens=value["CONTEXT_TOKENS"],
        max_output_tokens=value["MAX_OUTPUT_TOKENS"],
        request_timeout=float(value["REQUEST_TIMEOUT"]),
        prompts_dir=str(prompts) if prompts else None,
    )
    return replace(config, **{key: chosen for key, chosen in options.items() if chosen is not None})


MODEL_KEYS = ("model", "base_url", "temperature")


def split_config(config: SegmentationConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model config, processing params) as stored on the run; the API key is never stored."""
    data = config.as_dict()
    model = {key: data.pop(key) for key in MODEL_KEYS}
    data.pop("category", None)
    return model, data


def config_of(model_config: dict[str, Any], params: dict[str, Any], category: str) -> SegmentationConfig:
    """A stored run's config again (to resume it): its own model and parameters, the key from the settings."""
    known = set(SegmentationConfig.__dataclass_fields__)
    data = {k: v for k, v in {**params, **model_config}.items() if k in known}
    return SegmentationConfig(**{**data, "category": category, "api_key": segmentation_settings()["API_KEY"]})
