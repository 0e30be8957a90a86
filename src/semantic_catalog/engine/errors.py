"""Errors a user of the engine can cause; each message says what to do about it.

The Django API maps these to 4xx responses (see ``semantic_catalog.api.errors``); anything else is a bug.
"""

from __future__ import annotations


class SemanticCatalogError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigurationError(SemanticCatalogError):
    """A backend or setting is wrong (bad dotted path, bad option)."""


class InvalidQuery(SemanticCatalogError, ValueError):
    """A search request is malformed: empty text, unknown mode, limit out of range."""


class InvalidFilter(InvalidQuery):
    """A filter names an undeclared field, uses an unsupported operator or a value of the wrong type."""


class UnknownIds(SemanticCatalogError, LookupError):
    """Ids that are not in the index's queryset (or not in the store)."""

    def __init__(self, message: str, ids: list[str]):
        super().__init__(message)
        self.ids = ids


class NotIndexedYet(SemanticCatalogError):
    """The row exists but its vector is not in the store yet (the outbox has not been drained)."""


class CollectionMissing(SemanticCatalogError):
    """The store has no table for a collection: it must be (re)built."""


class BadFile(SemanticCatalogError):
    """A file is not a valid export, vector, result or judgment file; the message names the file, record and reason."""
