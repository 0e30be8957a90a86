"""Admin: each row's index state and a "re-index selected" action for your models; the outbox,
collections and cross-store analysis results for operators, read-only (the library writes them: no
add, change or delete through forms; failed sync events are retried by an action)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from semantic_catalog.backends import get_store
from semantic_catalog.collections import active_collection
from semantic_catalog.crossstore.admin import ReadOnlyAdmin  # importing it registers the wing's admin too
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.models import Collection, SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.segmentation import admin as segmentation_admin  # noqa: F401 - registers the wing's admin
from semantic_catalog.sync import mark_dirty, schedule_drain
from semantic_catalog.workflows import service as temporal_runs

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
    actions = ["reindex_selected", "embed_via_temporal"]

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

    @admin.action(description="Embed selected via Temporal")
    def embed_via_temporal(self, request: HttpRequest, queryset: QuerySet) -> None:
        """One Temporal indexing run per index of the model (SEMANTIC_CATALOG['TEMPORAL']), forced: the
        selected rows are encoded again even when unchanged. Their runs show in the Temporal UI."""
        notify = self.message_user  # type: ignore[attr-defined]
        for index in registry.for_model(queryset.model):
            try:
                run_id = temporal_runs.start(index.name, queryset, force=True)
            except (SemanticCatalogError, ImproperlyConfigured, ImportError) as exc:
                notify(request, f"{index.name}: could not start a Temporal run: {exc}", messages.ERROR)
            else:
                notify(request, f"{index.name}: started Temporal run {run_id} for {queryset.count()} rows.",
                       messages.SUCCESS)


@admin.register(SyncEvent)
class SyncEventAdmin(ReadOnlyAdmin):
    list_display = ["index", "object_id", "op", "status", "attempts", "next_attempt_at", "short_error"]
    list_filter = ["index", "status", "op"]
    search_fields = ["object_id", "last_error"]
    actions = ["retry"]

    @admin.display(description="last error")
    def short_error(self, obj: SyncEvent) -> str:
        return obj.last_error[:120]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Retrying needs the model's change permission (superusers have it), though no form changes rows."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")

    @admin.action(description="Retry selected failed events", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet) -> None:
        failed = queryset.filter(status=SyncEvent.Status.FAILED)
        indexes = set(failed.values_list("index", flat=True))
        count = failed.update(status=SyncEvent.Status.PENDING, attempts=0, next_attempt_at=timezone.now())
        for name in indexes:
            schedule_drain(name)
        self.message_user(request, f"{count} failed events queued again.")


@admin.register(Collection)
class CollectionAdmin(ReadOnlyAdmin):
    """Collections are made by semantic_index and imports, switched atomically, never edited by hand."""

    list_display = ["index", "state", "model", "dimension", "text_version", "table", "created_at", "activated_at"]
    list_filter = ["index", "state"]
