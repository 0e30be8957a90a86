"""Which physical vector-store tables exist per index, and which one serves."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Collection(models.Model):
    """One physical table of the vector store for (index, embedding model, text version).

    A rebuild creates a ``building`` collection, fills it while the ``active`` one keeps serving,
    then swaps states in one transaction; writes go to both meanwhile so no update is missed.
    """

    class State(models.TextChoices):
        BUILDING = "building"
        ACTIVE = "active"
        RETIRED = "retired"

    index = models.CharField(max_length=100)
    table = models.CharField(max_length=200, unique=True)
    model = models.CharField(max_length=200, help_text="name of the embedding model whose vectors the table holds")
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
