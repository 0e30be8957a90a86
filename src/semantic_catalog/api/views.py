"""HTTP API under /api/semantic/: search, similar, recommend (public by default) and status (staff).

User mistakes become 4xx responses whose ``detail`` says what to fix; anything else is a bug (500).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from itertools import chain
from typing import Any

from django.db import transaction
from django.http import FileResponse, StreamingHttpResponse
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..collections import IndexNotReady, require_searchable
from ..conf import semantic_settings
from ..engine.errors import InvalidQuery, NotIndexedYet, UnknownIds
from ..engine.offline import BadFile, write_records
from ..exporting import export_records, parse_since
from ..importing import ImportRejected, import_vectors
from ..indexes import SemanticIndex
from ..registry import UnknownIndex, registry
from ..results import ResultsRejected, category_links, import_results, matches, substitutes
from ..search import ObjectNotFound, Result, recommend, search, similar
from ..status import index_status
from .serializers import ErrorSerializer, RecommendRequestSerializer, ResultsSerializer, hit_data

RESERVED_PARAMS = {"q", "mode", "limit", "format"}
ERROR_STATUS: list[tuple[type[Exception], int]] = [
    (UnknownIndex, status.HTTP_404_NOT_FOUND),
    (ObjectNotFound, status.HTTP_404_NOT_FOUND),
    (InvalidQuery, status.HTTP_400_BAD_REQUEST),
    (BadFile, status.HTTP_400_BAD_REQUEST),
    (UnknownIds, status.HTTP_400_BAD_REQUEST),
    (NotIndexedYet, status.HTTP_409_CONFLICT),
    (IndexNotReady, status.HTTP_503_SERVICE_UNAVAILABLE),
]
ERRORS = {code: ErrorSerializer for code in (400, 404, 409, 503)}


def _permissions(setting: str) -> list[Any]:
    return [import_string(path) for path in getattr(semantic_settings, setting)]


class SemanticAPIView(APIView):
    permission_setting = "SEARCH_PERMISSION_CLASSES"
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
    "<field>",
    OpenApiTypes.STR,
    description="Any declared filter field: `field=v` (repeat for any-of), `field__gte=`, `field__lte=`, "
    "`field__gt=`, `field__lt=`. An undeclared field is a 400 that lists the allowed ones.",
    required=False,
)
LIMIT_DOC = OpenApiParameter("limit", OpenApiTypes.INT, description="1..MAX_LIMIT (default DEFAULT_LIMIT)")


class SearchView(SemanticAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, required=True, description="search text"),
            OpenApiParameter("mode", OpenApiTypes.STR, enum=["semantic", "keyword", "hybrid"], default="hybrid"),
            LIMIT_DOC,
            FILTER_DOC,
        ],
        responses={200: ResultsSerializer, **ERRORS},
    )
    def get(self, request: Request, index: str) -> Response:
        semantic_index = registry.get(index)
        mode = request.query_params.get("mode", "hybrid")
        query = request.query_params.get("q", "")
        limit = request.query_params.get("limit")
        results = search(semantic_index, query, mode, filter_params(request), limit, objects=False)
        return self.results(semantic_index, results, mode=mode, query=query)


class SimilarView(SemanticAPIView):
    @extend_schema(parameters=[LIMIT_DOC, FILTER_DOC], responses={200: ResultsSerializer, **ERRORS})
    def get(self, request: Request, index: str, pk: str) -> Response:
        semantic_index = registry.get(index)
        results = similar(semantic_index, pk, filter_params(request), request.query_params.get("limit"), objects=False)
        return self.results(semantic_index, results, of=pk)


LEVEL_DOC = OpenApiParameter("level", OpenApiTypes.INT, enum=[3, 4], default=4, description="category level")


class SubstitutionsView(SemanticAPIView):
    """Products that can stand in for this one (latest analysis run), at category level 3 or 4."""

    @extend_schema(parameters=[LEVEL_DOC, LIMIT_DOC], responses={200: ResultsSerializer, **ERRORS})
    def get(self, request: Request, index: str, pk: str) -> Response:
        semantic_index = registry.get(index)
        level = request.query_params.get("level", "4")
        found = substitutes(semantic_index, pk, level, request.query_params.get("limit"))
        return self.results(semantic_index, found, of=pk, level=int(level))


class MatchesView(SemanticAPIView):
    """The very same item in other stores (latest analysis run)."""

    @extend_schema(responses={200: ResultsSerializer, **ERRORS})
    def get(self, request: Request, index: str, pk: str) -> Response:
        semantic_index = registry.get(index)
        return self.results(semantic_index, matches(semantic_index, pk), of=pk)


class CategoryLinksView(SemanticAPIView):
    """Categories of other stores linked to this one (latest analysis run), best first."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request: Request, index: str, category: str) -> Response:
        semantic_index = registry.get(index)
        links = category_links(semantic_index, category)
        return Response({"index": semantic_index.name, "category": category, "count": len(links), "links": links})


class RecommendView(SemanticAPIView):
    @extend_schema(request=RecommendRequestSerializer, responses={200: ResultsSerializer, **ERRORS})
    def post(self, request: Request, index: str) -> Response:
        semantic_index = registry.get(index)
        body = RecommendRequestSerializer(data=request.data)
        if not body.is_valid():
            problems = "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in body.errors.items())
            raise InvalidQuery(f"Invalid request body: {problems}")
        data = body.validated_data
        results = recommend(
            semantic_index, data["positive"], data["negative"], data["filters"], data.get("limit"), objects=False
        )
        return self.results(semantic_index, results)


class ExportView(SemanticAPIView):
    """Stream the index's rows for the offline machine (JSONL streams row by row; Parquet is spooled)."""

    permission_setting = "EXPORT_PERMISSION_CLASSES"

    @extend_schema(
        parameters=[
            # not "format": DRF reserves that query parameter for choosing a renderer
            OpenApiParameter("file_format", OpenApiTypes.STR, enum=["jsonl", "parquet"], default="jsonl"),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="rows changed after (needs updated_field)"),
        ],
        responses={200: OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request: Request, index: str) -> Any:
        semantic_index = registry.get(index)
        fmt = request.query_params.get("file_format", "jsonl")
        if fmt not in ("jsonl", "parquet"):
            raise InvalidQuery(f"file_format must be jsonl or parquet, got {fmt!r}.")
        limit = request.query_params.get("limit")
        try:
            limit_value = int(limit) if limit else None
        except ValueError:
            raise InvalidQuery(f"limit must be a whole number, got {limit!r}.") from None
        records = export_records(semantic_index, parse_since(request.query_params.get("since")), limit_value)
        filename = f"{semantic_index.name}.{fmt}"
        if fmt == "jsonl":
            first = next(records, None)  # surface request errors as 4xx before streaming starts
            rows = chain([first] if first is not None else [], records)
            lines = (json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
            response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        else:
            spool = tempfile.NamedTemporaryFile(suffix=".parquet")  # noqa: SIM115 - FileResponse closes it
            write_records(spool.name, records)
            response = FileResponse(open(spool.name, "rb"), content_type="application/vnd.apache.parquet")  # noqa: SIM115
            spool.close()
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ImportView(SemanticAPIView):
    """Upload a Parquet vector file (the raw request body); ``dry_run=1`` reports without changing anything."""

    read_only = False
    permission_setting = "IMPORT_PERMISSION_CLASSES"

    @extend_schema(
        parameters=[
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, default=False),
            OpenApiParameter("skip_invalid", OpenApiTypes.BOOL, default=False),
        ],
        request={"application/vnd.apache.parquet": OpenApiTypes.BINARY},
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request: Request, index: str) -> Response:
        semantic_index = registry.get(index)
        params = request.query_params
        flags = {key: params.get(key, "0").lower() in ("1", "true", "yes") for key in ("dry_run", "skip_invalid")}
        with tempfile.NamedTemporaryFile(suffix=".parquet") as upload:
            upload.write(request.body)
            upload.flush()
            try:
                report = import_vectors(semantic_index, upload.name, flags["dry_run"], flags["skip_invalid"])
            except ImportRejected as exc:
                return Response({"detail": str(exc), "report": exc.report.as_dict()}, status=400)
        return Response(report.as_dict())


class AnalysisImportView(SemanticAPIView):
    """Upload one result file of `semantic-catalog analyze` (the JSON body); it replaces the previous run
    of its kind for its index. ``dry_run=1`` validates and reports without changing anything."""

    read_only = False
    permission_setting = "IMPORT_PERMISSION_CLASSES"

    @extend_schema(
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, default=False)],
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        try:
            payload = json.loads(request.body)
        except ValueError:
            raise InvalidQuery("The body must be a result file (JSON) of `semantic-catalog analyze`.") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("index"), str):
            raise InvalidQuery("The result file names no 'index'.")
        semantic_index = registry.get(payload["index"])
        dry_run = request.query_params.get("dry_run", "0").lower() in ("1", "true", "yes")
        model = require_searchable(semantic_index).encoder
        try:
            report = import_results(semantic_index, payload, "upload", model, dry_run)
        except ResultsRejected as exc:
            return Response({"detail": str(exc), "problems": exc.problems}, status=400)
        return Response(asdict(report))


class StatusView(SemanticAPIView):
    permission_setting = "STATUS_PERMISSION_CLASSES"

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response({"indexes": [index_status(index) for index in registry]})
