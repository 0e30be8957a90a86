from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from semantic_catalog.engine.errors import SemanticCatalogError
from semantic_catalog.engine.segmentation.types import MODES, NAMINGS, Progress
from semantic_catalog.management.commands._base import IndexCommand
from semantic_catalog.segmentation.conf import EMBEDDING_FIRST_OPTIONS, is_temperature
from semantic_catalog.segmentation.items import items_by_filter, items_by_ids, items_of_queryset
from semantic_catalog.segmentation.runs import create_run, execute_run, prepare_resume


class Command(IndexCommand):
    help = (
        "LLM market segmentation of rows of an index, here and now (a progress bar per stage): give ids, or "
        "--filter field=value over the index's queryset. Every LLM call is logged as a file and cached, so "
        "--resume RUN_ID continues a failed, cancelled or crashed run without asking anything twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", help="ids of the rows to segment")
        parser.add_argument("--index", help="the index whose rows to segment (not with --resume)")
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="a declared filter field (FIELD__gte=..., __lte, __gt, __lt; FIELD__in=a,b); repeatable",
        )
        parser.add_argument(
            "--all", action="store_true", help="every row of the index's queryset (at most SEGMENTATION MAX_ITEMS)"
        )
        parser.add_argument("--category", default="", help="what the items are (shown to the LLM)")
        parser.add_argument("--model", help="LLM model (default: SEGMENTATION MODEL)")
        parser.add_argument("--temperature", type=float, help="0 to 2 (default: SEGMENTATION TEMPERATURE)")
        parser.add_argument(
            "--mode",
            choices=MODES,
            default="full",
            help="full (default): the LLM reads every item twice; embedding_first: cluster the items' vectors from "
            "the index, the LLM only names the clusters and arbitrates uncertain items",
        )
        parser.add_argument(
            "--segments", type=int, help="embedding_first: the number of segments (default: chosen by silhouette)"
        )
        parser.add_argument("--min-segments", type=int, help="embedding_first: silhouette range, low end (2)")
        parser.add_argument("--max-segments", type=int, help="embedding_first: silhouette range, high end (12)")
        parser.add_argument(
            "--naming",
            choices=NAMINGS,
            help="embedding_first: llm (default) or keywords (clusters named by their most distinctive words; "
            "no LLM call at all)",
        )
        parser.add_argument("--resume", metavar="RUN_ID", help="continue this run from its logs and the cache")
        parser.add_argument("--force", action="store_true", help="with --resume: also a run marked running")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run_id = self._resume(options) if options["resume"] else self._create(options)
            bars = _Bars(self.stderr, disabled=options["no_progress"])
            try:
                run = execute_run(run_id, on_progress=bars.update)
            finally:
                bars.close()
        except (SemanticCatalogError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        if run.status != run.Status.COMPLETED:
            raise CommandError(
                f"Run {run.run_id} {run.status}: {run.error} Resume it with `semantic_segment --resume {run.run_id}`."
            )
        summary = run.result_summary
        self.stdout.write(
            f"{run.run_id}: {summary.get('segments', 0)} segments, {summary.get('assigned', 0)} of "
            f"{run.total_items} items assigned ({summary.get('problem_count', 0)} problems in answers)"
        )
        for segment in run.segments.order_by("-item_count", "key"):
            self.stdout.write(f"  {segment.key} {segment.name} ({segment.item_count}): {segment.definition}")

    def _resume(self, options: dict[str, Any]) -> str:
        if options["ids"] or options["filter"] or options["all"] or options["index"]:
            raise CommandError("--resume takes the run's own items: give no ids, --filter, --all or --index with it.")
        return prepare_resume(options["resume"], force=options["force"]).run_id

    def _create(self, options: dict[str, Any]) -> str:
        if not options["index"]:
            raise CommandError("Name the index with --index (or continue a run with --resume RUN_ID).")
        (index,) = self.selected({"indexes": [options["index"]]})
        if sum(map(bool, (options["ids"], options["filter"], options["all"]))) != 1:
            raise CommandError("Say which rows: ids, --filter FIELD=VALUE or --all (one of them).")
        temperature = options["temperature"]
        if temperature is not None and not is_temperature(temperature):
            raise CommandError(f"--temperature must be from 0 to 2, not {temperature}.")
        if options["ids"]:
            items = items_by_ids(index, options["ids"])
        elif options["all"]:
            items = items_of_queryset(index)
        else:
            items = items_by_filter(index, _filters(options["filter"]))
        clustering = {key: options[key] for key in EMBEDDING_FIRST_OPTIONS}
        run = create_run(
            index,
            items,
            category=options["category"],
            model=options["model"],
            temperature=temperature,
            mode=options["mode"],
            **clustering,
        )
        self.stderr.write(f"{run.run_id}: {len(items)} items of {index.name}, logs in {run.storage_url}")
        return run.run_id


def _filters(pairs: list[str]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep or not field:
            raise CommandError(f"--filter takes FIELD=VALUE, not {pair!r}.")
        filters[field] = value.split(",") if field.endswith("__in") else value
    return filters


class _Bars:
    """One tqdm bar per stage, fed by the engine's progress callback."""

    def __init__(self, stream: Any, disabled: bool) -> None:
        self.stream = stream
        self.disabled = disabled
        self.bar: tqdm | None = None
        self.stage = ""

    def update(self, progress: Progress) -> None:
        if progress.stage != self.stage or self.bar is None:
            self.close()
            self.stage = progress.stage
            self.bar = tqdm(total=progress.total, desc=progress.stage, disable=self.disabled, file=self.stream)
        self.bar.total = progress.total
        self.bar.n = progress.processed
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
