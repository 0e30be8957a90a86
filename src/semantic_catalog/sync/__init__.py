"""Keeping the index in step with SQL.

``signals`` (receivers connected in ``AppConfig.ready``) -> ``changes`` (outbox rows in the same
transaction, a drain queued at commit) -> ``tasks`` (the drain task, and the deferred drains it
schedules) -> ``drain`` (batches, a row's fault or an outage, backoff, optimize), with ``lease`` (the
drain's short lease and heartbeat, the outage record, deferred drains queued once).
``reconcile`` is the bulk path behind ``semantic_index``.
"""

from semantic_catalog.sync.changes import mark_dirty, record_changes, schedule_drain
from semantic_catalog.sync.drain import DrainReport, retry_failed
from semantic_catalog.sync.tasks import run_drain

__all__ = ["DrainReport", "mark_dirty", "record_changes", "retry_failed", "run_drain", "schedule_drain"]
