from django.apps import AppConfig


class SemanticCatalogConfig(AppConfig):
    name = "semantic_catalog"
    verbose_name = "Semantic catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .registry import autodiscover

        autodiscover()
