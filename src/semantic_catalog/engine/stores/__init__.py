"""Vector stores. The LanceDB store is the embedded default."""

from semantic_catalog.engine.stores.base import VectorStore

__all__ = ["VectorStore"]
