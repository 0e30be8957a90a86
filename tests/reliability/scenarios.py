"""The reliability scenarios, shared by the suite (small sizes) and benchmarks/reliability.py (the
large run). Each drives a ``Cluster`` through one fault, waits for the index to converge with no
manual step (no ``semantic_sync``), runs ``semantic_check`` and returns an ``Outcome``: the events
applied, the time to converge after the fault, the peak lag (age of the oldest pending event,
sampled every ``cluster.SAMPLE_SECONDS``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.reliability.cluster import SYNC_SETTINGS, Cluster

CONVERGE_TIMEOUT = 600  # model loading in each worker on a busy machine included


@dataclass
class Outcome:
    scenario: str
    backend: str
    fault: str
    writes: int
    kinds: dict[str, int]
    converge_seconds: float  # from the end of the fault (or of the writes) to an empty outbox
    peak_lag_seconds: float
    events: int = 0  # applied by the drains that finished (a killed drain's are not counted)
    drains: int = 0
    busy: int = 0  # drains that found the index leased
    waited_for_outage: int = 0  # drains that found an outage waiting for its next try
    failed_events: int = 0
    failed_tasks: list[str] = field(default_factory=list)
    check_status: int = -1
    differences: int = -1
    check: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return (f"{self.scenario} [{self.backend}]: {self.writes} writes, {self.events} events applied by "
                f"{self.drains} drains ({self.busy} found the index leased, {self.waited_for_outage} waited for "
                f"an outage); converged {self.converge_seconds:.1f}s after the fault, peak lag "
                f"{self.peak_lag_seconds:.1f}s; {self.failed_events} failed events, {len(self.failed_tasks)} "
                f"failed tasks; semantic_check: {self.differences} differences (exit {self.check_status}); "
                f"{self.notes}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finish(cluster: Cluster, outcome: Outcome) -> Outcome:
    stats = cluster.stats()
    outcome.events, outcome.drains, outcome.busy = stats["events"], stats["drains"], stats["busy"]
    outcome.waited_for_outage = stats["waited_for_outage"]
    outcome.failed_events = stats["failed_events"]
    outcome.failed_tasks = stats["failed_tasks"]
    outcome.check_status, outcome.check = cluster.check()
    outcome.differences = sum(report["differences"] for report in outcome.check)
    outcome.notes["max_failed_events_seen"] = max((s["failed"] for s in cluster.samples()), default=0)
    outcome.notes["worker_restarts"] = cluster.restarts
    outcome.notes["writes_rolled_back_locked"] = cluster.locked_writes
    print(outcome.line(), flush=True)
    return outcome


def kill_worker_mid_drain(cluster: Cluster, writes: int = 400, seed: int = 1) -> Outcome:
    """Writes pile up in the outbox, two workers start, the one whose drain holds the lease is
    SIGKILLed after its first batches; a new worker starts and nothing else is written."""
    batch = cluster_setting(cluster, "SYNC_BATCH_SIZE")
    cluster.setup()
    kinds = cluster.write(1, writes, seed)
    before = cluster.wait_for("the monitor", lambda s: True, time.time(), 60)["pending"]
    started = time.time()
    cluster.start_worker()
    cluster.start_worker()
    busy = cluster.wait_for(
        "no drain to kill (write more)",
        lambda s: s["leased"] and s["running"] and 2 * batch <= s["pending"] < before,
        started, CONVERGE_TIMEOUT,
    )
    holder = min(busy["running"], key=lambda r: r[1] or 0)[0]
    victim = next(w for w in cluster.workers if w.name == holder)
    killed = cluster.kill(victim)
    after = cluster.wait_for("the monitor", lambda s: True, killed, 60)
    cluster.start_worker()  # the replacement; no further writes
    converge = cluster.wait_converged(killed, CONVERGE_TIMEOUT)
    outcome = Outcome("kill -9 of a worker mid-drain", cluster.backend, f"SIGKILL of {holder}", kinds["writes"],
                      kinds, converge, cluster.peak_lag(started))
    outcome.notes.update(events_before=before, pending_at_kill=busy["pending"], pending_after=after["pending"],
                         lease_held_after_kill=after["leased"], lock_seconds=cluster_setting(cluster, "LOCK_SECONDS"))
    return _finish(cluster, outcome)


def store_outage(cluster: Cluster, initial: int = 100, during: int = 100, outage_seconds: float = 8,
                 seed: int = 2) -> Outcome:
    """The index built, the store becomes unavailable for ``outage_seconds`` (more than every retry of
    a row could last) while 2 writers write ``during`` changes, then comes back."""
    spans = cluster_setting(cluster, "MAX_ATTEMPTS") * cluster_setting(cluster, "RETRY_MAX_SECONDS")
    if outage_seconds <= spans:
        raise ValueError(f"the outage must outlast MAX_ATTEMPTS x RETRY_MAX_SECONDS ({spans}s)")
    cluster.setup()
    cluster.start_worker()
    cluster.start_worker()
    cluster.write(1, initial, seed)
    cluster.wait_converged(time.time(), CONVERGE_TIMEOUT)  # samples from before the writes would show 0
    down = time.time()
    how = cluster.store_down()
    kinds = cluster.write(2, during, seed + 1)
    noticed = cluster.wait_for("the drains did not notice the outage", lambda s: s["outage"] == "store", down, 120)
    time.sleep(max(0.0, outage_seconds - (time.time() - down)))
    cluster.store_up()
    up = time.time()
    converge = cluster.wait_converged(up, CONVERGE_TIMEOUT)
    outcome = Outcome("store unavailable, then back", cluster.backend, how, kinds["writes"], kinds, converge,
                      cluster.peak_lag(down))
    outcome.notes.update(outage_seconds=round(up - down, 1), noticed_after=round(noticed["t"] - down, 1),
                         retries_span=spans)
    return _finish(cluster, outcome)


def concurrent_writes(cluster: Cluster, writes: int = 400, writers: int = 4, workers: int = 2,
                      seed: int = 3) -> Outcome:
    """``writers`` processes make ``writes`` changes of every kind at once while ``workers`` drain."""
    cluster.setup()
    for _ in range(workers):
        cluster.start_worker()
    cluster.write(1, 4, seed)  # the first drain loads the model
    cluster.wait_converged(time.time(), CONVERGE_TIMEOUT)
    started = time.time()
    kinds = cluster.write(writers, writes, seed + 1)
    ended = time.time()
    converge = cluster.wait_converged(ended, CONVERGE_TIMEOUT)
    outcome = Outcome(f"{writes} writes from {writers} processes, {workers} workers", cluster.backend, "none",
                      kinds["writes"], kinds, converge, cluster.peak_lag(started))
    outcome.notes["write_seconds"] = round(ended - started, 1)
    return _finish(cluster, outcome)


def cluster_setting(cluster: Cluster, name: str) -> Any:
    return cluster.sync_settings.get(name, SYNC_SETTINGS[name])


SCENARIOS = {"kill": kill_worker_mid_drain, "outage": store_outage, "writes": concurrent_writes}
