"""Which indexes exist: discovered from each installed app's ``semantic_indexes`` module (like admin.py)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.indexes import SemanticIndex

logger = logging.getLogger("semantic_catalog")


class UnknownIndex(SemanticCatalogError, LookupError):
    """No index is registered under that name."""


class IndexRegistry:
    def __init__(self) -> None:
        self._indexes: dict[str, SemanticIndex] = {}
        # Asked on every save of every model (the sync receivers), so kept as a dict.
        self._by_model: dict[type[models.Model], list[SemanticIndex]] = {}
        # Declarations autodiscover could not register, by dotted class path: `manage.py check` reports them.
        self.invalid: dict[str, str] = {}

    def register(self, index_class: type[SemanticIndex]) -> type[SemanticIndex]:
        """Register an index class (usable as a decorator). Registering the same class twice is a no-op."""
        index = index_class()
        existing = self._indexes.get(index.name)
        if existing is not None:
            if type(existing) is index_class:
                return index_class
            raise ImproperlyConfigured(
                f"Two indexes are named {index.name!r}: {type(existing).__qualname__} and {index_class.__qualname__}. "
                "Give one of them a different 'name'."
            )
        self._indexes[index.name] = index
        self._by_model.setdefault(index.model, []).append(index)
        return index_class

    def unregister(self, name: str) -> None:
        index = self._indexes.pop(name, None)
        if index is not None:
            self._by_model[index.model].remove(index)

    def get(self, name: str) -> SemanticIndex:
        try:
            return self._indexes[name]
        except KeyError:
            known = ", ".join(sorted(self._indexes)) or "none registered"
            broken = f" {len(self.invalid)} declarations are invalid: run `manage.py check`." if self.invalid else ""
            raise UnknownIndex(f"Unknown index {name!r}. Known indexes: {known}.{broken}") from None

    def for_model(self, model: type[models.Model]) -> list[SemanticIndex]:
        return self._by_model.get(model) or []

    def select(self, names: list[str] | None) -> list[SemanticIndex]:
        """The named indexes (all when ``names`` is empty), failing on an unknown name."""
        return [self.get(n) for n in names] if names else list(self)

    def __iter__(self) -> Iterator[SemanticIndex]:
        return iter(sorted(self._indexes.values(), key=lambda i: i.name))

    def __len__(self) -> int:
        return len(self._indexes)


registry = IndexRegistry()


def register(index_class: type[SemanticIndex]) -> type[SemanticIndex]:
    """Decorator for indexes declared outside a ``semantic_indexes`` module."""
    return registry.register(index_class)


def autodiscover() -> None:
    """Import ``<app>.semantic_indexes`` of every installed app and register the indexes it defines.

    A declaration that cannot be registered (an unknown field, say) does not stop the project: it is
    logged and kept in ``registry.invalid``, and ``manage.py check`` reports it as semantic_catalog.E001.
    """
    module_name = semantic_settings.INDEX_MODULE
    for app_config in apps.get_app_configs():
        full_name = f"{app_config.name}.{module_name}"
        if find_spec(full_name) is None:
            continue
        module = import_module(full_name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, SemanticIndex) and obj.__module__ == full_name and obj.model is not None:
                try:
                    registry.register(obj)
                except ImproperlyConfigured as exc:
                    registry.invalid[f"{full_name}.{obj.__qualname__}"] = str(exc)
                    logger.error("Index %s.%s is not registered: %s", full_name, obj.__qualname__, exc)
