"""What cross-shop analysis needs of an index: each row's shop, category tree and identity.

```python
class ProductIndex(CrossStoreMixin, SemanticIndex):
    ...
    shop_field = "store"          # the model's foreign key (or column) naming the shop
    category_field = "category"   # a foreign key to a tree (category_parent_field / category_name_field)
    title_field, brand_field, price_field = "name", "brand", "price"
    description_field, model_number_field = "description", "mpn"   # optional, read when declared
```

Override ``shop_of`` / ``category_chain`` / ``product_record`` for other layouts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from semantic_catalog.engine.crossstore.product_matching import ProductRecord


class CrossStoreMixin:
    """Mix into a ``SemanticIndex`` (before it) to make its rows available to cross-shop analysis:
    category links, substitutions and same-product matches."""

    shop_field: ClassVar[str] = ""
    category_field: ClassVar[str] = ""
    category_parent_field: ClassVar[str] = "parent"
    category_name_field: ClassVar[str] = "name"
    title_field: ClassVar[str] = ""
    brand_field: ClassVar[str] = ""
    price_field: ClassVar[str] = ""
    description_field: ClassVar[str] = ""
    model_number_field: ClassVar[str] = ""

    def _analysis_needs(self, attribute: str) -> None:
        if not getattr(self, attribute):
            raise ImproperlyConfigured(
                f"{type(self).__name__}: set {attribute} (or override its method) for cross-store analysis."
            )

    def shop_of(self, obj: models.Model) -> str:
        """The shop a row belongs to, as a string."""
        self._analysis_needs("shop_field")
        return str(getattr(obj, self._model_field(self.shop_field).attname))  # type: ignore[attr-defined]

    def category_chain(self, obj: models.Model) -> list[tuple[str, str]]:
        """``(id, name)`` of the row's category and its ancestors, root first (empty: no category)."""
        self._analysis_needs("category_field")
        chain = []
        node = getattr(obj, self.category_field)
        while node is not None:
            chain.append((str(node.pk), str(getattr(node, self.category_name_field))))
            node = getattr(node, self.category_parent_field)
        return chain[::-1]

    def _text(self, obj: models.Model, attribute: str) -> str:
        name = getattr(self, attribute)
        return str(getattr(obj, name) or "") if name else ""

    def product_record(self, obj: models.Model) -> ProductRecord:
        """What same-product matching reads: title (``title_field``, else ``str(obj)``), brand, price, and
        description and model number when declared."""
        title = str(getattr(obj, self.title_field)) if self.title_field else str(obj)
        price = getattr(obj, self.price_field) if self.price_field else None
        return ProductRecord(
            str(obj.pk),
            self.shop_of(obj),
            title,
            self._text(obj, "brand_field"),
            float(price) if price else None,
            self._text(obj, "description_field"),
            self._text(obj, "model_number_field"),
        )

    @property
    def analysis_ready(self) -> bool:
        """Whether rows have a shop and a category tree (declared fields or overridden methods)."""
        cls = type(self)
        has_shop = bool(self.shop_field) or cls.shop_of is not CrossStoreMixin.shop_of
        has_tree = bool(self.category_field) or cls.category_chain is not CrossStoreMixin.category_chain
        return has_shop and has_tree

    def analysis_data(self, obj: models.Model) -> dict[str, Any] | None:
        """What the offline ``semantic-catalog analyze`` needs of a row; None when the index does not
        declare a shop and a category tree. (Its keys are the export file format, which says "store".)"""
        if not self.analysis_ready:
            return None
        record = self.product_record(obj)
        return {
            "store": record.shop,
            "category": self.category_chain(obj),
            "title": record.title,
            "brand": record.brand,
            "price": record.price,
            "description": record.description,
            "model_number": record.model_number,
        }


def analysis_ready(index: Any) -> bool:
    """Whether ``index`` declares what cross-shop analysis needs."""
    return isinstance(index, CrossStoreMixin) and index.analysis_ready
