"""HTTP endpoints of cross-store analysis: substitutes, matches, category links, result uploads, and the
labelled pairs (match / non-match) that staff store for an index."""

from __future__ import annotations

import json
from dataclasses import asdict

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from semantic_catalog.collections import require_searchable
from semantic_catalog.crossstore.labels import LabelsRejected, label_rows, save_labels
from semantic_catalog.crossstore.results import ResultsRejected, category_links, import_results, matches, substitutes
from semantic_catalog.engine.crossstore.labels import FALSE, MAX_ID, TRUE, check_label_rows
from semantic_catalog.engine.errors import InvalidQuery
from semantic_catalog.registry import registry
from semantic_catalog.rest.serializers import ErrorSerializer, ResultsSerializer, UploadFormSerializer
from semantic_catalog.rest.uploads import StreamedUploads, received
from semantic_catalog.rest.views import ERRORS, LIMIT_DOC, SemanticAPIView, flag


class AnalysisFileSerializer(serializers.Serializer):
    """A result file of `semantic-catalog analyze` (for the schema; the view checks every row)."""

    kind = serializers.ChoiceField(choices=["links", "substitutions", "matches"])
    index = serializers.CharField(help_text="a registered index with CrossStoreMixin")
    model = serializers.CharField(help_text="the model of the index's active collection")
    computed_at = serializers.DateTimeField()
    rows = serializers.ListField(
        child=serializers.DictField(),
        help_text="links: {source_store, source_category, target_store, target_category, score}; substitutions: "
        "{product, substitute, level, score, rank}; matches: {product, match, score}",
    )
    parameters = serializers.DictField(required=False)


class RunReportSerializer(serializers.Serializer):
    kind = serializers.CharField()
    rows = serializers.IntegerField()
    replaced = serializers.IntegerField(help_text="rows of the previous run of this kind that were replaced")
    dry_run = serializers.BooleanField()
    run_id = serializers.IntegerField(allow_null=True)


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
    """Categories of other stores linked to this one (latest analysis run), best first; 404 for an id
    that names no category (an existing category without links has an empty list)."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request: Request, index: str, category: str) -> Response:
        semantic_index = registry.get(index)
        links = category_links(semantic_index, category)
        return Response({"index": semantic_index.name, "category": category, "count": len(links), "links": links})


class AnalysisImportView(StreamedUploads, SemanticAPIView):
    """Upload one result file of `semantic-catalog analyze` (the JSON body); it replaces the previous run
    of its kind for its index. ``dry_run=1`` validates and reports without changing anything."""

    read_only = False
    permission_setting = "IMPORT_PERMISSION_CLASSES"

    @extend_schema(
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, default=False)],
        request={"application/json": AnalysisFileSerializer, "multipart/form-data": UploadFormSerializer},
        responses={200: RunReportSerializer, **ERRORS, 413: ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        upload = received(request, "The body must be a result file (JSON) of `semantic-catalog analyze`.")
        try:
            payload = json.load(upload)
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            raise InvalidQuery("The body must be a result file (JSON) of `semantic-catalog analyze`.") from None
        finally:
            upload.close()
        if not isinstance(payload, dict) or not isinstance(payload.get("index"), str):
            raise InvalidQuery("The result file names no 'index'.")
        semantic_index = registry.get(payload["index"])
        model = require_searchable(semantic_index).model
        try:
            report = import_results(semantic_index, payload, "upload", model, flag(request, "dry_run"))
        except ResultsRejected as exc:
            return Response({"detail": str(exc), "problems": exc.problems}, status=400)
        return Response(asdict(report))


class LabelReportSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="pairs that had no label")
    updated = serializers.IntegerField(help_text="pairs that were labelled the other way before")
    unchanged = serializers.IntegerField(help_text="pairs that had this label already")
    dry_run = serializers.BooleanField()


class StoredLabelSerializer(serializers.Serializer):
    left = serializers.CharField(help_text="product id (the smaller of the two ids)")
    right = serializers.CharField(help_text="product id")
    label = serializers.BooleanField(help_text="true: the very same item")
    source = serializers.ChoiceField(choices=["admin", "api", "import"])
    labelled_by = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField()


class LabelListSerializer(serializers.Serializer):
    index = serializers.CharField()
    count = serializers.IntegerField()
    labels = StoredLabelSerializer(many=True)


class LabelProblemsSerializer(serializers.Serializer):
    detail = serializers.CharField()
    problems = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="every invalid pair and why (nothing was stored)"
    )


PRODUCT_ID = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID}, {"type": "integer"}]}
LABELLED_PAIR = {
    "type": "object",
    "properties": {
        "left": PRODUCT_ID,
        "right": PRODUCT_ID,
        "label": {
            "anyOf": [
                {"type": "boolean"},
                {"type": "integer", "enum": [0, 1]},
                {"type": "string", "enum": sorted(TRUE | FALSE)},
            ],
            "description": "the very same item: 1, true, match; not the same item: 0, false, non-match",
        },
    },
    "required": ["left", "right", "label"],
}
LABELS_BODY = {"oneOf": [LABELLED_PAIR, {"type": "array", "items": LABELLED_PAIR, "minItems": 1}]}
LABELS_EXPECTED = 'The body must be one labelled pair {"left", "right", "label"} (JSON) or a list of them.'


class MatchLabelsView(StreamedUploads, SemanticAPIView):
    """Labelled pairs of an index: listed (GET), or stored (POST: one pair or a list, all or nothing; a pair
    labelled the other way before is updated). ``dry_run=1`` validates and reports without storing."""

    read_only = False
    permission_setting = "LABEL_PERMISSION_CLASSES"

    @extend_schema(responses={200: LabelListSerializer, 404: ErrorSerializer})
    def get(self, request: Request, index: str) -> Response:
        semantic_index = registry.get(index)
        labels = [
            {
                "left": row.left,
                "right": row.right,
                "label": row.label,
                "source": row.source,
                "labelled_by": row.labelled_by,
                "updated_at": row.updated_at.isoformat(),
            }
            for row in label_rows(semantic_index)
        ]
        return Response({"index": semantic_index.name, "count": len(labels), "labels": labels})

    @extend_schema(
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, default=False)],
        request={"application/json": LABELS_BODY},
        responses={
            200: LabelReportSerializer,
            400: LabelProblemsSerializer,
            404: ErrorSerializer,
            413: ErrorSerializer,
        },
    )
    def post(self, request: Request, index: str) -> Response:
        semantic_index = registry.get(index)
        upload = received(request, LABELS_EXPECTED)
        try:
            payload = json.load(upload)
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            raise InvalidQuery(LABELS_EXPECTED) from None
        finally:
            upload.close()
        rows = [payload] if isinstance(payload, dict) else payload
        if not isinstance(rows, list) or not rows:
            raise InvalidQuery(LABELS_EXPECTED)
        pairs, problems = check_label_rows(rows, "body")
        try:
            if problems:
                raise LabelsRejected(problems)
            report = save_labels(
                semantic_index, pairs, "api", request.user.get_username(), dry_run=flag(request, "dry_run")
            )
        except LabelsRejected as exc:
            return Response({"detail": str(exc), "problems": exc.problems}, status=400)
        return Response(asdict(report))
