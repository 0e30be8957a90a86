"""HTTP endpoints of Temporal indexing runs (staff only by default: TEMPORAL PERMISSION_CLASSES):
start one (whole index or ids), list recent ones, a run's status (processed / total / failed,
percent, ETA) and cancel. The Temporal server being down is a 503 that says how to start one."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from semantic_catalog.engine.errors import InvalidQuery
from semantic_catalog.rest.serializers import ErrorSerializer
from semantic_catalog.rest.views import SemanticAPIView, error_lines
from semantic_catalog.workflows import service
from semantic_catalog.workflows.conf import temporal_settings

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 503)}
MAX_LIST = 100


class TemporalStartSerializer(serializers.Serializer):
    index = serializers.CharField(max_length=100)
    ids = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, min_length=1, max_length=service.MAX_IDS,
        help_text="ids of the index's rows; absent: the whole index",
    )
    batch_size = serializers.IntegerField(min_value=1, max_value=10_000, required=False)
    force = serializers.BooleanField(default=False, help_text="re-encode rows whose content is already indexed")


class TemporalView(SemanticAPIView):
    def get_permissions(self) -> list[Any]:
        return [import_string(path)() for path in temporal_settings()["PERMISSION_CLASSES"]]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, service.RunNotFound):
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        if isinstance(exc, service.TemporalUnavailable):
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return super().handle_exception(exc)


class RunsView(TemporalView):
    """GET: the latest indexing runs (newest first); POST: start one (202 with its id)."""

    read_only = False

    @extend_schema(
        parameters=[
            OpenApiParameter("index", OpenApiTypes.STR, description="only runs of this index"),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"1 to {MAX_LIST} (default 20)"),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
        operation_id="temporal_runs_list",
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST:
            raise InvalidQuery(f"limit must be a whole number from 1 to {MAX_LIST}, not {raw!r}.")
        index = request.query_params.get("index") or None
        return Response({"runs": service.recent_runs(int(raw), index)})

    @extend_schema(request=TemporalStartSerializer, responses={202: OpenApiTypes.OBJECT, **ERRORS})
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise InvalidQuery("The body must be a JSON object: {index, ids?, batch_size?, force?}.")
        serializer = TemporalStartSerializer(data=request.data)
        if not serializer.is_valid():
            return Response({"detail": "; ".join(error_lines(serializer.errors))}, status=400)
        data = serializer.validated_data
        run_id = service.start(data["index"], data.get("ids"), batch_size=data.get("batch_size"), force=data["force"])
        return Response(
            {"id": run_id, "status_url": reverse("semantic_catalog:temporal-run", args=[run_id])},
            status=status.HTTP_202_ACCEPTED,
        )


class RunView(TemporalView):
    """A run's status: RUNNING, COMPLETED, CANCELED, FAILED, ...; processed / total / failed, percent,
    rows per second and ETA while it runs; the result once completed."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS}, operation_id="temporal_run_status")
    def get(self, request: Request, run_id: str) -> Response:
        return Response(service.status(run_id))


class CancelView(TemporalView):
    """Ask a running run to stop (the batch being written finishes whole)."""

    read_only = False

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def post(self, request: Request, run_id: str) -> Response:
        return Response(service.cancel(run_id))
