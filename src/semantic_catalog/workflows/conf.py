"""SEMANTIC_CATALOG["TEMPORAL"], checked key by key: a wrong value is an ImproperlyConfigured that
names the key and says what it must be."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from semantic_catalog.conf import DEFAULTS, semantic_settings

NAME = "SEMANTIC_CATALOG['TEMPORAL']"


def problems(value: Any) -> list[str]:
    """What is wrong with a TEMPORAL setting (merged over the defaults), one line each."""
    if not isinstance(value, dict):
        return [f"{NAME} must be a dict of settings, not {type(value).__name__}."]
    found: list[str] = []
    unknown = sorted(set(value) - set(DEFAULTS["TEMPORAL"]))
    if unknown:
        found.append(f"Unknown {NAME} keys: {', '.join(map(str, unknown))}. "
                     f"Known keys: {', '.join(sorted(DEFAULTS['TEMPORAL']))}.")
    for key in ("ADDRESS", "NAMESPACE", "TASK_QUEUE"):
        if not isinstance(value[key], str) or not value[key].strip():
            found.append(f"{NAME}['{key}'] must be a non-empty string, not {value[key]!r}.")
    if not isinstance(value["DRAIN"], bool):
        found.append(f"{NAME}['DRAIN'] must be True or False, not {value['DRAIN']!r}.")
    for key in ("BATCH_SIZE", "MAX_ATTEMPTS"):
        if isinstance(value[key], bool) or not isinstance(value[key], int) or value[key] < 1:
            found.append(f"{NAME}['{key}'] must be a whole number, 1 or more, not {value[key]!r}.")
    for key in ("RETRY_SECONDS", "HEARTBEAT_SECONDS"):
        if isinstance(value[key], bool) or not isinstance(value[key], (int, float)) or not value[key] > 0:
            found.append(f"{NAME}['{key}'] must be a number of seconds greater than 0, not {value[key]!r}.")
    if not isinstance(value["PERMISSION_CLASSES"], (list, tuple)):
        found.append(f"{NAME}['PERMISSION_CLASSES'] must be a list of dotted paths.")
    return found


def temporal_settings() -> dict[str, Any]:
    """The merged TEMPORAL settings; ImproperlyConfigured when any key is wrong."""
    value = semantic_settings.TEMPORAL
    found = problems(value)
    if found:
        raise ImproperlyConfigured(" ".join(found))
    return value
