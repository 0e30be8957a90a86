"""SQL state of the semantic layer: the outbox (`SyncEvent`) and the physical collections per index."""

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


class Collection(models.Model):
    """One physical table of the vector store for (index, encoder, text version).

    A rebuild creates a ``building`` collection, fills it while the ``active`` one keeps serving,
    then swaps states in one transaction; writes go to both meanwhile so no update is missed.
    """

    class State(models.TextChoices):
        BUILDING = "building"
        ACTIVE = "active"
        RETIRED = "retired"

    index = models.CharField(max_length=100)
    table = models.CharField(max_length=200, unique=True)
    encoder = models.CharField(max_length=200)
    dimension = models.PositiveIntegerField()
    text_version = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=10, choices=State.choices, default=State.BUILDING)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["index"], condition=models.Q(state="active"), name="semantic_one_active_collection"
            )
        ]

    def __str__(self) -> str:
        return f"{self.index} [{self.state}] {self.table}"


class IndexLease(models.Model):
    """At most one drain per index at a time, on any database: taken by a conditional UPDATE.

    One drainer per index keeps writes in order: two workers could otherwise read a row at different
    moments and write an older state last. A dead worker's lease simply expires after LOCK_SECONDS.
    """

    index = models.CharField(max_length=100, primary_key=True)
    token = models.CharField(max_length=32, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

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


# -- cross-store analysis results -------------------------------------------------------------------


class AnalysisRun(models.Model):
    """One computation of category links, substitutions or product matches for an index.

    Results are written with their run; a new run of the same kind replaces the previous one in one
    transaction, so readers see either the old results or the new ones, never a mix.
    """

    class Kind(models.TextChoices):
        LINKS = "links"
        SUBSTITUTIONS = "substitutions"
        MATCHES = "matches"

    index = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    model = models.CharField(max_length=200, help_text="encoder whose vectors the results come from")
    source = models.CharField(max_length=300, help_text="'server' or the imported file")
    parameters = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(help_text="when the results were computed (the file's timestamp)")
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["index", "kind"], name="semantic_run_kind")]

    def __str__(self) -> str:
        return f"{self.index} {self.kind} by {self.model} ({self.source}, {self.computed_at:%Y-%m-%d %H:%M})"


class CategoryLink(models.Model):
    """Category ``source_category`` of one store is the same shelf as ``target_category`` of another."""

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="category_links")
    source_store = models.CharField(max_length=64)
    source_category = models.CharField(max_length=64, db_index=True)
    target_store = models.CharField(max_length=64)
    target_category = models.CharField(max_length=64, db_index=True)
    score = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "source_category", "target_category"], name="semantic_link_once")
        ]

    def __str__(self) -> str:
        return f"{self.source_category} -> {self.target_category} ({self.score:.3f})"


class Substitution(models.Model):
    """``substitute`` can stand in for ``product`` at category level 3 (broad) or 4 (narrow)."""

    class Level(models.IntegerChoices):
        BROAD = 3
        NARROW = 4

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="substitutions")
    product = models.CharField(max_length=64)
    substitute = models.CharField(max_length=64)
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()

    class Meta:
        indexes = [models.Index(fields=["product", "level", "rank"], name="semantic_substitutes")]
        constraints = [
            models.UniqueConstraint(fields=["run", "product", "substitute", "level"], name="semantic_substitute_once"),
            models.CheckConstraint(condition=models.Q(level__in=[3, 4]), name="semantic_substitute_level"),
        ]

    def __str__(self) -> str:
        return f"{self.product} ~ {self.substitute} (level {self.level}, {self.score:.3f})"


class ProductMatch(models.Model):
    """``product`` and ``match`` are the very same item sold in two stores."""

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="product_matches")
    product = models.CharField(max_length=64, db_index=True)
    match = models.CharField(max_length=64, db_index=True)
    score = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "product", "match"], name="semantic_match_once")]

    def __str__(self) -> str:
        return f"{self.product} = {self.match} ({self.score:.3f})"
