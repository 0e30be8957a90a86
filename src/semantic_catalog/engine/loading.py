"""Load backends by dotted path, like Django's cache and storage backends, without importing Django."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from semantic_catalog.engine.errors import ConfigurationError


def import_string(dotted_path: str) -> Any:
    """Import ``package.module.Attribute``; raise ConfigurationError that names the bad part."""
    module_path, _, attribute = dotted_path.rpartition(".")
    if not module_path:
        raise ConfigurationError(f"{dotted_path!r} is not a dotted path like 'package.module.ClassName'.")
    try:
        module = import_module(module_path)
    except ImportError as exc:
        raise ConfigurationError(
            f"Cannot import module {module_path!r} for backend {dotted_path!r}: {exc}. "
            "Check the path, or install the extra that provides it."
        ) from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"Module {module_path!r} has no attribute {attribute!r}.") from None


def load_backend(dotted_path: str, base: type, options: dict[str, Any] | None = None) -> Any:
    """Instantiate the class at ``dotted_path`` with ``options``, checking it subclasses ``base``."""
    cls = import_string(dotted_path)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigurationError(f"{dotted_path!r} must be a subclass of {base.__module__}.{base.__name__}.")
    try:
        return cls(**(options or {}))
    except TypeError as exc:
        raise ConfigurationError(f"Bad OPTIONS for {dotted_path!r}: {exc}") from exc
