"""System checks report declaration mistakes with ids (``manage.py check``), and fixtures are indexed."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import pytest
from django.core import checks
from django.core.management import call_command

from semantic_catalog.crossstore import CrossStoreMixin
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.registry import autodiscover, registry
from semantic_catalog.search import search
from shop.models import Product


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return sorted(message.id for message in messages)


def semantic_checks() -> list[checks.CheckMessage]:
    return checks.run_checks(tags=["semantic_catalog"])


@pytest.fixture
def declared():
    """Register index classes for one test, then remove them (and any recorded invalid declaration)."""
    names: list[str] = []

    def declare(index_class: type[SemanticIndex]) -> None:
        registry.register(index_class)
        names.append(index_class.name)

    yield declare
    for name in names:
        registry.unregister(name)
    registry.invalid.clear()


def test_the_demo_project_has_no_issues(db):
    assert semantic_checks() == []


def test_an_invalid_declaration_is_reported_not_raised_at_startup(db, settings):
    """autodiscover keeps going past a declaration with an unknown field; check names it E001."""
    module_name = "shop.broken_semantic_indexes"
    module = types.ModuleType(module_name)
    module.__spec__ = importlib.machinery.ModuleSpec(module_name, None)

    class TypoIndex(SemanticIndex):
        model = Product
        name = "typo"
        text_fields = ["name"]
        filter_fields = ["prise"]

    TypoIndex.__module__, TypoIndex.__qualname__ = module_name, "TypoIndex"
    module.TypoIndex = TypoIndex
    sys.modules[module_name] = module
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "INDEX_MODULE": "broken_semantic_indexes"}
    try:
        autodiscover()
        messages = semantic_checks()
        assert ids(messages) == ["semantic_catalog.E001"]
        assert messages[0].obj == f"{module_name}.TypoIndex" and "no field 'prise'" in messages[0].msg
        with pytest.raises(LookupError, match="1 declarations are invalid: run `manage.py check`"):
            registry.get("typo")
    finally:
        del sys.modules[module_name]
        registry.invalid.clear()


def test_a_template_that_does_not_parse_is_an_improperly_configured_declaration():
    from django.core.exceptions import ImproperlyConfigured

    class Broken(SemanticIndex):
        model = Product
        text_template = "{{ name }} {% if %}"

    with pytest.raises(ImproperlyConfigured, match="text_template does not parse"):
        Broken()


def test_unknown_text_fields_and_template_variables(db, declared):
    class Misspelt(SemanticIndex):
        model = Product
        name = "misspelt"
        text_fields = ["name", "descripton"]

    class Template(SemanticIndex):
        model = Product
        name = "templated"
        text_template = (
            "{{ name }} {{ nmae|upper }} {{ object.category }} {{ category.name }} "
            "{% for word in object.name.split %}{{ word }} {{ forloop.counter }}{% endfor %}"
            "{% with shelf=category %}{{ shelf }}{% endwith %}"
        )

    declared(Misspelt)
    declared(Template)
    messages = semantic_checks()
    assert ids(messages) == ["semantic_catalog.E002", "semantic_catalog.E003"]
    by_id = {m.id: m for m in messages}
    assert "'descripton'" in by_id["semantic_catalog.E002"].msg and by_id["semantic_catalog.E002"].obj is Misspelt
    assert "{{ nmae }}" in by_id["semantic_catalog.E003"].msg and by_id["semantic_catalog.E003"].obj is Template


def test_cross_store_attributes_need_the_mixin(db, declared):
    class OldStyle(SemanticIndex):
        model = Product
        name = "old_style"
        text_fields = ["name"]
        store_field = "store"
        category_field = "category"

    class WrongField(CrossStoreMixin, SemanticIndex):
        model = Product
        name = "wrong_field"
        text_fields = ["name"]
        shop_field = "shop"
        category_field = "category"

    declared(OldStyle)
    declared(WrongField)
    messages = semantic_checks()
    assert ids(messages) == ["semantic_catalog.E005", "semantic_catalog.E005", "semantic_catalog.E006"]
    texts = " ".join(m.msg for m in messages)
    assert "store_field, which is now shop_field" in texts and "is no CrossStoreMixin" in texts
    assert "shop_field is 'shop', which is no field of Product" in texts


def test_a_bad_setting_is_reported(db, settings):
    settings.SEMANTIC_CATALOG = {**settings.SEMANTIC_CATALOG, "HYBRID_FUSION": "max"}
    messages = semantic_checks()
    assert ids(messages) == ["semantic_catalog.E010"] and "HYBRID_FUSION" in messages[0].msg


def test_a_bad_temporal_setting_is_reported_key_by_key(db, settings):
    settings.SEMANTIC_CATALOG = {
        **settings.SEMANTIC_CATALOG,
        "TEMPORAL": {"TASK_QUEUE": "", "BATCH_SIZE": 0, "DRAIN": "yes", "QUEUE": "x"},
    }
    errors = [e for e in checks.run_checks() if e.id == "semantic_catalog.E030"]
    text = " ".join(e.msg for e in errors)
    assert len(errors) == 4, text
    assert "Unknown SEMANTIC_CATALOG['TEMPORAL'] keys: QUEUE" in text
    assert "['TASK_QUEUE'] must be a non-empty string" in text and "['DRAIN'] must be True or False" in text
    assert "['BATCH_SIZE'] must be a whole number, 1 or more, not 0" in text


@pytest.mark.django_db(transaction=True)
def test_text_version_and_model_changes_since_the_build_are_warned(make_product, settings):
    from semantic_catalog.collections import active_collection
    from tests.helpers import run

    make_product("Cordless drill")
    run("semantic_index")
    index = registry.get("products")
    assert semantic_checks() == []
    collection = active_collection(index)
    collection.text_version = index.text_version + 1
    collection.model = "retired-model"
    collection.save()
    messages = semantic_checks()
    assert ids(messages) == ["semantic_catalog.W001", "semantic_catalog.W002"]
    assert all("--rebuild" in m.hint for m in messages)


@pytest.mark.django_db(transaction=True)
def test_rows_loaded_from_a_fixture_are_indexed(tmp_path):
    """loaddata saves with raw=True; those saves write outbox rows like any other, and the drain reads
    the rows after the fixture's transaction commits, when their relations exist too."""
    fixture = tmp_path / "catalog.json"
    fixture.write_text(
        json.dumps(
            [
                {"model": "shop.product", "pk": 7, "fields": {
                    "store": 3, "category": 5, "name": "Brass garden sprinkler", "price": "12.00", "active": True,
                }},
                {"model": "shop.category", "pk": 5, "fields": {"store": 3, "parent": None, "name": "Garden"}},
                {"model": "shop.store", "pk": 3, "fields": {"name": "Fixture Shop", "slug": "fixture"}},
            ]
        )
    )
    call_command("loaddata", str(fixture), verbosity=0)
    hits = search("products", "garden sprinkler", mode="keyword")
    assert [hit.id for hit in hits] == ["7"]
    assert hits[0].object.category.name == "Garden"
