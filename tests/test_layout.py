"""The README's "Layout" section matches the tree: every entry exists, every package and module is listed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_entries() -> dict[str, set[str]]:
    """Names listed per folder of the layout block (indentation gives the nesting)."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Layout\n.*?```\n(.*?)```", readme, re.S).group(1)
    listed: dict[str, set[str]] = {}
    parents: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = re.match(r"( *)(\S+)", line)
        if not match or len(match.group(1)) % 2 or len(match.group(1)) > 8:
            continue  # a continuation line of a description
        depth, name = len(match.group(1)) // 2, match.group(2)
        parents = [p for p in parents if p[0] < depth]
        folder = "/".join(p[1].strip("/") for p in parents)
        listed.setdefault(folder, set()).add(name.strip("/"))
        parents.append((depth, name))
    return listed


def test_every_listed_path_exists():
    for folder, names in layout_entries().items():
        for name in names:
            assert (ROOT / folder / name).exists(), f"README layout lists {folder}/{name}, which does not exist"


def test_every_package_and_module_is_listed():
    listed = layout_entries()
    for folder in ("src/semantic_catalog", "src/semantic_catalog/engine"):
        entries = listed.get(folder, set())
        for path in (ROOT / folder).iterdir():
            if path.name.startswith("__") or path.name == "migrations" or path.suffix not in ("", ".py"):
                continue
            if path.is_dir() and not (path / "__init__.py").exists():
                continue
            name = "management/commands" if path.name == "management" else path.name
            assert name in entries, f"{folder}/{path.name} is not in the README's layout section"
