"""What every view under /api/semantic/ shares: permissions from settings, user errors as 4xx
responses whose ``detail`` says what to fix (anything else is a bug: 500), and the result shape.
Feature wings (``crossstore``) build their views on it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from semantic_catalog.collections import IndexNotReady
from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.errors import BadFile, InvalidQuery, NotIndexedYet, UnknownIds
from semantic_catalog.indexes import SemanticIndex
from semantic_catalog.registry import UnknownIndex
from semantic_catalog.rest.schema import SemanticSchema
from semantic_catalog.rest.serializers import ErrorSerializer, hit_data
from semantic_catalog.rest.uploads import UploadTooLarge
from semantic_catalog.search.service import ObjectNotFound, Result

RESERVED_PARAMS = {"q", "mode", "limit", "format"}
ERROR_STATUS: list[tuple[type[Exception], int]] = [
    (UnknownIndex, status.HTTP_404_NOT_FOUND),
    (ObjectNotFound, status.HTTP_404_NOT_FOUND),
    (InvalidQuery, status.HTTP_400_BAD_REQUEST),
    (BadFile, status.HTTP_400_BAD_REQUEST),
    (UnknownIds, status.HTTP_400_BAD_REQUEST),
    (NotIndexedYet, status.HTTP_409_CONFLICT),
    (IndexNotReady, status.HTTP_503_SERVICE_UNAVAILABLE),
    (UploadTooLarge, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE),
]
ERRORS = {code: ErrorSerializer for code in (400, 404, 409, 503)}


def _permissions(setting: str) -> list[Any]:
    return [import_string(path) for path in getattr(semantic_settings, setting)]


class SemanticAPIView(APIView):
    permission_setting = "SEARCH_PERMISSION_CLASSES"
    schema = SemanticSchema()  # the OpenAPI schema with the bounds and index names in force
    # Reads opt out of ATOMIC_REQUESTS: a transaction per search would serialise concurrent
    # searches on SQLite (BEGIN IMMEDIATE) and buys nothing for a read.
    read_only = True

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        view = super().as_view(**initkwargs)
        return transaction.non_atomic_requests(view) if cls.read_only else view

    def get_permissions(self) -> list[Any]:
        return [cls() for cls in _permissions(self.permission_setting)]

    def handle_exception(self, exc: Exception) -> Response:
        for error, code in ERROR_STATUS:
            if isinstance(exc, error):
                return Response({"detail": str(exc)}, status=code)
        return super().handle_exception(exc)

    def results(self, index: SemanticIndex, results: list[Result], **extra: Any) -> Response:
        return Response(
            {"index": index.name, **extra, "count": len(results), "results": [hit_data(r) for r in results]}
        )


def filter_params(request: Request) -> list[tuple[str, Any]]:
    """Every query parameter that is not reserved is a filter; repeated ones mean 'any of'."""
    return [
        (key, values if len(values) > 1 else values[0])
        for key, values in request.query_params.lists()
        if key not in RESERVED_PARAMS
    ]


FILTER_DOC = OpenApiParameter(
    "filters",
    {"type": "object", "additionalProperties": {"type": "string"}},
    style="form",
    explode=True,
    description="Any declared filter field as its own query parameter (there is no `filters` parameter): "
    "`field=v` (repeat for any-of), `field__gte=`, `field__lte=`, `field__gt=`, `field__lt=`. An undeclared "
    "field is a 400 that lists the allowed ones.",
    required=False,
)
LIMIT_DOC = OpenApiParameter("limit", OpenApiTypes.INT, description="results: 1 to MAX_LIMIT (default DEFAULT_LIMIT)")


def flag(request: Request, name: str) -> bool:
    """A yes/no query parameter: 1, true or yes (any case) mean yes; absent means no."""
    return request.query_params.get(name, "0").lower() in ("1", "true", "yes")


def error_lines(errors: Any, where: str = "") -> list[str]:
    """A serializer's errors as "field: message" lines; a list item's errors name its position
    ("positive[3]: This field may not be blank.")."""
    if isinstance(errors, dict):
        return [
            line
            for key, value in errors.items()
            for line in error_lines(value, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))
        ]
    if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        return [f"{where}: {' '.join(errors)}"]
    if isinstance(errors, list):
        return [line for error in errors for line in error_lines(error, where)]
    return [f"{where}: {errors}"]
