"""What is indexed: per index, rows in the queryset, indexed, pending, failed, model, dimension, an
outage of the store or the model, and warnings (changes waiting too long among them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from semantic_catalog.backends import available_encoder_names, get_encoder, get_store
from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import Collection, DrainRequest, IndexLease, SyncEvent
from semantic_catalog.sync.lease import Outage


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
    now = timezone.now()
    stale_after = semantic_settings.STALE_EVENT_SECONDS
    request = DrainRequest.objects.filter(index=index.name).first()
    if request and (now - request.requested_at).total_seconds() > stale_after:
        warnings.append(
            f"a drain was queued at {request.requested_at:%Y-%m-%d %H:%M:%S} and has not started: "
            "is the tasks worker running? `semantic_sync` drains now"
        )
    state = IndexLease.objects.filter(index=index.name).first()
    outage = Outage.of(state) if state else None
    if outage:
        warnings.append(
            f"{outage}; {events.get(SyncEvent.Status.PENDING, 0)} changes wait for it and use up no attempts "
            f"(next try at {timezone.localtime(outage.retry_at):%Y-%m-%d %H:%M:%S %Z}; `semantic_sync` tries now)"
        )
    stale = SyncEvent.objects.filter(
        index=index.name, status=SyncEvent.Status.PENDING, created_at__lt=now - timedelta(seconds=stale_after)
    ).aggregate(n=Count("id"), oldest=Min("created_at"))
    if stale["n"]:
        warnings.append(
            f"{stale['n']} changes have waited more than {stale_after:g} s to reach the index (the oldest since "
            f"{timezone.localtime(stale['oldest']):%Y-%m-%d %H:%M:%S %Z}): is the tasks worker running? "
            "See their last errors in the admin's sync events; `semantic_sync` drains now"
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
        "outage": (
            {
                "what": outage.what,
                "since": outage.since.isoformat(),
                "error": outage.error,
                "retry_at": outage.retry_at.isoformat(),
            }
            if outage
            else None
        ),
        "warnings": warnings,
    }
