"""HTTP API under /api/semantic/: search, similar, recommend (public by default), export and import
(staff), status (staff). Cross-store endpoints live in ``semantic_catalog.crossstore.views``."""

from __future__ import annotations

import json
import tempfile
from itertools import chain
from pathlib import Path
from typing import Any

from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from semantic_catalog.engine.errors import BadFile, InvalidQuery
from semantic_catalog.engine.offline.records import write_records
from semantic_catalog.offline.export import export_records, parse_since
from semantic_catalog.offline.vectors import ImportRejected, import_vectors
from semantic_catalog.registry import registry
from semantic_catalog.rest.serializers import (
    ErrorSerializer,
    RecommendRequestSerializer,
    ResultsSerializer,
    SearchResultsSerializer,
    UploadFormSerializer,
)
from semantic_catalog.rest.uploads import StreamedUploads, save_upload
from semantic_catalog.rest.views import (
    ERRORS,
    FILTER_DOC,
    LIMIT_DOC,
    SemanticAPIView,
    error_lines,
    filter_params,
    flag,
)
from semantic_catalog.search.service import recommend, search, similar
from semantic_catalog.status import index_status

SEARCH_PARAMS = {"offset", "sort", "facets"}  # besides q, mode and limit: no filter fields in search
UPLOAD_NAME = "upload.parquet"  # what an uploaded vector file is called on disk, and in messages
MAX_EXPORT_LIMIT = 2**63 - 1  # the largest LIMIT SQL takes


class SearchView(SemanticAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, required=True, description="search text"),
            OpenApiParameter("mode", OpenApiTypes.STR, enum=["semantic", "keyword", "hybrid"], default="hybrid"),
            LIMIT_DOC,
            OpenApiParameter(
                "offset",
                OpenApiTypes.INT,
                default=0,
                description="results to skip: 0 or more, with offset + limit at most MAX_RESULT_WINDOW (default 1000)",
            ),
            OpenApiParameter(
                "sort",
                OpenApiTypes.STR,
                default="relevance",
                description="`relevance`, or a numeric filter field (`price`: low to high, `-price`: high to low); "
                "re-orders the relevance window (the best MAX_RESULT_WINDOW hits), never the whole table",
            ),
            OpenApiParameter(
                "facets",
                OpenApiTypes.STR,
                description="filter fields to count over the relevance window, comma-separated or repeated "
                "(`store,category`); a numeric field takes band edges after colons (`price:25:50:100` counts "
                "below 25, 25 to 50, 50 to 100 and 100 or more)",
            ),
            FILTER_DOC,
        ],
        responses={200: SearchResultsSerializer, **ERRORS},
    )
    def get(self, request: Request, index: str) -> Response:
        semantic_index = registry.get(index)
        params = request.query_params
        mode = params.get("mode", "hybrid")
        query = params.get("q", "")
        filters = [(key, value) for key, value in filter_params(request) if key not in SEARCH_PARAMS]
        results = search(
            semantic_index,
            query,
            mode,
            filters,
            params.get("limit"),
            objects=False,
            offset=params.get("offset"),
            sort=params.get("sort") or "relevance",
            facets=params.getlist("facets"),
        )
        response = self.results(
            semantic_index, results, mode=mode, query=query, offset=results.offset, has_next=results.has_next
        )
        response.data["facets"] = results.facets
        return response


class SimilarView(SemanticAPIView):
    @extend_schema(parameters=[LIMIT_DOC, FILTER_DOC], responses={200: ResultsSerializer, **ERRORS})
    def get(self, request: Request, index: str, pk: str) -> Response:
        semantic_index = registry.get(index)
        results = similar(semantic_index, pk, filter_params(request), request.query_params.get("limit"), objects=False)
        return self.results(semantic_index, results, of=pk)


class RecommendView(SemanticAPIView):
    @extend_schema(request=RecommendRequestSerializer, responses={200: ResultsSerializer, **ERRORS})
    def post(self, request: Request, index: str) -> Response:
        semantic_index = registry.get(index)
        body = RecommendRequestSerializer(data=request.data)
        if not body.is_valid():
            raise InvalidQuery(f"Invalid request body: {'; '.join(error_lines(body.errors))}")
        data = body.validated_data
        results = recommend(
            semantic_index, data["positive"], data["negative"], data["filters"], data.get("limit"), objects=False
        )
        return self.results(semantic_index, results)


class ExportView(SemanticAPIView):
    """Stream the index's rows for the offline machine (JSONL streams row by row; Parquet is spooled)."""

    permission_setting = "EXPORT_PERMISSION_CLASSES"

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        """The file's media type comes from ``file_format``, not the Accept header: a client that
        accepts only application/x-ndjson or Parquet gets the file, and errors as JSON (never a 406)."""
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            # not "format": DRF reserves that query parameter for choosing a renderer
            OpenApiParameter("file_format", OpenApiTypes.STR, enum=["jsonl", "parquet"], default="jsonl"),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_EXPORT_LIMIT},
                description="at most this many rows (default: all)",
            ),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="rows changed after (needs updated_field)"),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, description="JSONL, one row a line"),
            (200, "application/vnd.apache.parquet"): OpenApiResponse(OpenApiTypes.BINARY, description="Parquet"),
            **{(code, "application/json"): ErrorSerializer for code in ERRORS},
        },
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
        if limit_value is not None and limit_value > MAX_EXPORT_LIMIT:  # SQL cannot take a larger LIMIT
            raise InvalidQuery(f"'limit' must be at most {MAX_EXPORT_LIMIT}, got {limit_value}.")
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


class ImportView(StreamedUploads, SemanticAPIView):
    """Upload a Parquet vector file (the raw body, or the form field ``file``), streamed to disk;
    ``dry_run=1`` reports without changing anything."""

    read_only = False
    permission_setting = "IMPORT_PERMISSION_CLASSES"

    @extend_schema(
        parameters=[
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, default=False),
            OpenApiParameter("skip_invalid", OpenApiTypes.BOOL, default=False),
        ],
        request={"application/vnd.apache.parquet": OpenApiTypes.BINARY, "multipart/form-data": UploadFormSerializer},
        responses={200: OpenApiTypes.OBJECT, **ERRORS, 413: ErrorSerializer},
    )
    def post(self, request: Request, index: str) -> Response:
        semantic_index = registry.get(index)
        # Saved under a name of ours in a folder of its own, so messages about the file can speak of
        # "the upload" and never show the server's temporary path.
        with tempfile.TemporaryDirectory(prefix="semantic-import-") as folder:
            upload = save_upload(
                request,
                Path(folder) / UPLOAD_NAME,
                "The upload is empty: send a vector file of `semantic-catalog embed` (Parquet) as the body.",
            )
            try:
                report = import_vectors(semantic_index, upload, flag(request, "dry_run"), flag(request, "skip_invalid"))
            except BadFile as exc:
                raise BadFile(about_the_upload(str(exc), upload)) from None
            except ImportRejected as exc:
                rejected = exc.report.as_dict()
                rejected["errors"] = [about_the_upload(e, upload) for e in rejected["errors"]]
                return Response({"detail": about_the_upload(str(exc), upload), "report": rejected}, status=400)
        return Response(report.as_dict())


def about_the_upload(message: str, path: Path) -> str:
    """A message about the file an upload was saved to, rewritten about "the upload": no server path."""
    for shown in dict.fromkeys([str(path), str(path.resolve())]):
        message = message.replace(f"{shown}: not a ", "The upload is not a ").replace(f"{shown}: ", "The upload: ")
        message = message.replace(shown, "the upload")
    for folder in dict.fromkeys([str(path.parent), str(path.parent.resolve())]):
        message = message.replace(folder, "")
    return message


class StatusView(SemanticAPIView):
    permission_setting = "STATUS_PERMISSION_CLASSES"

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response({"indexes": [index_status(index) for index in registry]})
