"""Filter fields and filters: declared once per index, validated here, pushed down by each store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from semantic_catalog.engine.errors import InvalidFilter

FieldType = Literal["str", "int", "float", "bool"]
Operator = Literal["eq", "in", "gte", "lte", "gt", "lt"]

FIELD_TYPES: tuple[str, ...] = ("str", "int", "float", "bool")
RANGE_OPERATORS = ("gte", "lte", "gt", "lt")
OPERATORS: tuple[str, ...] = ("eq", "in", *RANGE_OPERATORS)
MAX_IN_VALUES = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what an int filter column holds


@dataclass(frozen=True)
class FieldSpec:
    """A filterable column: its name, scalar type, and whether a row holds a list of values."""

    name: str
    type: FieldType = "str"
    many: bool = False

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"Field {self.name!r}: type must be one of {FIELD_TYPES}, not {self.type!r}.")

    def coerce(self, value: Any) -> Any:
        """Turn a request value (often a string) into this field's type, or raise InvalidFilter."""
        try:
            if self.type == "int":
                if isinstance(value, bool):
                    raise ValueError
                number = int(value)
                if not INT64_MIN <= number <= INT64_MAX:
                    raise InvalidFilter(
                        f"Filter {self.name!r} takes a 64-bit integer (from {INT64_MIN} to {INT64_MAX}), "
                        f"got {str(value)[:40]}."
                    )
                return number
            if self.type == "float":
                number = float(value)
                if number != number or number in (float("inf"), float("-inf")):
                    raise ValueError
                return number
            if self.type == "bool":
                if isinstance(value, bool):
                    return value
                text = str(value).strip().lower()
                if text in ("1", "true", "yes", "on"):
                    return True
                if text in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return str(value)
        except InvalidFilter:
            raise
        except (TypeError, ValueError):
            raise InvalidFilter(f"Filter {self.name!r} expects a value of type {self.type}, got {value!r}.") from None


@dataclass(frozen=True)
class Filter:
    """One condition: ``field op value``; ``in`` takes a tuple of values."""

    field: str
    op: Operator
    value: Any


def build_filters(
    specs: Sequence[FieldSpec], conditions: Mapping[str, Any] | Iterable[tuple[str, Any]]
) -> list[Filter]:
    """Validate raw conditions against the declared fields.

    Keys are ``field`` or ``field__op`` (op one of eq, in, gte, lte, gt, lt); a list value means ``in``.
    Raises InvalidFilter naming the allowed fields when a key is not declared.
    """
    by_name = {spec.name: spec for spec in specs}
    items = conditions.items() if isinstance(conditions, Mapping) else conditions
    filters: list[Filter] = []
    for key, raw in items:
        name, _, op = key.partition("__")
        op = op or "eq"
        spec = by_name.get(name)
        if spec is None:
            allowed = ", ".join(sorted(by_name)) or "(none: this index declares no filter fields)"
            raise InvalidFilter(f"Cannot filter on {name!r}. Allowed filter fields: {allowed}.")
        if op not in OPERATORS:
            raise InvalidFilter(f"Unknown filter operator {op!r} in {key!r}. Use one of: {', '.join(OPERATORS)}.")
        if op in RANGE_OPERATORS and (spec.type not in ("int", "float") or spec.many):
            raise InvalidFilter(f"Range filter {key!r} needs a single numeric field; {name!r} is not one.")
        values = list(raw) if isinstance(raw, (list, tuple, set)) else [raw]
        if not values:
            raise InvalidFilter(f"Filter {key!r} has no value.")
        if op in ("eq", "in") and (len(values) > 1 or op == "in"):
            if len(values) > MAX_IN_VALUES:
                raise InvalidFilter(f"Filter {key!r} has {len(values)} values; at most {MAX_IN_VALUES} allowed.")
            filters.append(Filter(name, "in", tuple(spec.coerce(v) for v in values)))
        elif len(values) > 1:
            raise InvalidFilter(f"Filter {key!r} takes one value, got {len(values)}.")
        else:
            filters.append(Filter(name, op, spec.coerce(values[0])))  # type: ignore[arg-type]
    return filters
