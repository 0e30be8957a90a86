"""LLM market segmentation (issue 16), Django-free: extract a taxonomy from batches of items, consolidate it,
refine every item's segment; every LLM call validated, retried, cached and logged as a file."""

from semantic_catalog.engine.segmentation.client import ChatClient, ChatReply, OpenAIChatClient
from semantic_catalog.engine.segmentation.logs import FileCallIndex
from semantic_catalog.engine.segmentation.move import move_run_logs
from semantic_catalog.engine.segmentation.pipeline import new_run_id, run_segmentation
from semantic_catalog.engine.segmentation.result import read_result, validate_result, write_result
from semantic_catalog.engine.segmentation.types import (
    Assignment,
    CallIndex,
    InteractionRecord,
    Item,
    Progress,
    Segment,
    SegmentationConfig,
    SegmentationResult,
    Usage,
)

__all__ = [
    "Assignment",
    "CallIndex",
    "ChatClient",
    "ChatReply",
    "FileCallIndex",
    "InteractionRecord",
    "Item",
    "OpenAIChatClient",
    "Progress",
    "Segment",
    "SegmentationConfig",
    "SegmentationResult",
    "Usage",
    "move_run_logs",
    "new_run_id",
    "read_result",
    "run_segmentation",
    "validate_result",
    "write_result",
]
