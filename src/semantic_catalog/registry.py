"""Which indexes exist: discovered from each installed app's ``semantic_indexes`` module (like admin.py)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from .conf import semantic_settings
from .engine.errors import SemanticCatalogError
from .indexes import SemanticIndex


class UnknownIndex(SemanticCatalogError, LookupError):
    """No index is registered under that name."""


class IndexRegistry:
    def __init__(self) -> None:
        self._indexes: dict[str, SemanticIndex] = {}

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
        from .sync import connect_signals

        connect_signals(index)
        return index_class

    def unregister(self, name: str) -> None:
        index = self._indexes.pop(name, None)
        if index is not None:
            from .sync import disconnect_signals

            disconnect_signals(index)

    def get(self, name: str) -> SemanticIndex:
        try:
            return self._indexes[name]
        except KeyError:
            known = ", ".join(sorted(self._indexes)) or "none registered"
            raise UnknownIndex(f"Unknown index {name!r}. Known indexes: {known}.") from None

    def for_model(self, model: type[models.Model]) -> list[SemanticIndex]:
        return [i for i in self._indexes.values() if i.model is model]

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
    """Import ``<app>.semantic_indexes`` of every installed app and register the indexes it defines."""
    module_name = semantic_settings.INDEX_MODULE
    for app_config in apps.get_app_configs():
        full_name = f"{app_config.name}.{module_name}"
        if find_spec(full_name) is None:
            continue
        module = import_module(full_name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, SemanticIndex) and obj.__module__ == full_name and obj.model is not None:
                registry.register(obj)
