"""Declaring an index: how rows of one Django model become engine Documents.

```python
class ProductIndex(SemanticIndex):
    model = Product
    name = "products"
    text_fields = ["name", "brand", "description"]          # or text_template / get_text()
    filter_fields = ["store", "price", FilterField("category", getter=..., type="int", many=True)]
    display_fields = ["name", "price"]

    def get_queryset(self):
        return Product.objects.filter(active=True)
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import connections, models
from django.template import Context, Engine, TemplateSyntaxError

from semantic_catalog.engine.documents import Document
from semantic_catalog.engine.filters import FieldSpec, FieldType
from semantic_catalog.engine.stores.analyzer import TextAnalyzer

_TEMPLATE_ENGINE = Engine(autoescape=False)

_MODEL_FIELD_TYPES: list[tuple[type[models.Field], FieldType]] = [
    (models.BooleanField, "bool"),
    (models.IntegerField, "int"),
    (models.AutoField, "int"),
    (models.BigAutoField, "int"),
    (models.FloatField, "float"),
    (models.DecimalField, "float"),
]


@dataclass(frozen=True)
class FilterField:
    """A filter field: a model field by name, or any value computed by ``getter(obj)``.

    With ``many=True`` the getter returns a list and a filter matches when any element matches
    (for example every ancestor id of a category, so filtering on a parent finds its subtree).
    """

    name: str
    getter: Callable[[Any], Any] | None = None
    type: FieldType | None = None
    many: bool = False


def jsonable(value: Any) -> Any:
    """A field value as JSON takes it (decimals as floats)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class SemanticIndex:
    """Base class of an index declaration. Subclass it in an app's ``semantic_indexes.py``.

    Attributes: ``model`` (required); ``name`` (URL-safe, defaults to the model name);
    ``text_fields`` / ``text_template`` (Django template syntax, the row as context, ``object`` too) or
    override ``get_text``; ``filter_fields``; ``display_fields`` (returned with each hit);
    ``text_version`` (bump when you change how text is built: a rebuild then makes a new collection);
    ``updated_field`` (a DateTimeField with auto_now, for exports of rows changed since a time);
    ``language`` (how keyword search reads the text: "english" by default, "czech", "cs", ...) or
    ``keyword_options`` (the analyser's options directly: ``language``, ``stem``, ``remove_stop_words``,
    ``stop_words``, ``ascii_folding``, ``lower_case``, ``ngram``); changing either rebuilds the keyword
    index only.
    Cross-shop analysis adds its own attributes through ``semantic_catalog.crossstore.CrossShopIndexMixin``.
    """

    model: ClassVar[type[models.Model] | None] = None
    name: ClassVar[str] = ""
    text_fields: ClassVar[Sequence[str]] = ()
    text_template: ClassVar[str] = ""
    text_separator: ClassVar[str] = ". "
    filter_fields: ClassVar[Sequence[str | FilterField]] = ()
    display_fields: ClassVar[Sequence[str]] = ()
    text_version: ClassVar[int] = 1
    updated_field: ClassVar[str] = ""
    language: ClassVar[str] = "english"
    keyword_options: ClassVar[dict[str, Any] | None] = None

    def __init__(self) -> None:
        if self.model is None:
            raise ImproperlyConfigured(f"{type(self).__name__} must set 'model'.")
        self.name = self.name or self.model._meta.model_name
        if not self.name.replace("_", "").replace("-", "").isalnum():
            raise ImproperlyConfigured(f"Index name {self.name!r} must use only letters, digits, '-' and '_'.")
        if not (self.text_fields or self.text_template or type(self).get_text is not SemanticIndex.get_text):
            raise ImproperlyConfigured(
                f"{type(self).__name__} must set text_fields or text_template, or override get_text()."
            )
        try:
            self._template = _TEMPLATE_ENGINE.from_string(self.text_template) if self.text_template else None
        except TemplateSyntaxError as exc:
            raise ImproperlyConfigured(f"{type(self).__name__}: text_template does not parse: {exc}") from None
        resolved = [self._resolve_filter(f) for f in self.filter_fields]
        self._filters = [(spec, getter) for spec, getter, _ in resolved]
        # Each filter field's column, or None for one computed by a getter (read from instances).
        self.filter_columns: dict[str, str | None] = {spec.name: column for spec, _, column in resolved}
        # (name, attribute) of each display field: its column, the id for a foreign key.
        self._display_columns: list[tuple[str, str]] = []
        for display in self.display_fields:
            field = self._model_field(display)
            if field.many_to_many or field.one_to_many or not field.concrete:
                raise ImproperlyConfigured(
                    f"{type(self).__name__}: display field {display!r} is not a column of "
                    f"{self.model.__name__}; display fields are the model's own fields or foreign keys "  # type: ignore[union-attr]
                    "(override display() to show more)."
                )
            self._display_columns.append((display, field.attname))

    @property
    def analyzer(self) -> TextAnalyzer:
        """The keyword analyser this index declares (``keyword_options`` over ``language``); raises
        ``ConfigurationError`` for an unknown language or options LanceDB cannot apply (check E007)."""
        if self.keyword_options is None:
            return TextAnalyzer.from_options(self.language)
        return TextAnalyzer.from_options({"language": self.language, **self.keyword_options})

    # -- declaration helpers -----------------------------------------------------------------

    def _model_field(self, name: str) -> models.Field:
        try:
            return self.model._meta.get_field(name)  # type: ignore[union-attr]
        except FieldDoesNotExist:
            raise ImproperlyConfigured(
                f"{type(self).__name__}: {self.model.__name__} has no field {name!r}."  # type: ignore[union-attr]
            ) from None

    def _resolve_filter(self, declared: str | FilterField) -> tuple[FieldSpec, Callable[[Any], Any], str | None]:
        """The field as the engine sees it, how to read it from a row, and its column (None: a getter)."""
        field = declared if isinstance(declared, FilterField) else FilterField(declared)
        if field.getter is not None:
            return FieldSpec(field.name, field.type or "str", field.many), field.getter, None
        model_field = self._model_field(field.name)
        kind = field.type or self._field_type(model_field.target_field if model_field.is_relation else model_field)  # type: ignore[attr-defined]
        attname = model_field.attname  # the column: a foreign key's id
        return FieldSpec(field.name, kind), lambda obj: getattr(obj, attname), attname

    @staticmethod
    def _field_type(model_field: models.Field) -> FieldType:
        for cls, kind in _MODEL_FIELD_TYPES:
            if isinstance(model_field, cls):
                return kind
        return "str"

    @property
    def field_specs(self) -> list[FieldSpec]:
        """Filterable fields as the engine sees them."""
        return [spec for spec, _ in self._filters]

    # -- what users override -------------------------------------------------------------------

    def get_queryset(self) -> models.QuerySet:
        """Rows that belong in the index; rows outside it are removed and never returned."""
        return self.model._default_manager.all()  # type: ignore[union-attr]

    def get_text(self, obj: models.Model) -> str:
        """The text that is embedded and keyword-indexed for one row."""
        if self._template is not None:
            # Context() escapes HTML unless told otherwise, whatever the Engine says: the text is
            # embedded and keyword-indexed, not shown in a page, so it must be the row's text verbatim.
            context = Context({"object": obj, **_attrs(obj)}, autoescape=False)
            return " ".join(self._template.render(context).split())
        parts = [str(getattr(obj, name) or "").strip() for name in self.text_fields]
        return self.text_separator.join(p for p in parts if p)

    # -- used by the library ---------------------------------------------------------------------

    def get_fields(self, obj: models.Model) -> dict[str, Any]:
        return {spec.name: jsonable(getter(obj)) for spec, getter in self._filters}

    def to_document(self, obj: models.Model) -> Document:
        return Document(id=str(obj.pk), text=self.get_text(obj), fields=self.get_fields(obj))

    def display(self, obj: models.Model) -> dict[str, Any]:
        """The declared display fields of one row, JSON-ready."""
        return {name: jsonable(getattr(obj, attname)) for name, attname in self._display_columns}

    def display_by_id(self, ids: Iterable[str]) -> dict[str, dict[str, Any]] | None:
        """``display()`` of the queryset's rows among ``ids``, keyed by id string, read as plain values:
        no model instances and no joins, several times cheaper than ``rows_by_id`` for a page of hits.
        ``None`` when a subclass overrides ``display()`` (which needs the instances)."""
        if type(self).display is not SemanticIndex.display:
            return None
        queryset = self.get_queryset()
        pks, _ = self.parse_ids(ids, queryset)
        names = [name for name, _ in self._display_columns]
        columns = [attname for _, attname in self._display_columns]
        rows = queryset.filter(pk__in=list(pks.values())).values_list("pk", *columns)
        return {str(pk): {name: jsonable(v) for name, v in zip(names, values)} for pk, *values in rows}

    def pk_from_string(self, value: str) -> Any:
        """Convert an id from the store or a URL back to the model's primary key type; an integer the
        database cannot hold (beyond 64 bits, say) is a ValueError, not a query that fails."""
        return self._pk_parser()(value)

    def _pk_parser(self, queryset: models.QuerySet | None = None) -> Callable[[str], Any]:
        """``pk_from_string`` with the key's field and the database's integer range looked up once (a page
        of hits parses many ids; building the queryset for each cost more than the SQL that follows). The
        range is that of ``queryset``'s database (default: the index's queryset's, built when needed)."""
        field = self.model._meta.pk  # type: ignore[union-attr]
        bounds: list[tuple[int | None, int | None]] = []  # the integer range, looked up at the first integer

        def parse(value: str) -> Any:
            pk = field.to_python(value)
            if isinstance(pk, int) and not isinstance(pk, bool):
                if not bounds:
                    ops = connections[(self.get_queryset() if queryset is None else queryset).db].ops
                    bounds.append(ops.integer_field_range(field.get_internal_type()))
                low, high = bounds[0]
                if (low is not None and pk < low) or (high is not None and pk > high):
                    raise ValueError(f"it is beyond the range of the primary key ({low} to {high})")
            return pk

        return parse

    def parse_ids(
        self, ids: Iterable[str], queryset: models.QuerySet | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Primary keys of string ids (from the store, a URL, an outbox row or a file), and, for the
        ids that are no valid primary key, why not (``queryset``: the one the keys are for, when the
        caller has it; see ``_pk_parser``)."""
        pks: dict[str, Any] = {}
        invalid: dict[str, str] = {}
        parse = self._pk_parser(queryset)
        for key in ids:
            try:
                pks[key] = parse(key)
            except Exception as exc:
                invalid[key] = f"invalid primary key {key!r}: {exc}"
        return pks, invalid

    def rows_by_id(self, ids: Iterable[str]) -> tuple[dict[str, models.Model], dict[str, str]]:
        """The rows of the queryset among ``ids``, keyed by id string (ids outside it are absent),
        and the ids that are no valid primary key, with the reason."""
        queryset = self.get_queryset()
        pks, invalid = self.parse_ids(ids, queryset)
        rows = {str(obj.pk): obj for obj in queryset.filter(pk__in=list(pks.values()))}
        return rows, invalid

    def documents(self, objects: Iterable[models.Model]) -> list[Document]:
        return [self.to_document(obj) for obj in objects]

    def analysis_data(self, obj: models.Model) -> dict[str, Any] | None:
        """What the offline ``semantic-catalog analyze`` needs of a row (exported with it); None here.
        ``semantic_catalog.crossstore.CrossShopIndexMixin`` fills it in."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {self.model._meta.label}>"  # type: ignore[union-attr]


def _attrs(obj: models.Model) -> dict[str, Any]:
    """Concrete field values by name, so templates can say ``{{ name }}`` as well as ``{{ object.name }}``."""
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        values[field.name] = getattr(obj, field.name) if not field.is_relation else _Lazy(obj, field.name)
    return values


class _Lazy:
    """Defers a related-object lookup until a template actually uses it."""

    def __init__(self, obj: models.Model, name: str) -> None:
        self._obj, self._name = obj, name

    def __getattr__(self, attr: str) -> Any:
        return getattr(getattr(self._obj, self._name), attr)

    def __str__(self) -> str:
        return str(getattr(self._obj, self._name) or "")
