"""Shared options of the semantic_* commands."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.registry import registry


class IndexCommand(BaseCommand):
    def add_index_argument(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--index",
            action="append",
            dest="indexes",
            metavar="NAME",
            help="Index name (repeatable). Default: every registered index.",
        )

    def selected(self, options: dict[str, Any]) -> list[SemanticIndex]:
        try:
            indexes = registry.select(options.get("indexes"))
        except SemanticCatalogError as exc:
            raise CommandError(str(exc)) from exc
        if not indexes:
            raise CommandError("No semantic indexes are registered: declare one in an app's semantic_indexes.py.")
        return indexes

    def positive(self, value: int, name: str) -> int:
        if value < 1:
            raise CommandError(f"{name} must be at least 1, got {value}.")
        return value
