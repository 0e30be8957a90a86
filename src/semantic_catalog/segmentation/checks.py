"""System check of SEMANTIC_CATALOG["SEGMENTATION"]: E020, one error per bad key, so a wrong batch size
or endpoint shows when the project starts instead of when a run fails."""

from __future__ import annotations

from typing import Any

from django.core import checks

from semantic_catalog.checks import dict_setting_errors
from semantic_catalog.segmentation.conf import problems


@checks.register("semantic_catalog")
def check_segmentation_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return dict_setting_errors("SEGMENTATION", problems, "E020")
