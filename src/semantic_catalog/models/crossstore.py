"""Tables of cross-store analysis: runs and their results (category links, substitutions, matches)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


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
    # the signals that moved the score, each with the points it added or took away ({} in older runs)
    reasons = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "product matches"  # not Django's "product matchs"
        constraints = [models.UniqueConstraint(fields=["run", "product", "match"], name="semantic_match_once")]

    def __str__(self) -> str:
        return f"{self.product} = {self.match} ({self.score:.3f})"


class MatchLabel(models.Model):
    """A person's verdict on two listings of an index: the very same item (``label`` true) or not.

    Stored once per unordered pair, the smaller id first (``left < right`` as Python orders strings,
    ``LabelledPair.of``); written by the admin's confirm / reject actions, the API and label files, and
    exported beside the catalog for ``semantic-catalog train-matcher``. Unlike analysis results, labels
    are not replaced by a run: they are the shop's own knowledge."""

    class Source(models.TextChoices):
        ADMIN = "admin", "admin"
        API = "api", "API"
        IMPORT = "import", "label file"

    index = models.CharField(max_length=100)
    left = models.CharField(max_length=64)
    right = models.CharField(max_length=64)
    label = models.BooleanField(help_text="true: the very same item; false: not the same item")
    source = models.CharField(max_length=10, choices=Source.choices)
    labelled_by = models.CharField(max_length=150, blank=True, help_text="the user who stored it (admin, API)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["index", "left", "right"], name="semantic_label_once"),
            # not left < right: PostgreSQL compares text by the database's collation, which need not be
            # Python's code point order (en_US skips punctuation), so the order is kept by the code
            models.CheckConstraint(condition=~models.Q(left=models.F("right")), name="semantic_label_two_products"),
        ]

    def __str__(self) -> str:
        return f"{self.left} {'=' if self.label else '!='} {self.right} ({self.index})"
