"""Which physical collection serves an index, and the swap that makes a rebuilt one live atomically."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid

from django.db import transaction
from django.utils import timezone

from semantic_catalog.backends import available_encoder_names, get_encoder, get_store
from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.models import Collection

logger = logging.getLogger("semantic_catalog")


class IndexNotReady(SemanticCatalogError):
    """The index has no usable collection: never built, or built with another model."""


def table_name(index: SemanticIndex, encoder_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", encoder_name.lower()).strip("_")[:60]
    return f"{index.name}__{slug}__v{index.text_version}__{uuid.uuid4().hex[:8]}"


def active_collection(index: SemanticIndex) -> Collection | None:
    return Collection.objects.filter(index=index.name, state=Collection.State.ACTIVE).first()


# Searches remember which collection is active for COLLECTION_CACHE_SECONDS (index name -> (when, row)):
# asking SQL on every search cost as much as a cached search. Writes always ask SQL.
_searchable: dict[str, tuple[float, Collection]] = {}
_searchable_lock = threading.Lock()


def forget_active_collections() -> None:
    """Make the next search ask SQL which collection is active (called on every switch here)."""
    with _searchable_lock:
        _searchable.clear()


def _searchable_collection(index: SemanticIndex) -> Collection | None:
    seconds = semantic_settings.COLLECTION_CACHE_SECONDS
    entry = _searchable.get(index.name)
    if entry is not None and time.monotonic() - entry[0] < seconds:
        return entry[1]
    collection = active_collection(index)
    if collection is not None and seconds > 0:
        with _searchable_lock:
            _searchable[index.name] = (time.monotonic(), collection)
    return collection


def _create(index: SemanticIndex, state: str, model: str | None = None, dimension: int | None = None) -> Collection:
    """A new collection for the configured encoder, or for ``model`` / ``dimension`` (imported vectors)."""
    if model is None:
        encoder = get_encoder()
        model, dimension = encoder.name, encoder.dimension
    collection = Collection(
        index=index.name,
        table=table_name(index, model),
        model=model,
        dimension=dimension,
        text_version=index.text_version,
        state=state,
        activated_at=timezone.now() if state == Collection.State.ACTIVE else None,
    )
    store = get_store()
    store.set_analyzer(collection.table, index.analyzer)  # the keyword index is built with it
    store.create_collection(collection.table, collection.dimension, index.field_specs)
    collection.save()
    _forget_on_commit()
    return collection


def _forget_on_commit() -> None:
    forget_active_collections()
    transaction.on_commit(forget_active_collections)  # again once other threads can see the change


def apply_analyzer(index: SemanticIndex, table: str) -> None:
    """Give the collection's keyword index the analyser the index declares, once per process: the store
    rebuilds only its keyword index when the declaration changed. A declaration it refuses (check E007)
    leaves the index as it was."""
    store = get_store()
    if store.has_analyzer(table):
        return
    try:
        store.set_analyzer(table, index.analyzer)
    except SemanticCatalogError as exc:
        logger.error("Index %r keeps its keyword analyser: %s", index.name, exc)
        store.remember_analyzer(table, store.analyzer(table))  # asked once, not on every search


def ensure_active(index: SemanticIndex) -> Collection:
    """The active collection, created empty on first use so the outbox can fill it row by row."""
    collection = active_collection(index)
    if collection is not None:
        return collection
    # Load the model first: on SQLite (transaction_mode IMMEDIATE) the transaction below holds the
    # database's write lock, and loading took longer than writers' lock timeout (tests/reliability).
    get_encoder().dimension  # noqa: B018 - loads the model
    with transaction.atomic():
        collection = active_collection(index)
        return collection if collection is not None else _create(index, Collection.State.ACTIVE)


def require_searchable(index: SemanticIndex) -> Collection:
    """The active collection, checked to be queryable with the configured encoder. Another process's
    switch reaches this one within COLLECTION_CACHE_SECONDS; until then it searches the collection just
    retired, which is kept until the next switch."""
    collection = _searchable_collection(index)
    if collection is None:
        raise IndexNotReady(
            f"Index {index.name!r} has not been built yet: run `manage.py semantic_index --index {index.name}`."
        )
    if collection.model not in available_encoder_names():
        raise IndexNotReady(
            f"Index {index.name!r} was built with model {collection.model!r}, which is not configured "
            f"(ENCODER is {get_encoder().name!r}): add it to SEMANTIC_CATALOG['ENCODERS'] or run "
            f"`manage.py semantic_index --index {index.name} --rebuild`."
        )
    apply_analyzer(index, collection.table)
    return collection


def writable_collections(index: SemanticIndex) -> list[Collection]:
    """Collections the outbox must keep current: the active one (created if missing) and any being built,
    whose model is configured here (each is written with its own model's vectors)."""
    ensure_active(index)
    collections = list(
        Collection.objects.filter(
            index=index.name,
            state__in=[Collection.State.ACTIVE, Collection.State.BUILDING],
            model__in=available_encoder_names(),
        ).order_by("id")
    )
    for collection in collections:
        apply_analyzer(index, collection.table)
    return collections


def existing_collection_for_model(index: SemanticIndex, model: str) -> Collection | None:
    """Where vectors of ``model`` belong: the active collection if it uses that model, else that
    model's collection being built, if any."""
    active = active_collection(index)
    if active is not None and active.model == model:
        return active
    return Collection.objects.filter(index=index.name, state=Collection.State.BUILDING, model=model).first()


def collection_for_model(index: SemanticIndex, model: str, dimension: int) -> Collection:
    """``existing_collection_for_model``, or a new empty ``building`` collection for that model."""
    existing = existing_collection_for_model(index, model)
    return existing or _create(index, Collection.State.BUILDING, model, dimension)


def start_rebuild(index: SemanticIndex) -> Collection:
    """A new, empty ``building`` collection; an earlier unfinished build is discarded."""
    for stale in Collection.objects.filter(index=index.name, state=Collection.State.BUILDING):
        drop(stale)
    return _create(index, Collection.State.BUILDING)


def activate(collection: Collection) -> list[Collection]:
    """Make ``collection`` the active one and retire the previous one, in one transaction.

    The just-retired table is kept until the next switch so searches already in flight on it finish;
    older retired tables are dropped now. Returns the dropped collections.
    """
    with transaction.atomic():
        older = list(Collection.objects.filter(index=collection.index, state=Collection.State.RETIRED))
        Collection.objects.select_for_update().filter(index=collection.index, state=Collection.State.ACTIVE).update(
            state=Collection.State.RETIRED
        )
        collection.state = Collection.State.ACTIVE
        collection.activated_at = timezone.now()
        collection.save(update_fields=["state", "activated_at"])
        _forget_on_commit()
    for old in older:
        drop(old)
    return older


def drop(collection: Collection) -> None:
    """Remove a collection's table and its row."""
    get_store().drop_collection(collection.table)
    collection.delete()
    _forget_on_commit()
