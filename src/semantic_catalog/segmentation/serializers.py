"""Request and response shapes of the segmentation endpoints (they also feed the OpenAPI schema, with
the real bounds: MAX_ITEMS ids, temperatures from 0 to 2)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from semantic_catalog.engine.segmentation.types import MODES, NAMINGS
from semantic_catalog.segmentation.conf import MAX_TEMPERATURE, RUN_OPTIONS
from semantic_catalog.segmentation.items import max_items

MAX_SEGMENTS = 1000


class SegmentationStartSerializer(serializers.Serializer):
    index = serializers.CharField(max_length=100, help_text="a registered index whose rows have text")
    category = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    model = serializers.CharField(max_length=200, required=False, help_text="default: SEGMENTATION MODEL")
    temperature = serializers.FloatField(
        required=False, min_value=0.0, max_value=MAX_TEMPERATURE, help_text="default: SEGMENTATION TEMPERATURE"
    )
    mode = serializers.ChoiceField(
        choices=MODES,
        default="full",
        help_text="full: the LLM reads every item twice (extract, refine); embedding_first: the items' vectors "
        "from the index are clustered, the LLM only names the clusters and arbitrates uncertain items",
    )
    segments = serializers.IntegerField(
        required=False,
        min_value=2,
        max_value=MAX_SEGMENTS,
        help_text="embedding_first: the number of segments (default: chosen by silhouette in the range)",
    )
    min_segments = serializers.IntegerField(
        required=False, min_value=2, max_value=MAX_SEGMENTS, help_text="embedding_first: the range's low end (2)"
    )
    max_segments = serializers.IntegerField(
        required=False, min_value=2, max_value=MAX_SEGMENTS, help_text="embedding_first: the range's high end (12)"
    )
    naming = serializers.ChoiceField(
        choices=NAMINGS,
        required=False,
        help_text="embedding_first: llm (default: the LLM names each cluster from a sample of its items) or "
        "keywords (its most distinctive words by class-based TF-IDF; the run makes no LLM call at all)",
    )
    filters = serializers.DictField(
        required=False,
        help_text="instead of ids: declared filter fields of the index, `field`, `field__in` (a list), "
        "`field__gte`, `__lte`, `__gt`, `__lt`; at most MAX_ITEMS rows may match",
    )

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["ids"] = serializers.ListField(
            child=serializers.CharField(max_length=64),
            required=False,
            min_length=1,
            max_length=max_items(),
            help_text="the rows to segment (ids of the index's queryset), each once",
        )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("ids" in attrs) == ("filters" in attrs):
            raise serializers.ValidationError("Give either ids or filters (one of them).")
        return attrs

    def run_options(self) -> dict[str, Any]:
        """The validated RUN_OPTIONS for ``start_run``."""
        data = self.validated_data
        return {key: data[key] for key in RUN_OPTIONS if key in data}


class SegmentationStartedSerializer(serializers.Serializer):
    run_id = serializers.CharField()
    status = serializers.CharField()
    total_items = serializers.IntegerField()
    status_url = serializers.CharField()
    results_url = serializers.CharField()


class SegmentationStatusSerializer(serializers.Serializer):
    run_id = serializers.CharField()
    index = serializers.CharField()
    status = serializers.ChoiceField(choices=["running", "completed", "failed", "cancelled"])
    stage = serializers.CharField(
        help_text="queued, then extract, consolidate, refine (mode full) or cluster, name, refine (embedding_first), "
        "then done"
    )
    processed = serializers.IntegerField(help_text="units of the current stage done (items, or taxonomies)")
    total = serializers.IntegerField(help_text="units of the current stage")
    percent = serializers.FloatField(help_text="of the current stage")
    rate = serializers.FloatField(allow_null=True, help_text="units per second observed in the current stage")
    eta_seconds = serializers.FloatField(allow_null=True, help_text="time left in the current stage at that rate")
    total_items = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(help_text="last progress written (a running run's heartbeat)")
    finished_at = serializers.DateTimeField(allow_null=True)


class SegmentationSegmentSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="S_<n>")
    name = serializers.CharField()
    definition = serializers.CharField()
    item_count = serializers.IntegerField()


class SegmentationItemSerializer(serializers.Serializer):
    id = serializers.CharField()
    segment = serializers.CharField(help_text="S_<n>")
    segment_name = serializers.CharField()
    confidence = serializers.FloatField()


class SegmentationResultsSerializer(serializers.Serializer):
    run_id = serializers.CharField()
    index = serializers.CharField()
    status = serializers.CharField()
    category = serializers.CharField()
    model = serializers.CharField()
    mode = serializers.CharField(help_text="full or embedding_first")
    naming = serializers.CharField(help_text="embedding_first: llm or keywords (segments named without an LLM)")
    segments = SegmentationSegmentSerializer(many=True)
    items = SegmentationItemSerializer(many=True)
    problems = serializers.ListField(
        child=serializers.CharField(), help_text="ids missing, duplicated or unknown in answers"
    )
    totals = serializers.DictField(
        help_text="per stage: calls, cached_calls, tokens_in, tokens_out, seconds (this run), "
        "llm_seconds (the LLM's time for the answers, as logged; cached answers count their first call)"
    )
    report_url = serializers.CharField(
        allow_null=True,
        help_text="the run's report page in the admin (charts, a map of the items, ?compare=<field> for a confusion "
        "table), a path on this site; null where the admin is not mounted",
    )
