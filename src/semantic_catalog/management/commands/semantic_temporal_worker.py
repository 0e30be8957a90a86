from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from semantic_catalog.engine.errors import SemanticCatalogError


class Command(BaseCommand):
    help = (
        "Run a Temporal worker for Semantic Catalog's workflows (bulk indexing, and outbox drains when "
        "TEMPORAL['DRAIN'] is on) on SEMANTIC_CATALOG['TEMPORAL']'s server, namespace and task queue. "
        "Loads the model once at start. Stops on SIGINT or SIGTERM; a killed worker's batches are retried "
        "by the next worker on the queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--task-queue", help="Task queue to poll (default: TEMPORAL['TASK_QUEUE']).")
        parser.add_argument("--threads", type=int, default=4, help="Activities run at once (default 4).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            from semantic_catalog.workflows.activities import warm_up
            from semantic_catalog.workflows.conf import temporal_settings
            from semantic_catalog.workflows.worker import run_worker
        except ImportError as exc:
            raise CommandError(
                f"Temporal support needs temporalio ({exc}): pip install 'django-semantic-catalog[temporal]'."
            ) from exc
        if options["threads"] < 1:
            raise CommandError(f"--threads must be at least 1, got {options['threads']}.")
        try:
            config = temporal_settings()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        queue = options["task_queue"] or config["TASK_QUEUE"]
        model = warm_up()
        self.stdout.write(f"Model {model['model']} loaded ({model['dimension']} dimensions).")

        def ready() -> None:
            self.stdout.write(f"Worker polling {queue!r} on {config['ADDRESS']} (namespace {config['NAMESPACE']!r}).")
            self.stdout.flush()

        async def main() -> None:
            task = asyncio.ensure_future(run_worker(queue, options["threads"], ready))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, task.cancel)
            try:
                await task
            except asyncio.CancelledError:
                self.stdout.write("Worker stopped.")

        try:
            asyncio.run(main())
        except SemanticCatalogError as exc:
            raise CommandError(str(exc)) from exc
