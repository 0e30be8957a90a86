"""SQL state of the semantic layer. Django loads an app's tables from this one module, so each
feature's tables live in their own file here and are gathered below."""

from semantic_catalog.models.collection import Collection
from semantic_catalog.models.crossstore import AnalysisRun, CategoryLink, MatchLabel, ProductMatch, Substitution
from semantic_catalog.models.segmentation import (
    ItemSegment,
    LLMInteraction,
    RefinedItemSegment,
    RunItem,
    Segment,
    SegmentationRun,
)
from semantic_catalog.models.sync import DrainRequest, IndexLease, SyncEvent

__all__ = [
    "AnalysisRun",
    "CategoryLink",
    "Collection",
    "DrainRequest",
    "IndexLease",
    "ItemSegment",
    "LLMInteraction",
    "MatchLabel",
    "ProductMatch",
    "RefinedItemSegment",
    "RunItem",
    "Segment",
    "SegmentationRun",
    "Substitution",
    "SyncEvent",
]
