"""System checks (``manage.py check``) for index declarations and settings, so a mistake shows when the
project starts instead of at the first save or search.

Errors: E001 a declaration that could not be registered, E002 a text field the model does not have,
E003 a template variable that is no field of the model, E004 an abstract model, E007 an unknown
keyword ``language`` or ``keyword_options`` LanceDB cannot apply, E010 a bad
SEMANTIC_CATALOG setting. Warnings (the index still serves): W001 ``text_version`` changed since
the active collection was built, W002 the active collection's model is not configured.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.template.base import VariableNode
from django.template.defaulttags import ForNode, WithNode

from semantic_catalog.backends import available_encoder_names
from semantic_catalog.collections import active_collection
from semantic_catalog.conf import DEFAULTS, semantic_settings
from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.registry import registry

CHECK_ID = "semantic_catalog.{}"


@checks.register("semantic_catalog")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    for key in DEFAULTS:
        try:
            getattr(semantic_settings, key)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), obj="SEMANTIC_CATALOG", id=CHECK_ID.format("E010")))
            if "Unknown SEMANTIC_CATALOG keys" in str(exc):
                break  # every key reports the same unknown keys
    return errors


def dict_setting_errors(key: str, problems: Any, check_id: str) -> list[checks.CheckMessage]:
    """One error per bad key of the dict setting ``SEMANTIC_CATALOG[key]``, as ``problems(value)`` finds
    them (the wings' E020 / E030); nothing when SEMANTIC_CATALOG itself is wrong (E010 says why)."""
    try:
        value = getattr(semantic_settings, key)
    except ImproperlyConfigured:
        return []
    hint = f"See the README's settings table ({key})."
    return [checks.Error(m, hint=hint, obj="SEMANTIC_CATALOG", id=CHECK_ID.format(check_id)) for m in problems(value)]


@checks.register("semantic_catalog")
def check_declarations(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = [
        checks.Error(
            message,
            hint="Fix the declaration: until then this index is not registered and nothing of it is kept in sync.",
            obj=path,
            id=CHECK_ID.format("E001"),
        )
        for path, message in registry.invalid.items()
    ]
    for index in registry:
        errors += _text_problems(index)
        errors += _keyword_problems(index)
        if index.model._meta.abstract:  # type: ignore[union-attr]
            errors.append(
                checks.Error(
                    f"{index.model.__name__} is an abstract model: it has no rows to index.",  # type: ignore[union-attr]
                    hint="Declare the index on a concrete model.",
                    obj=type(index),
                    id=CHECK_ID.format("E004"),
                )
            )
    return errors


@checks.register("semantic_catalog")
def check_collections(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """What the active collections say about the declarations (skipped before the first migrate)."""
    warnings: list[checks.CheckMessage] = []
    for index in registry:
        try:
            collection = active_collection(index)
        except DatabaseError:
            return []  # no tables yet
        if collection is None:
            continue
        if collection.text_version != index.text_version:
            warnings.append(
                checks.Warning(
                    f"Index {index.name!r} declares text_version {index.text_version}, but its active collection "
                    f"was built with text_version {collection.text_version}.",
                    hint=f"Run `manage.py semantic_index --index {index.name} --rebuild` (search keeps serving "
                    "the old collection until the new one is complete).",
                    obj=type(index),
                    id=CHECK_ID.format("W001"),
                )
            )
        try:
            configured = available_encoder_names()
        except (ImproperlyConfigured, SemanticCatalogError):
            continue  # E010 says why
        if collection.model not in configured:
            warnings.append(
                checks.Warning(
                    f"Index {index.name!r} was built with model {collection.model!r}, which is not configured: "
                    "its searches fail until it is.",
                    hint=f"Add {collection.model!r} to SEMANTIC_CATALOG['ENCODERS'], or run "
                    f"`manage.py semantic_index --index {index.name} --rebuild`.",
                    obj=type(index),
                    id=CHECK_ID.format("W002"),
                )
            )
    return warnings


def _keyword_problems(index: SemanticIndex) -> list[checks.CheckMessage]:
    try:
        index.analyzer  # noqa: B018 - validates language and keyword_options
    except SemanticCatalogError as exc:
        return [
            checks.Error(
                str(exc),
                hint="Fix 'language' / 'keyword_options': until then its keyword index keeps its old analyser.",
                obj=type(index),
                id=CHECK_ID.format("E007"),
            )
        ]
    return []


def _text_problems(index: SemanticIndex) -> list[checks.CheckMessage]:
    model = index.model
    problems = []
    for name in index.text_fields:
        if not hasattr(model, name):
            problems.append(
                checks.Error(
                    f"text_fields names {name!r}, which {model.__name__} does not have.",  # type: ignore[union-attr]
                    hint="Use the name of a field, property or attribute of the model.",
                    obj=type(index),
                    id=CHECK_ID.format("E002"),
                )
            )
    for name in sorted(template_names(index) - template_context_names(index)):
        problems.append(
            checks.Error(
                f"text_template uses {{{{ {name} }}}}, which is no field of {model.__name__}: "  # type: ignore[union-attr]
                "it would render as nothing.",
                hint="Use a field name, or object.<attribute> for properties and methods.",
                obj=type(index),
                id=CHECK_ID.format("E003"),
            )
        )
    return problems


def template_names(index: SemanticIndex) -> set[str]:
    """The first name of every variable the text template reads, less names its own tags define."""
    template = index._template
    if template is None:
        return set()
    local = {"forloop"}
    for node in template.nodelist.get_nodes_by_type(ForNode):
        local.update(node.loopvars)
    for node in template.nodelist.get_nodes_by_type(WithNode):
        local.update(node.extra_context)
    names = set()
    for node in template.nodelist.get_nodes_by_type(VariableNode):
        variable = node.filter_expression.var
        lookups = getattr(variable, "lookups", None)
        if lookups:
            names.add(lookups[0])
    return names - local


def template_context_names(index: SemanticIndex) -> set[str]:
    """What ``get_text`` puts in the template context: ``object`` and every concrete field by name."""
    return {"object", *(field.name for field in index.model._meta.concrete_fields)}  # type: ignore[union-attr]
