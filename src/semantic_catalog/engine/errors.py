"""Errors a user of the engine can cause; each message says what to do about it.

The Django API maps these to 4xx responses (see ``semantic_catalog.api.errors``); anything else is a bug.
"""

from __future__ import annotations

from typing import Any


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


class SegmentationError(SemanticCatalogError):
    """Base class of the errors a segmentation run raises on purpose."""


class SegmentationInputError(SegmentationError, ValueError):
    """The items of a run are unusable: an empty list, duplicate ids, empty texts, a malformed run id."""


class PromptTemplateError(SegmentationError, ConfigurationError):
    """A prompt template is missing, unreadable or lacks (or adds) a placeholder."""


class LLMError(SegmentationError):
    """The LLM could not give a usable answer: retries exhausted (invalid answers or transport errors)."""


class ContextOverflow(LLMError):
    """The server refused a prompt as longer than its context (the estimate let it through); the runner names the
    batch (``job``, its 0-based place in the stage) so the stage can split it and ask again."""

    job: int | None = None
    record: Any = None  # the refused call's InteractionRecord, once logged


class RunCancelled(SegmentationError):
    """The run was asked to stop (its stop check returned True); what was asked so far is cached."""


class LogStorageError(SegmentationError):
    """The log storage cannot be read or written, or a moved file's checksum does not match."""
