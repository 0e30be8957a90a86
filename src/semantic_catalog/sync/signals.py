"""``post_save`` / ``post_delete`` receivers, connected once from ``AppConfig.ready``.

One receiver pair serves every index: it asks the registry which indexes a saved model has, so an
index registered later (``@register``, tests) is kept in sync without connecting anything.

Raw saves (``loaddata``, fixtures) are indexed like any other save: the outbox row only names the
row, and the drain reads it after commit, when every row of the fixture and its relations exist.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save

from semantic_catalog.conf import semantic_settings
from semantic_catalog.models import SyncEvent
from semantic_catalog.registry import registry
from semantic_catalog.sync.changes import record_changes

DISPATCH_UID = "semantic_catalog.sync"


def connect() -> None:
    post_save.connect(_on_save, dispatch_uid=f"{DISPATCH_UID}.save", weak=False)
    post_delete.connect(_on_delete, dispatch_uid=f"{DISPATCH_UID}.delete", weak=False)


def disconnect() -> None:
    post_save.disconnect(dispatch_uid=f"{DISPATCH_UID}.save")
    post_delete.disconnect(dispatch_uid=f"{DISPATCH_UID}.delete")


def _on_save(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    if semantic_settings.AUTO_SYNC:
        for index in registry.for_model(sender):
            record_changes(index, [instance.pk], SyncEvent.Op.UPSERT, using=using)


def _on_delete(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    if semantic_settings.AUTO_SYNC:
        for index in registry.for_model(sender):
            record_changes(index, [instance.pk], SyncEvent.Op.DELETE, using=using)
