"""Tables of the sync: the outbox, the per-index drain state (lease, outage) and the drain request marker."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class SyncEvent(models.Model):
    """Outbox row: "this object of this index changed". Written in the same transaction as the change,
    deleted once the index reflects it, kept with its error when it gives up after MAX_ATTEMPTS."""

    class Op(models.TextChoices):
        UPSERT = "upsert"
        DELETE = "delete"

    class Status(models.TextChoices):
        PENDING = "pending"
        FAILED = "failed"

    index = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    op = models.CharField(max_length=10, choices=Op.choices, default=Op.UPSERT)
    # Database defaults let the hot-path INSERT (outbox.py) send only index, object_id and op.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    last_error = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    next_attempt_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        indexes = [
            models.Index(fields=["index", "status", "next_attempt_at"], name="semantic_event_due"),
        ]

    def __str__(self) -> str:
        return f"{self.index}:{self.object_id} {self.op} ({self.status}, {self.attempts} attempts)"


class IndexLease(models.Model):
    """Per-index drain state: the lease, an outage the drain met, and the deferred drain already queued.

    The lease: at most one drain per index at a time, on any database, taken by a conditional UPDATE.
    One drainer per index keeps writes in order: two workers could otherwise read a row at different
    moments and write an older state last. The lease is short (LOCK_SECONDS) and renewed after every
    batch and by a heartbeat while a drain runs, so a dead worker's lease expires soon.

    An outage: the vector store or the model failed a write that was not one row's fault. It is kept
    here (not on the events, whose attempts it never uses up) so that status can say since when, and
    so that drains wait for ``outage_retry_at`` instead of hammering a store that is down.
    """

    class Outage(models.TextChoices):
        NONE = "", "none"
        STORE = "store"
        MODEL = "model"

    index = models.CharField(max_length=100, primary_key=True)
    token = models.CharField(max_length=32, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    outage = models.CharField(max_length=10, choices=Outage.choices, blank=True, default="")
    outage_since = models.DateTimeField(null=True, blank=True)
    outage_error = models.TextField(blank=True, default="")
    outage_retry_at = models.DateTimeField(
        null=True, blank=True, help_text="when a drain tries the store or the model again"
    )
    retry_at = models.DateTimeField(null=True, blank=True, help_text="a deferred drain is queued for this time")

    def __str__(self) -> str:
        return f"{self.index} lease until {self.locked_until}"


class DrainRequest(models.Model):
    """ "A drain of this index is queued and has not started yet." Writers enqueue a drain only when
    they are the ones to create this row, so a burst of saves queues one task, not one per save;
    the drain deletes the row before it reads the outbox, so nothing committed after that is missed.
    """

    index = models.CharField(max_length=100, primary_key=True)
    requested_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.index} drain requested at {self.requested_at}"
