"""Admin of cross-store analysis results: read-only (a new run replaces them, nobody edits or deletes them
by hand), and the read-only admin the core's admin uses for the outbox and collections too."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from semantic_catalog.models import AnalysisRun, CategoryLink, ProductMatch, Substitution


class ReadOnlyAdmin(admin.ModelAdmin):
    """State the library owns (results replaced by a new run, the outbox, collections): shown, never
    added, edited or deleted by hand. Actions of the subclass that ask for no permission still run."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AnalysisRun)
class AnalysisRunAdmin(ReadOnlyAdmin):
    list_display = ["index", "kind", "model", "source", "computed_at", "imported_at", "results"]
    list_filter = ["index", "kind"]

    @admin.display(description="results")
    def results(self, obj: AnalysisRun) -> int:
        return obj.category_links.count() + obj.substitutions.count() + obj.product_matches.count()


@admin.register(CategoryLink)
class CategoryLinkAdmin(ReadOnlyAdmin):
    list_display = ["source_category", "source_store", "target_category", "target_store", "score", "run"]
    list_filter = ["source_store", "target_store"]
    search_fields = ["source_category", "target_category"]


@admin.register(Substitution)
class SubstitutionAdmin(ReadOnlyAdmin):
    list_display = ["product", "substitute", "level", "rank", "score", "run"]
    list_filter = ["level"]
    search_fields = ["product", "substitute"]


@admin.register(ProductMatch)
class ProductMatchAdmin(ReadOnlyAdmin):
    list_display = ["product", "match", "score", "run"]
    search_fields = ["product", "match"]
