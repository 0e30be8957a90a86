from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed


class SemanticCatalogConfig(AppConfig):
    name = "semantic_catalog"
    verbose_name = "Semantic catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from semantic_catalog import checks  # noqa: F401 - registers the system checks
        from semantic_catalog.crossstore import checks as crossstore_checks  # noqa: F401
        from semantic_catalog.registry import autodiscover
        from semantic_catalog.segmentation import checks as segmentation_checks  # noqa: F401
        from semantic_catalog.sync import signals
        from semantic_catalog.workflows import checks as workflow_checks  # noqa: F401

        autodiscover()
        signals.connect()
        setting_changed.connect(reset_caches, dispatch_uid="semantic_catalog.reset_caches")


def reset_caches(setting: str, **kwargs: Any) -> None:
    """The one ``setting_changed`` receiver: a changed SEMANTIC_CATALOG drops every cache built from it
    (merged settings, query vectors and hits, which collection is active)."""
    if setting != "SEMANTIC_CATALOG":
        return
    from semantic_catalog.conf import semantic_settings
    from semantic_catalog.search.service import clear_query_cache

    semantic_settings.reload()
    clear_query_cache()
