"""HTTP endpoints of segmentation runs (staff only by default: SEGMENTATION PERMISSION_CLASSES).

Starting a run answers at once with its id, whatever the task backend; status tells the stage,
progress and an ETA; results the taxonomy and each item's segment; cancel asks the run to stop.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.module_loading import import_string
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from semantic_catalog.engine.errors import InvalidQuery
from semantic_catalog.registry import registry
from semantic_catalog.rest.serializers import ErrorSerializer
from semantic_catalog.rest.views import SemanticAPIView, error_lines
from semantic_catalog.segmentation.conf import segmentation_settings
from semantic_catalog.segmentation.items import items_by_filter, items_by_ids
from semantic_catalog.segmentation.runs import (
    RunConflict,
    RunNotFound,
    cancel_run,
    get_run,
    results_data,
    status_data,
)
from semantic_catalog.segmentation.serializers import (
    SegmentationResultsSerializer,
    SegmentationStartedSerializer,
    SegmentationStartSerializer,
    SegmentationStatusSerializer,
)
from semantic_catalog.segmentation.tasks import start_run

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409)}


class SegmentationView(SemanticAPIView):
    def get_permissions(self) -> list[Any]:
        return [import_string(path)() for path in segmentation_settings()["PERMISSION_CLASSES"]]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RunNotFound):
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        if isinstance(exc, RunConflict):
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return super().handle_exception(exc)


def _links(run_id: str) -> dict[str, str]:
    return {
        "status_url": reverse("semantic_catalog:segmentation-status", args=[run_id]),
        "results_url": reverse("semantic_catalog:segmentation-results", args=[run_id]),
    }


class StartView(SegmentationView):
    """Start a segmentation run of rows of an index (`ids`, or `filters` over its queryset); answers at
    once with the run id (202) while the run goes on as a task. Bad ids change nothing (400)."""

    read_only = False

    @extend_schema(request=SegmentationStartSerializer, responses={202: SegmentationStartedSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise InvalidQuery(
                "The body must be a JSON object: {index, ids | filters, category, model, temperature, mode, ...}."
            )
        serializer = SegmentationStartSerializer(data=request.data)
        if not serializer.is_valid():
            return Response({"detail": "; ".join(error_lines(serializer.errors))}, status=400)
        data = serializer.validated_data
        index = registry.get(data["index"])
        items = items_by_ids(index, data["ids"]) if "ids" in data else items_by_filter(index, data["filters"])
        run = start_run(
            index,
            items,
            category=data["category"],
            model=data.get("model"),
            temperature=data.get("temperature"),
            **serializer.run_options(),
        )
        body = {"run_id": run.run_id, "status": run.status, "total_items": run.total_items, **_links(run.run_id)}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class StatusView(SegmentationView):
    """A run's status: stage, processed of total, percent, rate and ETA of the current stage."""

    @extend_schema(responses={200: SegmentationStatusSerializer, **ERRORS})
    def get(self, request: Request, run_id: str) -> Response:
        return Response(status_data(get_run(run_id)))


class ResultsView(SegmentationView):
    """A completed run's segments (definitions, counts) and each item's refined segment and confidence;
    409 while the run has none (running, failed, cancelled)."""

    @extend_schema(responses={200: SegmentationResultsSerializer, **ERRORS})
    def get(self, request: Request, run_id: str) -> Response:
        run = get_run(run_id)
        if run.status != run.Status.COMPLETED:
            raise RunConflict(f"Run {run.run_id} is {run.status}: results come when it has completed.")
        return Response(results_data(run))


class CancelView(SegmentationView):
    """Ask a running run to stop at its next batch (what it asked so far stays cached: it can resume)."""

    read_only = False

    @extend_schema(request=None, responses={202: SegmentationStatusSerializer, **ERRORS})
    def post(self, request: Request, run_id: str) -> Response:
        return Response(status_data(cancel_run(run_id)), status=status.HTTP_202_ACCEPTED)
