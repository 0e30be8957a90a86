"""The Indonesian recipes (../shared/data/multilingual/indonesian-recipes, 8 files = 8 main-ingredient classes) as
segmentation items, shared by the segmentation benchmarks: a recipe's class is the file it came from, and
recipes listed in more than one file are left out (their class is ambiguous)."""

from __future__ import annotations

import csv
import random
import sys

from _results import ROOT

sys.path.insert(0, str(ROOT / "src"))

from semantic_catalog.engine.segmentation.types import Item  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "multilingual" / "indonesian-recipes"
CLASSES = ("ayam", "ikan", "kambing", "sapi", "tahu", "telur", "tempe", "udang")
SEED = 16


def recipe_text(row: dict[str, str], ingredients: int = 4) -> str:
    """The title and the first few ingredients: what a catalogue line says about a recipe."""
    parts = [part.strip() for part in row["Ingredients"].split("--") if part.strip() and not part.strip().endswith(":")]
    return f"{row['Title'].strip()} (bahan: {', '.join(parts[:ingredients])})"


def single_class_rows() -> tuple[dict[str, list[dict[str, str]]], int]:
    """Each class's recipes listed in its file only (once, sorted by URL), and how many recipes were left out
    for being listed in more than one file."""
    rows: dict[str, list[dict[str, str]]] = {}
    files_of: dict[str, int] = {}
    for name in CLASSES:
        with (DATA / f"dataset-{name}.csv").open(encoding="utf-8-sig", newline="") as handle:
            rows[name] = [row for row in csv.DictReader(handle) if row["Title"].strip() and row["URL"].strip()]
        for url in {row["URL"] for row in rows[name]}:
            files_of[url] = files_of.get(url, 0) + 1
    single = {
        name: sorted({row["URL"]: row for row in found if files_of[row["URL"]] == 1}.values(), key=lambda r: r["URL"])
        for name, found in rows.items()
    }
    return single, sum(1 for n in files_of.values() if n > 1)


def load_sample(per_class: int | None) -> tuple[list[Item], dict[str, str]]:
    """(items, item id -> class): ``per_class`` recipes from each file, drawn with a fixed seed from those in one
    file only (fewer where a file has fewer); None: every such recipe."""
    single, _ = single_class_rows()
    items, labels = [], {}
    rng = random.Random(SEED)
    for name in CLASSES:
        rows = single[name] if per_class is None else rng.sample(single[name], min(per_class, len(single[name])))
        for row in rows:
            item_id = row["URL"].rsplit("/", 1)[-1].split("-", 1)[0]
            items.append(Item(id=item_id, text=recipe_text(row)))
            labels[item_id] = name
    return items, labels
