"""Labelled pairs: a person's verdict that two listings are (or are not) the very same item.

Staff confirm or reject proposed matches in the admin or through the API; label files carry them to the
offline machine (``semantic_export`` writes ``<export>.labels.jsonl`` beside the catalog) and back in
(``manage.py semantic_labels import``). A file is CSV (a header with ``left,right,label``) or JSONL (one
``{"left", "right", "label"}`` per line); a label is 1 / 0, true / false, match / non-match. A pair is
unordered: it is stored with the smaller id first, so (a, b) and (b, a) are one pair.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semantic_catalog.engine.errors import BadFile

TRUE = {"1", "true", "yes", "match", "same"}
FALSE = {"0", "false", "no", "non-match", "nonmatch", "non_match", "different"}
MAX_ID = 64  # the id columns of the labels table (and of every result table)
MAX_SHOWN = 20


@dataclass(frozen=True, order=True)
class LabelledPair:
    """``left`` and ``right`` (product ids, ``left < right``) are the same item when ``label`` is true."""

    left: str
    right: str
    label: bool

    @classmethod
    def of(cls, a: str, b: str, label: bool) -> LabelledPair:
        """The pair in its stored order (smaller id first)."""
        return cls(*sorted((str(a), str(b))), label)  # type: ignore[call-arg]


def parse_label(value: Any) -> bool | None:
    """True, False, or None when ``value`` is no label (2, "maybe", 1.5)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if isinstance(value, str) else ""
    return True if text in TRUE else False if text in FALSE else None


def check_label_rows(rows: Iterable[Any], where: str) -> tuple[list[LabelledPair], list[str]]:
    """The pairs of ``rows`` (``{"left", "right", "label"}``) and every problem with them: a missing or
    too long id, a pair of one id with itself, a label that is no label, one pair given twice with
    different labels (the same label twice is kept once)."""
    pairs: dict[tuple[str, str], LabelledPair] = {}
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        at = f"{where} row {number}"
        if not isinstance(row, dict):
            problems.append(f"{at}: expected an object with left, right and label")
            continue
        ids = [row.get(side) for side in ("left", "right")]
        if any(not isinstance(i, (str, int)) or isinstance(i, bool) or str(i).strip() == "" for i in ids):
            problems.append(f"{at}: left and right must be product ids")
            continue
        left, right = (str(i).strip() for i in ids)
        label = parse_label(row.get("label"))
        if max(len(left), len(right)) > MAX_ID:
            problems.append(f"{at}: an id is longer than {MAX_ID} characters")
        elif left == right:
            problems.append(f"{at}: left and right are the same product ({left})")
        elif label is None:
            problems.append(f"{at}: label {row.get('label')!r} is not 1/0, true/false or match/non-match")
        else:
            pair = LabelledPair.of(left, right, label)
            key = (pair.left, pair.right)
            if key in pairs and pairs[key].label != label:
                problems.append(f"{at}: pair ({left}, {right}) was labelled the other way in an earlier row")
            pairs[key] = pair
    return sorted(pairs.values()), problems


def summary(problems: Sequence[str]) -> str:
    shown = "; ".join(problems[:MAX_SHOWN])
    return shown + (f"; and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else "")


def parse_label_file(text: str, name: str) -> list[LabelledPair]:
    """The pairs of a label file's text (CSV or JSONL, told apart by ``name``'s suffix, else by the
    first character); ``BadFile`` listing every bad row."""
    suffix = Path(name).suffix.lower()
    jsonl = suffix in (".jsonl", ".ndjson") or (suffix != ".csv" and text.lstrip().startswith("{"))
    rows: list[Any] = []
    if jsonl:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except (ValueError, RecursionError):
                    raise BadFile(f"{name} line {number}: not JSON.") from None
    else:
        reader = csv.DictReader(io.StringIO(text))
        columns = set(reader.fieldnames or [])
        if not {"left", "right", "label"} <= columns:
            raise BadFile(f"{name}: a CSV label file needs the header left,right,label (found {sorted(columns)}).")
        rows = list(reader)
    pairs, problems = check_label_rows(rows, name)
    if problems:
        raise BadFile(f"{len(problems)} bad rows in {name}, nothing was read: {summary(problems)}")
    return pairs


def read_label_file(path: str | Path) -> list[LabelledPair]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadFile(f"{path}: no such file.") from None
    except UnicodeDecodeError:
        raise BadFile(f"{path}: not UTF-8 text.") from None
    return parse_label_file(text, str(path))


def write_label_file(path: str | Path, pairs: Iterable[LabelledPair]) -> int:
    """Write JSONL (or CSV for a .csv path); returns how many pairs were written."""
    path = Path(path)
    pairs = list(pairs)
    with path.open("w", encoding="utf-8", newline="") as out:
        if path.suffix.lower() == ".csv":
            writer = csv.writer(out)
            writer.writerow(["left", "right", "label"])
            writer.writerows([p.left, p.right, int(p.label)] for p in pairs)
        else:
            out.writelines(json.dumps({"left": p.left, "right": p.right, "label": int(p.label)}) + "\n" for p in pairs)
    return len(pairs)


def labels_path(export: str | Path) -> Path:
    """Where the labels exported with a catalog file live: ``shop.jsonl`` -> ``shop.labels.jsonl``."""
    export = Path(export)
    return export.with_name(f"{export.stem}.labels.jsonl")
