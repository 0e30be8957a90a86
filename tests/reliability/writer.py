"""A writer process of the reliability suite (run by ``cluster.Cluster``, never imported by tests).

``python -m tests.reliability.writer setup [--warm]`` migrates, creates the shops and categories
and, with --warm, loads the model once (so that the workers find its ONNX export made).
``python -m tests.reliability.writer write ID WRITES SEED OUT`` makes WRITES row changes on products
of its own, the way an application does: creates, updates (text and filter fields), deactivations
and reactivations, deletes through signals, and ``bulk_create`` / ``QuerySet.update`` followed by
``mark_dirty`` (they bypass signals); then writes what it did as JSON to OUT.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from decimal import Decimal

import django

WORDS = ["drill", "hose", "saw", "pan", "kettle", "rake", "lamp", "ladder", "sander", "wrench", "mower", "grill"]
CATEGORIES = [("Brightfield Home", "Tools", "Drills"), ("Brightfield Home", "Kitchen", "Cookware"),
              ("Tooler & Co", "Outdoor", "Watering")]
# Kind of change -> weight. Bulk kinds change BULK rows at once.
KINDS = {"create": 25, "update": 25, "price": 10, "toggle_active": 10, "delete": 10, "bulk_create": 10,
         "queryset_update": 10}
BULK = 5


def setup(warm: bool) -> None:
    from django.core.management import call_command

    from semantic_catalog.backends import get_encoder
    from shop.models import Category, Store

    call_command("migrate", verbosity=0)
    for shop, root, leaf in CATEGORIES:
        store, _ = Store.objects.get_or_create(name=shop, slug=shop.split()[0].lower())
        parent, _ = Category.objects.get_or_create(store=store, parent=None, name=root)
        Category.objects.get_or_create(store=store, parent=parent, name=leaf)
    if warm:  # the first run on this machine makes the ONNX export here, before the workers need it
        get_encoder().encode(["warm up"])


class Writer:
    """Changes products it created itself, so writers never race on a row."""

    def __init__(self, writer_id: int, seed: int):
        from shop.models import Category

        self.rng = random.Random(seed)
        self.tag = f"w{writer_id}"
        self.leaves = list(Category.objects.filter(parent__isnull=False).select_related("store"))
        self.mine: list[int] = []
        self.done: Counter[str] = Counter()
        self.serial = 0

    def _new(self):
        from shop.models import Product

        self.serial += 1
        category = self.rng.choice(self.leaves)
        words = self.rng.sample(WORDS, 3)
        return Product(
            name=f"{words[0].title()} {words[1]} {self.tag}-{self.serial}",
            description=f"a {words[2]} for the {self.rng.choice(WORDS)}",
            price=Decimal(self.rng.randint(1, 500)),
            category=category,
            store=category.store,
        )

    def _one(self):
        from shop.models import Product

        return Product.objects.get(pk=self.rng.choice(self.mine))

    def step(self, left: int) -> int:
        """One change (or BULK at once); returns the number of rows changed."""
        from django.db import transaction

        from semantic_catalog.sync.changes import mark_dirty
        from shop.models import Product

        kinds = list(KINDS) if len(self.mine) >= BULK else ["create"]
        kind = self.rng.choices(kinds, weights=[KINDS[k] for k in kinds])[0]
        if kind == "create":
            product = self._new()
            product.save()
            self.mine.append(product.pk)
        elif kind in ("update", "price", "toggle_active"):
            product = self._one()
            if kind == "update":
                product.name = f"{product.name.split(' (')[0]} ({self.rng.choice(WORDS)})"
            elif kind == "price":
                product.price = Decimal(self.rng.randint(1, 500))  # a filter field: the vector is reused
            else:
                product.active = not product.active
            product.save()
        elif kind == "delete":
            pk = self.mine.pop(self.rng.randrange(len(self.mine)))
            Product.objects.get(pk=pk).delete()
        elif kind == "bulk_create":
            with transaction.atomic():
                rows = Product.objects.bulk_create([self._new() for _ in range(min(BULK, left))])
                mark_dirty(Product, rows)
            self.mine.extend(row.pk for row in rows)
            self.done[kind] += len(rows)
            return len(rows)
        else:  # queryset_update: bypasses signals too
            pks = self.rng.sample(self.mine, min(BULK, left))
            with transaction.atomic():
                Product.objects.filter(pk__in=pks).update(description=f"bulk {self.rng.choice(WORDS)} {self.serial}")
                mark_dirty(Product, pks)
            self.serial += 1
            self.done[kind] += len(pks)
            return len(pks)
        self.done[kind] += 1
        return 1


def write(writer_id: int, writes: int, seed: int, out: str) -> None:
    """A change that fails because SQLite stayed locked past its timeout is rolled back whole (the
    row with its outbox event), as a request's would be: it is counted and another change is made."""
    from django.db import OperationalError

    writer = Writer(writer_id, seed)
    left, locked = writes, 0
    while left > 0:
        try:
            left -= writer.step(left)
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            locked += 1
    with open(out, "w") as handle:
        json.dump({"writes": writes, "kinds": dict(writer.done), "products": len(writer.mine),
                   "locked": locked}, handle)


def main(argv: list[str]) -> None:
    django.setup()
    if argv[0] == "setup":
        setup(warm="--warm" in argv)
    elif argv[0] == "write":
        write(int(argv[1]), int(argv[2]), int(argv[3]), argv[4])
    else:
        raise SystemExit(f"unknown command {argv[0]!r}: setup or write")


if __name__ == "__main__":
    main(sys.argv[1:])
