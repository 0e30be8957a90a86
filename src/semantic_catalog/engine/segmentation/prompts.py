"""Prompt templates are files: ``<name>_v1.txt`` in the bundled folder or in a folder of the user's own.

Templates use ``string.Template`` placeholders (``${products}``): JSON braces in the text need no escaping.
Each template must use exactly its placeholders; a missing file, a missing or unknown placeholder or a
malformed ``$`` is a ``PromptTemplateError`` (there is no built-in fallback text).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from semantic_catalog.engine.errors import PromptTemplateError

VERSION = "v1"
BUNDLED = Path(__file__).with_name("prompts")
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "extract_taxonomy": frozenset({"category", "products"}),
    "consolidate_taxonomy": frozenset({"category", "taxonomies"}),
    "refine_assignments": frozenset({"category", "segments", "products"}),
    "shared_retry": frozenset({"error"}),
    "name_clusters": frozenset({"category", "clusters"}),
}
# The templates a run of each mode needs; a user's folder made for the full mode keeps working.
MODE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "full": ("extract_taxonomy", "consolidate_taxonomy", "refine_assignments", "shared_retry"),
    "embedding_first": ("name_clusters", "refine_assignments", "shared_retry"),
}


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    filename: str  # e.g. extract_taxonomy_v1.txt, the name it is archived under
    text: str

    def render(self, **values: str) -> str:
        return Template(self.text).substitute(values)


def load_template(name: str, folder: str | Path | None = None) -> PromptTemplate:
    """One checked template from ``folder`` (None: the bundled prompts)."""
    if name not in PLACEHOLDERS:
        raise PromptTemplateError(f"unknown prompt template {name!r}; expected one of {', '.join(PLACEHOLDERS)}.")
    base = Path(folder) if folder else BUNDLED
    filename = f"{name}_{VERSION}.txt"
    path = base / filename
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptTemplateError(
            f"prompt template {filename} is missing from {'the bundled prompts' if folder is None else base}; "
            f"copy it from {BUNDLED} and edit it."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptTemplateError(f"prompt template {filename} cannot be read: {exc}.") from None
    template = Template(text)
    if not template.is_valid():
        raise PromptTemplateError(
            f"prompt template {filename} has a malformed placeholder; write ${{name}} for a placeholder and $$ "
            "for a dollar sign."
        )
    found = set(template.get_identifiers())
    expected = PLACEHOLDERS[name]
    if missing := sorted(expected - found):
        raise PromptTemplateError(
            f"prompt template {filename} lacks the placeholder(s) {', '.join('${' + m + '}' for m in missing)}."
        )
    if unknown := sorted(found - expected):
        raise PromptTemplateError(
            f"prompt template {filename} uses unknown placeholder(s) {', '.join('${' + u + '}' for u in unknown)}; "
            f"it may use only {', '.join('${' + e + '}' for e in sorted(expected))}."
        )
    return PromptTemplate(name=name, filename=filename, text=text)


def load_templates(folder: str | Path | None = None, mode: str = "full") -> dict[str, PromptTemplate]:
    """The templates ``mode`` needs, checked before a run asks anything."""
    return {name: load_template(name, folder) for name in MODE_TEMPLATES[mode]}
