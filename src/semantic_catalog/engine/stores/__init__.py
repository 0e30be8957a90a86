"""Vector stores. The LanceDB store is the embedded default."""

from .base import VectorStore

__all__ = ["VectorStore"]
