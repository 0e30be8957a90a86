"""System check of SEMANTIC_CATALOG["TEMPORAL"]: E030, one error per bad key, so a wrong task queue or
batch size shows when the project starts instead of when a workflow is started (temporalio need not
be installed for the check)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from semantic_catalog.conf import semantic_settings
from semantic_catalog.workflows.conf import problems


@checks.register("semantic_catalog")
def check_temporal_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        value = semantic_settings.TEMPORAL
    except ImproperlyConfigured:
        return []  # unknown SEMANTIC_CATALOG keys: semantic_catalog.E010 says so
    return [
        checks.Error(
            message,
            hint="See the README's settings table (TEMPORAL).",
            obj="SEMANTIC_CATALOG",
            id="semantic_catalog.E030",
        )
        for message in problems(value)
    ]
