"""System check of SEMANTIC_CATALOG["SEGMENTATION"]: E020, one error per bad key, so a wrong batch size
or endpoint shows when the project starts instead of when a run fails."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from semantic_catalog.conf import semantic_settings
from semantic_catalog.segmentation.conf import problems


@checks.register("semantic_catalog")
def check_segmentation_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        value = semantic_settings.SEGMENTATION
    except ImproperlyConfigured:
        return []  # unknown SEMANTIC_CATALOG keys: semantic_catalog.E010 says so
    return [
        checks.Error(
            message,
            hint="See the README's settings table (SEGMENTATION).",
            obj="SEMANTIC_CATALOG",
            id="semantic_catalog.E020",
        )
        for message in problems(value)
    ]
