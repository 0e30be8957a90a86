"""What is indexed: per index, rows in the queryset, indexed, pending, failed, model, dimension."""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.utils import timezone

from semantic_catalog.backends import available_encoder_names, get_encoder, get_store
from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import Collection, DrainRequest, SyncEvent


def index_status(index: SemanticIndex) -> dict[str, Any]:
    store = get_store()
    encoder_name = get_encoder().name
    events = dict(SyncEvent.objects.filter(index=index.name).values_list("status").annotate(n=Count("id")).order_by())
    collections = []
    active: dict[str, Any] | None = None
    for collection in Collection.objects.filter(index=index.name).order_by("-id"):
        try:
            count: int | None = store.count(collection.table)
        except SemanticCatalogError:
            count = None
        info = {
            "table": collection.table,
            "state": collection.state,
            "model": collection.model,
            "dimension": collection.dimension,
            "text_version": collection.text_version,
            "documents": count,
            "created_at": collection.created_at.isoformat(),
            "activated_at": collection.activated_at.isoformat() if collection.activated_at else None,
        }
        collections.append(info)
        if collection.state == Collection.State.ACTIVE:
            active = info
    warnings = []
    if active is None:
        warnings.append(f"not built yet: run `manage.py semantic_index --index {index.name}`")
    else:
        if active["model"] not in available_encoder_names():
            warnings.append(
                f"built with {active['model']!r}, which is not configured (ENCODER is {encoder_name!r}): "
                "add it to ENCODERS or run semantic_index --rebuild"
            )
        elif active["model"] != encoder_name:
            warnings.append(
                f"serving with {active['model']!r} from ENCODERS; ENCODER is {encoder_name!r}: "
                "semantic_index --rebuild (or an import of its vectors) switches when complete"
            )
        if active["text_version"] != index.text_version:
            warnings.append(
                f"text_version changed ({active['text_version']} -> {index.text_version}): run semantic_index --rebuild"
            )
        if active["documents"] is None:
            warnings.append("the active collection's table is missing: run semantic_index --rebuild")
    request = DrainRequest.objects.filter(index=index.name).first()
    if request and (timezone.now() - request.requested_at).total_seconds() > semantic_settings.LOCK_SECONDS:
        warnings.append(
            f"a drain was queued at {request.requested_at:%Y-%m-%d %H:%M:%S} and has not started: "
            "is the tasks worker running? `semantic_sync` drains now"
        )
    if events.get(SyncEvent.Status.FAILED):
        warnings.append("some changes failed to sync: see the admin's sync events, then `semantic_sync --retry-failed`")
    return {
        "index": index.name,
        "model_label": index.model._meta.label,  # type: ignore[union-attr]
        "in_queryset": index.get_queryset().count(),
        "indexed": active["documents"] if active else 0,
        "pending": events.get(SyncEvent.Status.PENDING, 0),
        "failed": events.get(SyncEvent.Status.FAILED, 0),
        "model": active["model"] if active else encoder_name,
        "dimension": active["dimension"] if active else None,
        "collection": active["table"] if active else None,
        "collections": collections,
        "warnings": warnings,
    }
