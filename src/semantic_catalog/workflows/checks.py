"""System check of SEMANTIC_CATALOG["TEMPORAL"]: E030, one error per bad key, so a wrong task queue or
batch size shows when the project starts instead of when a workflow is started (temporalio need not
be installed for the check)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from semantic_catalog.checks import dict_setting_errors
from semantic_catalog.workflows.conf import problems


@checks.register("semantic_catalog")
def check_temporal_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return dict_setting_errors("TEMPORAL", problems, "E030")
