"""A drain's per-index state (the ``IndexLease`` row): the lease and its heartbeat, an outage of the
store or the model, and the deferred drain already queued.

Self-healing rests on three things kept here. The lease is short and renewed while its drain is
alive, so a killed worker's lease lapses within LOCK_SECONDS. An outage is the index's, not its
rows': it is recorded once, with when it began, and drains wait for its next try instead of using up
the events' attempts. And a deferred drain is queued at most once per moment, so the retries that
drains schedule for themselves (a lease's expiry, a backoff's end, an outage's next try) do not
multiply.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections
from django.db.models import Q
from django.utils import timezone

from semantic_catalog.conf import semantic_settings
from semantic_catalog.models import IndexLease

logger = logging.getLogger("semantic_catalog.sync")


def drain_state(index_name: str) -> IndexLease:
    """The index's row (created on first use)."""
    state, _ = IndexLease.objects.get_or_create(index=index_name)
    return state


class Lease:
    """One drain's hold on an index: at most one drain per index at a time.

    It lasts LOCK_SECONDS from its last renewal. The drain renews it after every batch, and while it
    is held a heartbeat thread renews it every third of LOCK_SECONDS (a batch can encode for longer
    than that), so a live drain keeps it and a killed one loses it within LOCK_SECONDS.
    """

    def __init__(self, index_name: str):
        self.index_name = index_name
        self.token = uuid.uuid4().hex
        self.until: datetime | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lease when it is free, has lapsed, or is ours; starts the heartbeat."""
        now = timezone.now()
        until = now + timedelta(seconds=semantic_settings.LOCK_SECONDS)
        free = Q(locked_until__isnull=True) | Q(locked_until__lte=now) | Q(token=self.token)
        if IndexLease.objects.filter(free, index=self.index_name).update(token=self.token, locked_until=until) != 1:
            return False
        self.until = until
        self._start_heartbeat()
        return True

    def renew(self) -> bool:
        """Extend the lease; False when another drain has taken it (ours lapsed meanwhile)."""
        until = timezone.now() + timedelta(seconds=semantic_settings.LOCK_SECONDS)
        if IndexLease.objects.filter(index=self.index_name, token=self.token).update(locked_until=until) != 1:
            return False
        self.until = until
        return True

    def release(self) -> None:
        self._stop_heartbeat()
        IndexLease.objects.filter(index=self.index_name, token=self.token).update(token="", locked_until=None)

    def _start_heartbeat(self) -> None:
        self._stop_heartbeat()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat,
            args=(self._stop, semantic_settings.LOCK_SECONDS / 3),
            name=f"semantic-lease-{self.index_name}",
            daemon=True,
        )
        self._heartbeat.start()

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=30)
            self._heartbeat = None

    def _beat(self, stop: threading.Event, interval: float) -> None:
        try:
            while not stop.wait(interval):
                try:
                    if not self.renew():
                        logger.warning("The drain of %r lost its lease to another drain.", self.index_name)
                        return
                except Exception:  # a locked database, a dropped connection: try again at the next beat
                    logger.warning("Could not renew the drain lease of %r.", self.index_name, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only


def lease_expiry(index_name: str) -> datetime | None:
    """When the lease another drain holds lapses unless renewed."""
    return IndexLease.objects.filter(index=index_name).values_list("locked_until", flat=True).first()


@dataclass
class Outage:
    """The store or the model failed a write that was no row's fault."""

    what: str  # "store" or "model"
    since: datetime
    error: str
    retry_at: datetime

    @classmethod
    def of(cls, state: IndexLease) -> Outage | None:
        if not state.outage or state.outage_since is None or state.outage_retry_at is None:
            return None
        return cls(state.outage, state.outage_since, state.outage_error, state.outage_retry_at)

    def __str__(self) -> str:
        since = timezone.localtime(self.since)
        return f"{self.what} unavailable since {since:%Y-%m-%d %H:%M:%S %Z}: {self.error}"


def record_outage(state: IndexLease, what: str, error: str) -> Outage:
    """Note that ``what`` failed, and when drains should try it again: the wait doubles with the
    outage's length (from RETRY_BASE_SECONDS) up to OUTAGE_RETRY_MAX_SECONDS, and never uses up the
    events' attempts. ``state`` (the row as the drain read it) is updated too."""
    now = timezone.now()
    since = state.outage_since if state.outage == what and state.outage_since else now
    elapsed = (now - since).total_seconds()
    delay = min(semantic_settings.OUTAGE_RETRY_MAX_SECONDS, max(semantic_settings.RETRY_BASE_SECONDS, elapsed))
    state.outage, state.outage_since, state.outage_error = what, since, error[:4000]
    state.outage_retry_at = now + timedelta(seconds=delay)
    IndexLease.objects.filter(index=state.index).update(
        outage=state.outage,
        outage_since=state.outage_since,
        outage_error=state.outage_error,
        outage_retry_at=state.outage_retry_at,
    )
    return Outage.of(state)  # type: ignore[return-value]


def clear_outage(state: IndexLease) -> None:
    """A write went through: the store and the model are back."""
    if state.outage:
        logger.info("The %s of %r is back (unavailable since %s).", state.outage, state.index, state.outage_since)
    state.outage, state.outage_since, state.outage_error, state.outage_retry_at = "", None, "", None
    IndexLease.objects.filter(index=state.index).exclude(outage="").update(
        outage="", outage_since=None, outage_error="", outage_retry_at=None
    )


def claim_deferred_drain(index_name: str, at: datetime) -> bool:
    """Note that a deferred drain is being queued for ``at``. False when one is already queued for a
    moment from now to ``at``: that one will do (and schedules the next one if it is needed)."""
    free = Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now()) | Q(retry_at__gt=at)
    IndexLease.objects.get_or_create(index=index_name)
    return IndexLease.objects.filter(free, index=index_name).update(retry_at=at) == 1


def withdraw_deferred_drain(index_name: str, at: datetime) -> None:
    """Queuing it failed: the next drain that needs one queues it."""
    IndexLease.objects.filter(index=index_name, retry_at=at).update(retry_at=None)
