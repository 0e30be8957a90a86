"""The demo shop's catalog: stores, a category tree per store, products."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class Store(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    """One node of a store's own category tree (each store names its tree its own way)."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="categories")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    name = models.CharField(max_length=120)

    class Meta:
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["store", "parent", "name"], name="unique_category_name")
        ]

    def __str__(self) -> str:
        return self.path

    def ancestors(self) -> list[Category]:
        """This category and its parents, root first."""
        chain: list[Category] = []
        node: Category | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain[::-1]

    @property
    def path(self) -> str:
        return " > ".join(c.name for c in self.ancestors())

    @property
    def level(self) -> int:
        return len(self.ancestors())


class Product(models.Model):
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="products")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    brand = models.CharField(max_length=100, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    active = models.BooleanField(default=True)
    # auto_now on saves; the database default covers fixtures loaded without the column.
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    def __str__(self) -> str:
        return self.name
