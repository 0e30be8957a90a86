"""Admin of segmentation runs, their segments and their LLM calls: read-only (the pipeline writes
them), with each call's log file shown through fsspec (a local folder or s3://...), a cancel action and
a report page per run (charts drawn by the vendored Chart.js, no CDN)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from semantic_catalog.models import LLMInteraction, RefinedItemSegment, Segment, SegmentationRun
from semantic_catalog.segmentation.conf import storage_options
from semantic_catalog.segmentation.report import report_context

MAX_SHOWN_BYTES = 5 * 1024 * 1024


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SegmentInline(admin.TabularInline):
    model = Segment
    fields = ["key", "name", "definition", "item_count"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SegmentationRun)
class SegmentationRunAdmin(_ReadOnly):
    list_display = ["run_id", "index", "status", "stage", "progress", "total_items", "model", "created_at", "report"]
    list_filter = ["status", "index"]
    search_fields = ["run_id", "category"]
    inlines = [SegmentInline]
    actions = ["cancel"]

    @admin.display(description="report")
    def report(self, obj: SegmentationRun) -> str:
        return format_html('<a href="{}">Report</a>', self.report_url(obj.pk))

    def report_url(self, pk: int) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_report", args=[pk])

    def get_urls(self) -> list[Any]:
        report = self.admin_site.admin_view(self.report_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_report"
        return [path("<int:pk>/report/", report, name=name), *super().get_urls()]

    def report_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The run's report: segment sizes, a map of its items, confidence, stages, and ``?compare=<field>``
        for a confusion table against a column of the index's model."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(SegmentationRun, pk=pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Report of {run.run_id}",
            "run": run,
            **report_context(run, request.GET.get("compare", "").strip()),
        }
        return TemplateResponse(request, "admin/semantic_catalog/segmentationrun/report.html", context)

    @admin.display(description="progress")
    def progress(self, obj: SegmentationRun) -> str:
        return f"{obj.processed}/{obj.total}" if obj.total else ""

    @admin.display(description="model")
    def model(self, obj: SegmentationRun) -> str:
        return str(obj.model_config.get("model", ""))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A run may be deleted (with its results and call index; the log files stay in their storage)."""
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    @admin.action(description="Cancel selected running runs", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(status=SegmentationRun.Status.RUNNING).update(cancel_requested=True)
        self.message_user(request, f"Asked {count} running run(s) to stop.", messages.SUCCESS)


@admin.register(Segment)
class SegmentAdmin(_ReadOnly):
    list_display = ["key", "name", "item_count", "run"]
    search_fields = ["name", "definition", "run__run_id"]
    list_filter = ["run__index"]


@admin.register(RefinedItemSegment)
class RefinedItemSegmentAdmin(_ReadOnly):
    list_display = ["item_id", "segment", "confidence", "run"]
    search_fields = ["item_id", "segment__name", "run__run_id"]


@admin.register(LLMInteraction)
class LLMInteractionAdmin(_ReadOnly):
    list_display = [
        "interaction_type",
        "batch",
        "attempt",
        "cached",
        "tokens_in",
        "tokens_out",
        "duration",
        "run",
        "file",
    ]
    list_filter = ["interaction_type", "cached"]
    search_fields = ["run__run_id", "cache_key", "path"]
    readonly_fields = ["file"]

    @admin.display(description="log file")
    def file(self, obj: LLMInteraction) -> str:
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_content", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.path.rsplit("/", 1)[-1])

    def get_urls(self) -> list[Any]:
        content = self.admin_site.admin_view(self.content_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_content"
        return [path("<int:pk>/content/", content, name=name), *super().get_urls()]

    def content_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The call's log file (metadata, context, prompt, raw answer), read through fsspec."""
        if not self.has_view_permission(request):
            raise Http404
        interaction = get_object_or_404(LLMInteraction, pk=pk)
        text, error = read_log(interaction.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{interaction} of {interaction.run.run_id}",
            "interaction": interaction,
            "content": text,
            "error": error,
        }
        return TemplateResponse(
            request, "admin/semantic_catalog/llminteraction/content.html", context, status=404 if error else 200
        )


def read_log(path: str) -> tuple[str, str]:
    """(pretty JSON text, "") or ("", why it cannot be shown)."""
    import fsspec

    try:
        with fsspec.open(path, "rb", **storage_options()) as handle:
            raw = handle.read(MAX_SHOWN_BYTES + 1)
    except FileNotFoundError:
        return "", "The log file is not in its storage (moved or deleted outside semantic_segmentation_storage?)."
    except Exception as exc:  # a storage that is down or refuses: say so, do not fail the page
        return "", f"The log storage could not be read: {type(exc).__name__}."
    if len(raw) > MAX_SHOWN_BYTES:
        return raw[:MAX_SHOWN_BYTES].decode("utf-8", "replace") + "\n... (truncated)", ""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False), ""
    except ValueError:
        return raw.decode("utf-8", "replace"), ""
