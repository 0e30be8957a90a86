"""The Django-free core: documents, encoders, vector stores, retrieval and fusion.

Nothing under ``semantic_catalog.engine`` may import Django (an import-linter contract checks it), so
the offline machine and the tests can use it without a Django project.
"""

from semantic_catalog.engine.documents import Document, SearchHit, StoredRecord, content_hash, text_hash
from semantic_catalog.engine.encoders import Encoder, SentenceTransformerEncoder
from semantic_catalog.engine.errors import (
    CollectionMissing,
    ConfigurationError,
    InvalidFilter,
    InvalidQuery,
    NotIndexedYet,
    SemanticCatalogError,
    UnknownIds,
)
from semantic_catalog.engine.filters import FieldSpec, Filter, build_filters
from semantic_catalog.engine.indexer import IndexReport, index_documents, remove_documents
from semantic_catalog.engine.search.fusion import reciprocal_rank_fusion
from semantic_catalog.engine.stores import VectorStore

__all__ = [
    "CollectionMissing",
    "ConfigurationError",
    "Document",
    "Encoder",
    "FieldSpec",
    "Filter",
    "IndexReport",
    "InvalidFilter",
    "InvalidQuery",
    "NotIndexedYet",
    "SearchHit",
    "SemanticCatalogError",
    "SentenceTransformerEncoder",
    "StoredRecord",
    "UnknownIds",
    "VectorStore",
    "build_filters",
    "content_hash",
    "index_documents",
    "reciprocal_rank_fusion",
    "remove_documents",
    "text_hash",
]
