"""Response and request shapes (they also feed the OpenAPI schema)."""

from __future__ import annotations

from rest_framework import serializers

from semantic_catalog.search.service import Result


class HitSerializer(serializers.Serializer):
    id = serializers.CharField()
    rank = serializers.IntegerField(
        min_value=1, help_text="1-based place in the whole ranking (offset + place on the page), without gaps"
    )
    score = serializers.FloatField()
    retrievers = serializers.DictField(
        child=serializers.IntegerField(min_value=1),
        help_text="1-based rank per retriever, counting only rows of the queryset",
    )
    fields = serializers.DictField(help_text="the index's display_fields")
    match = serializers.ChoiceField(
        choices=["strong", "weak"],
        allow_null=True,
        help_text="searches: 'strong' when the hit is close to the query (STRONG_MATCH_SIMILARITY) or contains "
        "every query word, else 'weak'; null where it does not apply (similar, recommend)",
    )
    reasons = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        help_text="matches only: the points each signal of the match score added or took away",
    )


class ResultsSerializer(serializers.Serializer):
    index = serializers.CharField()
    count = serializers.IntegerField()
    results = HitSerializer(many=True)


class SearchResultsSerializer(ResultsSerializer):
    mode = serializers.CharField()
    query = serializers.CharField()
    offset = serializers.IntegerField(help_text="results skipped before this page")
    has_next = serializers.BooleanField(help_text="the relevance window holds results after this page")
    facets = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()),
        help_text="counts over the relevance window per field asked for in `facets`: `[{value, count}]` most "
        "frequent first, or for band edges `[{from, to, count}]` in order (`from` included, `to` excluded, "
        "null: open); empty when none were asked for",
    )


class RecommendRequestSerializer(serializers.Serializer):
    positive = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    negative = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    limit = serializers.IntegerField(required=False)
    filters = serializers.DictField(required=False, default=dict)


class UploadFormSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="the file to import (a form may also carry it as its only file)")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


def hit_data(result: Result) -> dict:
    data = {
        "id": result.id,
        "rank": result.rank,
        "score": result.score,
        "retrievers": result.retrievers,
        "fields": result.fields,
        "match": result.match,
    }
    if result.reasons is not None:
        data["reasons"] = result.reasons
    return data
