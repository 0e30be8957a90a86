"""Tables of LLM market segmentation: a run, the items it was given, the taxonomy it found, each item's
first-pass and refined segment, and the index of its LLM calls' log files (the cache is one lookup here)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SegmentationRun(models.Model):
    """One segmentation of an explicit list of rows of an index.

    ``run_id`` is the engine's ``RUN_<ISO ts>_<hash>``: the folder of the run's log files. Progress
    (stage, processed of total, since when) is written while the run goes, so the status endpoint can
    tell an ETA; ``cancel_requested`` is the flag the pipeline's ``should_stop`` reads.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    run_id = models.CharField(max_length=120, unique=True)
    index = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    stage = models.CharField(max_length=20, blank=True, help_text="queued, extract, consolidate, refine or done")
    category = models.CharField(max_length=200, blank=True)
    model_config = models.JSONField(default=dict, blank=True, help_text="model, endpoint, temperature")
    params = models.JSONField(default=dict, blank=True, help_text="batch sizes, retries, concurrency, limits")
    storage_url = models.CharField(max_length=1000, help_text="root of the log storage the run writes to")
    source = models.CharField(max_length=300, default="server", help_text="'server' or the imported file")
    total_items = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0, help_text="units of the current stage done")
    total = models.PositiveIntegerField(default=0, help_text="units of the current stage")
    stage_started_at = models.DateTimeField(null=True, blank=True)
    totals = models.JSONField(default=dict, blank=True, help_text="calls, cached calls, tokens, seconds per stage")
    result_summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["index", "status"], name="semantic_segrun_status")]

    def __str__(self) -> str:
        return f"{self.run_id} ({self.index}, {self.status})"


class RunItem(models.Model):
    """A row the run segments, with the text it was given (a resumed run sees the same text, so its
    calls are found in the cache)."""

    run = models.ForeignKey(SegmentationRun, on_delete=models.CASCADE, related_name="items")
    item_id = models.CharField(max_length=64)
    text = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item_id"], name="semantic_runitem_once")]

    def __str__(self) -> str:
        return self.item_id


class Segment(models.Model):
    """A segment of a run's final taxonomy; ``key`` is the stable ``S_<n>`` the LLM saw."""

    run = models.ForeignKey(SegmentationRun, on_delete=models.CASCADE, related_name="segments")
    key = models.CharField(max_length=20)
    name = models.CharField(max_length=300)
    definition = models.TextField(blank=True)
    item_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="semantic_segment_key_once")]
        ordering = ["run", "-item_count", "key"]

    def __str__(self) -> str:
        return f"{self.key} {self.name}"


class ItemSegment(models.Model):
    """An item's first-pass segment: a name of its batch's own taxonomy, before consolidation."""

    run = models.ForeignKey(SegmentationRun, on_delete=models.CASCADE, related_name="first_pass")
    item_id = models.CharField(max_length=64)
    segment_name = models.CharField(max_length=300)
    confidence = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item_id"], name="semantic_itemsegment_once")]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.segment_name} ({self.confidence:.2f})"


class RefinedItemSegment(models.Model):
    """An item's segment of the final taxonomy, after refinement."""

    run = models.ForeignKey(SegmentationRun, on_delete=models.CASCADE, related_name="refined")
    item_id = models.CharField(max_length=64)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="items")
    confidence = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item_id"], name="semantic_refined_once")]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.segment_id} ({self.confidence:.2f})"


class LLMInteraction(models.Model):
    """One LLM call's log file (prompt, raw answer, metadata) in the log storage, indexed here.

    ``cache_key`` (SHA-256 of model, temperature, prompt and schema) finds an identical earlier call:
    its file holds the answer, so a re-run or a resumed run asks nothing twice. ``sha256`` is the file's
    checksum, verified when the logs move to another storage.
    """

    class Type(models.TextChoices):
        SEGMENTATION = "segmentation"
        CONSOLIDATE = "consolidate_taxonomy"
        REFINE = "refine_assignments"
        NAME = "name_clusters", "Name clusters"  # embedding_first: clusters named from samples of their items

    run = models.ForeignKey(SegmentationRun, on_delete=models.CASCADE, related_name="interactions")
    interaction_type = models.CharField(max_length=30, choices=Type.choices)
    batch = models.PositiveIntegerField()
    attempt = models.PositiveIntegerField()
    path = models.CharField(max_length=1000, help_text="the log file's path or URL")
    prompt_file = models.CharField(max_length=300, blank=True, help_text="the archived prompt template")
    cache_key = models.CharField(max_length=64, db_index=True)
    sha256 = models.CharField(max_length=64)
    model = models.CharField(max_length=200, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    duration = models.FloatField(default=0.0, help_text="seconds")
    cached = models.BooleanField(default=False, help_text="answered from an earlier identical call")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="semantic_interaction_once")]
        ordering = ["run", "created_at", "id"]
        verbose_name = "LLM interaction"

    def __str__(self) -> str:
        return f"{self.interaction_type} b{self.batch} a{self.attempt}"
