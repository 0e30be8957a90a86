"""The response schema of each stage (pydantic), sent to the server as the structured-output schema and used
to validate every answer. Checks that need the batch (which ids were asked, which segments exist) live in
the stages; these models only say what shape an answer has.

The model names are the schemas' ``title``s; the scripted test server tells the stages apart by them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

LOOSE_ID = re.compile(r"^\s*([PS])\s*[_\-\s]?\s*(\d+)\s*$", re.I)


def _id_spelling(value: Any) -> Any:
    """Small models write ``P1``, ``p_1`` or ``P-1``: the same id, so it is read as ``P_1``, not retried."""
    if isinstance(value, str) and (match := LOOSE_ID.match(value)):
        return f"{match.group(1).upper()}_{int(match.group(2))}"
    return value


def _percent(value: Any) -> Any:
    """A confidence written as a percentage (``90``) is read as 0.9."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 < value <= 100:
        return value / 100
    return value


ProductId = Annotated[
    str,
    Field(pattern=r"^P_[0-9]+$", description="a product id exactly as given, e.g. P_1"),
    BeforeValidator(_id_spelling),
]
SegmentId = Annotated[
    str,
    Field(pattern=r"^S_[0-9]+$", description="a segment id exactly as given, e.g. S_1"),
    BeforeValidator(_id_spelling),
]
Confidence = Annotated[float, Field(ge=0.0, le=1.0), BeforeValidator(_percent)]
# No maxLength: llama.cpp turns it into a grammar rule per character.
Name = Annotated[str, Field(min_length=1)]
Definition = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ExtractSegment(_Strict):
    name: Name
    definition: Definition


class ExtractAssignment(_Strict):
    product_id: ProductId
    segment: Name
    confidence: Confidence


class ExtractAnswer(_Strict):
    """Stage (a): a batch's taxonomy and the segment of every product in the batch."""

    segments: list[ExtractSegment] = Field(min_length=1)
    assignments: list[ExtractAssignment]


class ConsolidatedSegment(_Strict):
    name: Name
    definition: Definition
    merged_from: list[str]


class ConsolidateAnswer(_Strict):
    """Stage (b): several taxonomies merged into one; ``merged_from`` names the input segments covered."""

    segments: list[ConsolidatedSegment] = Field(min_length=1)


class RefineAssignment(_Strict):
    product_id: ProductId
    segment_id: SegmentId
    confidence: Confidence


class RefineAnswer(_Strict):
    """Stage (c): every product of the batch (re)assigned to one ``S_<n>`` of the consolidated taxonomy."""

    assignments: list[RefineAssignment]


class NamedCluster(_Strict):
    segment_id: SegmentId
    name: Name
    definition: Definition


class NameAnswer(_Strict):
    """embedding_first: a name and a definition for each cluster shown (``S_<n>``), from a sample of its items."""

    segments: list[NamedCluster] = Field(min_length=1)


Limits = dict[str, tuple[int, int]]  # a top-level list field -> (minItems, maxItems) for one batch


def json_schema(model: type[BaseModel], limits: Limits | None = None) -> dict[str, Any]:
    """The JSON schema sent to the server: pydantic's, with its ``title``, the ``$defs`` inlined (llama.cpp's
    grammar converter names rules after them and cannot parse the result) and plain character classes in
    patterns (``[0-9]``, not ``\\d``, for the same converter).

    ``limits`` bound the batch's lists (as many assignments as products, at most one segment per product):
    a server that turns the schema into a grammar then cannot loop on a list until the token limit, as small
    models do. Only the schema sent is bounded; answers are validated by the model itself, so one with a
    missing or extra id is still read and its id problems retried, not thrown away."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    schema = inline(schema)
    for field, (low, high) in (limits or {}).items():
        if field not in schema.get("properties", {}) or not 0 <= low <= high:
            raise ValueError(f"no list field {field!r} in {model.__name__}, or limits {low}..{high} make no sense")
        schema["properties"][field] |= {"minItems": low, "maxItems": high}
    return schema
