"""System checks of cross-store declarations: E005 cross-store attributes set without
``CrossStoreMixin`` (or under their old names), E006 a shop, category, title, brand, price, description or
model-number field the model does not have."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import FieldDoesNotExist

from semantic_catalog.crossstore.declaration import CrossStoreMixin
from semantic_catalog.registry import registry

MIXIN_ATTRIBUTES = (
    "shop_field",
    "category_field",
    "title_field",
    "brand_field",
    "price_field",
    "description_field",
    "model_number_field",
)
READ_ATTRIBUTES = ("title_field", "brand_field", "price_field", "description_field", "model_number_field")
RENAMED = {"store_field": "shop_field"}


@checks.register("semantic_catalog")
def check_crossstore_declarations(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    for index in registry:
        cls = type(index)
        for old, new in RENAMED.items():
            if hasattr(cls, old):
                problems.append(
                    checks.Error(
                        f"{cls.__name__} sets {old}, which is now {new} on CrossStoreMixin.",
                        hint=f"Rename {old} to {new} and add CrossStoreMixin to the index's bases.",
                        obj=cls,
                        id="semantic_catalog.E005",
                    )
                )
        if not isinstance(index, CrossStoreMixin):
            stray = [name for name in MIXIN_ATTRIBUTES if getattr(cls, name, "")]
            if stray:
                problems.append(
                    checks.Error(
                        f"{cls.__name__} sets {', '.join(stray)} but is no CrossStoreMixin, so cross-store "
                        "analysis ignores them.",
                        hint="Declare it as `class ...(CrossStoreMixin, SemanticIndex)` "
                        "(from semantic_catalog.crossstore import CrossStoreMixin).",
                        obj=cls,
                        id="semantic_catalog.E005",
                    )
                )
            continue
        for attribute in ("shop_field", "category_field"):
            name = getattr(index, attribute)
            if not name:
                continue
            try:
                index.model._meta.get_field(name)  # type: ignore[union-attr]
            except FieldDoesNotExist:
                problems.append(
                    checks.Error(
                        f"{attribute} is {name!r}, which is no field of {index.model.__name__}.",  # type: ignore[union-attr]
                        hint="Name a foreign key or column of the model, or override shop_of / category_chain.",
                        obj=cls,
                        id="semantic_catalog.E006",
                    )
                )
        for attribute in READ_ATTRIBUTES:  # read with getattr: a field or any attribute of the model
            name = getattr(index, attribute)
            if name and not hasattr(index.model, name):
                problems.append(
                    checks.Error(
                        f"{attribute} is {name!r}, which is no field or attribute of {index.model.__name__}.",  # type: ignore[union-attr]
                        hint="Name a field (or property) of the model that matching should read, or leave it unset.",
                        obj=cls,
                        id="semantic_catalog.E006",
                    )
                )
    return problems
