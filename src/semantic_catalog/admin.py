"""Admin: each row's index state and a "re-index selected" action for your models; the outbox,
collections and cross-store analysis results (read-only: they come from a run) for operators."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .backends import get_store
from .collections import active_collection
from .engine.errors import SemanticCatalogError
from .models import AnalysisRun, CategoryLink, Collection, ProductMatch, Substitution, SyncEvent
from .registry import registry
from .sync import mark_dirty, schedule_drain

STATE_LABELS = {
    "indexed": "indexed",
    "pending": "pending",
    "failed": "failed",
    "missing": "not indexed",
    "excluded": "not in index queryset",
    "unbuilt": "index not built",
}


def row_states(model: type, pks: list[Any]) -> dict[str, str]:
    """Index state of each pk across the model's indexes (the worst state wins), in a few queries."""
    keys = [str(pk) for pk in pks]
    states: dict[str, str] = {}
    for index in registry.for_model(model):
        events = dict(SyncEvent.objects.filter(index=index.name, object_id__in=keys).values_list("object_id", "status"))
        in_queryset = {str(pk) for pk in index.get_queryset().filter(pk__in=pks).values_list("pk", flat=True)}
        collection = active_collection(index)
        try:
            stored = set(get_store().fetch(collection.table, keys)) if collection else set()
        except SemanticCatalogError:
            stored = set()
        for key in keys:
            if events.get(key) == SyncEvent.Status.FAILED:
                state = "failed"
            elif key in events:
                state = "pending"
            elif collection is None:
                state = "unbuilt"
            elif key not in in_queryset:
                state = "excluded"
            else:
                state = "indexed" if key in stored else "missing"
            states.setdefault(key, state)
            if state in ("failed", "pending", "missing"):
                states[key] = state
    return states


class _StatefulChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.model_admin._semantic_states = row_states(self.model, [obj.pk for obj in self.result_list])


class SemanticIndexAdminMixin:
    """Add to a ModelAdmin of an indexed model: an "index state" column and a re-index action.

    ```python
    @admin.register(Product)
    class ProductAdmin(SemanticIndexAdminMixin, admin.ModelAdmin):
        list_display = ["name", "price", "index_state"]
    ```
    """

    _semantic_states: dict[str, str] = {}
    actions = ["reindex_selected"]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _StatefulChangeList

    @admin.display(description="index state")
    def index_state(self, obj: Any) -> str:
        state = self._semantic_states.get(str(obj.pk)) or row_states(type(obj), [obj.pk]).get(str(obj.pk), "")
        return STATE_LABELS.get(state, state)

    @admin.action(description="Re-index selected rows")
    def reindex_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = mark_dirty(queryset.model, queryset)
        self.message_user(request, f"Queued {count} rows for re-indexing.", messages.SUCCESS)  # type: ignore[attr-defined]


@admin.register(SyncEvent)
class SyncEventAdmin(admin.ModelAdmin):
    list_display = ["index", "object_id", "op", "status", "attempts", "next_attempt_at", "short_error"]
    list_filter = ["index", "status", "op"]
    search_fields = ["object_id", "last_error"]
    readonly_fields = [f.name for f in SyncEvent._meta.fields]
    actions = ["retry"]

    @admin.display(description="last error")
    def short_error(self, obj: SyncEvent) -> str:
        return obj.last_error[:120]

    @admin.action(description="Retry selected failed events")
    def retry(self, request: HttpRequest, queryset: QuerySet) -> None:
        failed = queryset.filter(status=SyncEvent.Status.FAILED)
        indexes = set(failed.values_list("index", flat=True))
        count = failed.update(status=SyncEvent.Status.PENDING, attempts=0, next_attempt_at=timezone.now())
        for name in indexes:
            schedule_drain(name)
        self.message_user(request, f"{count} failed events queued again.")


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["index", "state", "encoder", "dimension", "text_version", "table", "created_at", "activated_at"]
    list_filter = ["index", "state"]
    readonly_fields = [f.name for f in Collection._meta.fields]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Results are replaced by a new run, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
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
