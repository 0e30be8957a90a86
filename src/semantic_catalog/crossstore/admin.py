"""Admin of cross-store analysis results: read-only (a new run replaces them, nobody edits or deletes them
by hand), and the read-only admin the core's admin uses for the outbox and collections too. Proposed matches
are confirmed or rejected by actions, which store labelled pairs (``MatchLabel``: listed, flipped and deleted
here, never added by hand)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest

from semantic_catalog.crossstore.labels import save_labels
from semantic_catalog.engine.crossstore.labels import LabelledPair
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.models import AnalysisRun, CategoryLink, MatchLabel, ProductMatch, Substitution
from semantic_catalog.registry import registry


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


def _may_label(request: HttpRequest) -> bool:
    """Storing labels needs MatchLabel's add permission (superusers have it)."""
    opts = MatchLabel._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('add', opts)}")


@admin.register(ProductMatch)
class ProductMatchAdmin(ReadOnlyAdmin):
    list_display = ["product", "match", "score", "label", "run"]
    search_fields = ["product", "match"]
    actions = ["confirm", "reject"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Each match with its pair's stored label, in the list's one query (a pair is stored either way round)."""
        stored = MatchLabel.objects.filter(
            Q(left=OuterRef("product"), right=OuterRef("match")) | Q(left=OuterRef("match"), right=OuterRef("product")),
            index=OuterRef("run__index"),
        )
        return super().get_queryset(request).annotate(stored_label=Subquery(stored.values("label")[:1]))

    @admin.display(description="label")
    def label(self, obj: ProductMatch) -> str:
        stored = getattr(obj, "stored_label", None)
        return "" if stored is None else "confirmed" if stored else "rejected"

    def has_label_permission(self, request: HttpRequest) -> bool:
        return _may_label(request)

    @admin.action(description="Confirm: the same item", permissions=["label"])
    def confirm(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._store(request, queryset, True)

    @admin.action(description="Reject: not the same item", permissions=["label"])
    def reject(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._store(request, queryset, False)

    def _store(self, request: HttpRequest, queryset: QuerySet, label: bool) -> None:
        """Label every selected match, all or nothing (one index after another, in one transaction)."""
        by_index: dict[str, list[LabelledPair]] = defaultdict(list)
        for index, product, match in queryset.values_list("run__index", "product", "match"):
            by_index[index].append(LabelledPair.of(product, match, label))
        stored = 0
        try:
            with transaction.atomic():
                for name, pairs in sorted(by_index.items()):
                    report = save_labels(
                        registry.get(name), sorted(set(pairs)), "admin", labelled_by=request.user.get_username()
                    )
                    stored += report.created + report.updated + report.unchanged
        except SemanticCatalogError as exc:  # LabelsRejected, or a run of an index no longer registered
            self.message_user(request, f"No labels were stored: {exc}", messages.ERROR)
            return
        verdict = "the same item" if label else "not the same item"
        self.message_user(request, f"Stored {stored} labelled pair(s): {verdict}.", messages.SUCCESS)


@admin.register(MatchLabel)
class MatchLabelAdmin(admin.ModelAdmin):
    """Labels are stored by the match actions, the API and label files: here they are listed, flipped
    (the change form edits only the label) and deleted, by users with those permissions."""

    list_display = ["index", "left", "right", "label", "source", "labelled_by", "updated_at"]
    list_filter = ["index", "label", "source"]
    search_fields = ["=left", "=right"]
    fields = ["index", "left", "right", "label", "source", "labelled_by", "created_at", "updated_at"]
    readonly_fields = ["index", "left", "right", "source", "labelled_by", "created_at", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: MatchLabel, form: Any, change: bool) -> None:
        """A label flipped here is the admin user's."""
        obj.source = MatchLabel.Source.ADMIN
        obj.labelled_by = request.user.get_username()[:150]
        super().save_model(request, obj, form, change)
