"""One reliability run's world: a database shared by processes (a SQLite file in WAL mode, or a
database of its own on the PostgreSQL server of SEMANTIC_CATALOG_TEST_PG_DSN), a vector store
(LanceDB in the run's folder, or pgvector), and the processes that use them: ``db_worker``s, writers
and a monitor, all through one generated settings module. Faults are real: SIGKILL of a worker, the
store's folder made read-only (for workers that cannot bypass permissions), the store's PostgreSQL server stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.reliability.processes import (
    MANAGE,
    ROOT,
    Child,
    child_env,
    child_kwargs,
    db_worker_command,
    drops_permission_bypass,
    module_command,
    start,
    stop,
    tails,
)

SETTINGS_MODULE = "sc_reliability_settings"
SETTINGS = """\
from tests.settings import *  # noqa: F403
from tests.settings import SEMANTIC_CATALOG as _TESTS

DATABASES = {databases!r}
TASKS = {{"default": {{"BACKEND": "django_tasks_db.DatabaseBackend"}}}}
SEMANTIC_CATALOG = {{**_TESTS, **{semantic!r}}}
DEBUG = False
"""
# Short leases and backoffs, so that a fault heals within seconds; the outage scenarios last longer
# than MAX_ATTEMPTS x RETRY_MAX_SECONDS, the most a row's own retries could span.
SYNC_SETTINGS: dict[str, Any] = {
    "SYNC_BATCH_SIZE": 16,
    "LOCK_SECONDS": 10,  # a first drain loads the model, which can starve the heartbeat for seconds
    "RETRY_BASE_SECONDS": 0.5,
    "RETRY_MAX_SECONDS": 2,
    "OUTAGE_RETRY_MAX_SECONDS": 2,
    "MAX_ATTEMPTS": 3,
}
SQLITE_OPTIONS = {  # as the demo's: WAL lets readers and one writer work at once
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "timeout": 20,
}
SAMPLE_SECONDS = 0.25
# The ONNX export of the model, made once per machine (by the first run's setup) and shared.
MODEL_CACHE = Path(tempfile.gettempdir()) / "semantic-catalog-reliability-cache"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


class PostgresServer:
    """A PostgreSQL server of the run's own (scripts/postgres.sh with its own folder and port), so
    that stopping it, a store outage, disturbs nobody else using the shared server."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sc-reliability-pgserver-"))
        self.env = {
            **os.environ,
            "SEMANTIC_CATALOG_PG_DIR": str(self.dir),
            "SEMANTIC_CATALOG_PG_PORT": str(free_port()),
            "SEMANTIC_CATALOG_PG_DB": "store",
        }

    def _script(self, *args: str) -> str:
        done = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), *args], env=self.env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"scripts/postgres.sh {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout.strip()

    def start(self) -> str:
        return self._script()

    def stop(self) -> None:
        self._script("stop")

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            Path(f"{self.dir}.initdb.log").unlink(missing_ok=True)


class Cluster:
    """The run's folder, settings and processes. ``backend`` is "sqlite" (SQLite file + LanceDB) or
    "pg" (PostgreSQL for Django and pgvector for the store; ``pg_dsn`` names the server, and
    ``store_server`` puts the store on a server of its own that ``store_down`` stops)."""

    def __init__(self, backend: str, *, pg_dsn: str | None = None, store_server: bool = False,
                 sync_settings: dict[str, Any] | None = None):
        if backend not in ("sqlite", "pg"):
            raise ValueError(f"backend must be 'sqlite' or 'pg', not {backend!r}")
        if backend == "pg" and not pg_dsn:
            raise ValueError("the 'pg' backend needs pg_dsn")
        self.backend = backend
        self.dir = Path(tempfile.mkdtemp(prefix=f"sc-reliability-{backend}-"))
        self.data = self.dir / "data"
        self.logs = self.dir / "logs"
        for folder in (self.data, self.logs, self.dir / "tmp", MODEL_CACHE):
            folder.mkdir(exist_ok=True)
        self.children: list[Child] = []
        self.workers: list[Child] = []
        self.restarts: list[str] = []  # workers that exited by themselves: why (restarted, as a supervisor would)
        self.locked_writes = 0  # writers' changes rolled back because SQLite stayed locked past its timeout
        self._restarted: set[str] = set()
        self.monitor: Child | None = None
        self.samples_path = self.dir / "samples.jsonl"
        self.pg_dsn = pg_dsn
        self.database: str | None = None
        self.store_server: PostgresServer | None = None
        self.sync_settings = {**SYNC_SETTINGS, **(sync_settings or {})}
        semantic: dict[str, Any] = {"DATA_DIR": str(self.data), **self.sync_settings}
        if backend == "sqlite":
            databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(self.dir / "db.sqlite3"),
                                     "OPTIONS": SQLITE_OPTIONS}}
        else:
            from demo.settings import postgres_database

            self.database = f"sc_reliability_{uuid.uuid4().hex[:10]}"
            self._admin(f'CREATE DATABASE "{self.database}"')
            database_dsn = with_database(pg_dsn, self.database)  # type: ignore[arg-type]
            databases = {"default": postgres_database(database_dsn, "SEMANTIC_CATALOG_TEST_PG_DSN")}
            store_dsn = database_dsn
            if store_server:
                self.store_server = PostgresServer()
                try:
                    store_dsn = self.store_server.start()
                except BaseException:
                    self.close()  # the database just created, the server's folder
                    raise
            semantic["VECTOR_STORE"] = {
                "BACKEND": "semantic_catalog.engine.stores.pgvector.PgVectorStore",
                "OPTIONS": {"dsn": store_dsn, "schema": "semantic_catalog_reliability", "connect_timeout": 3},
            }
        (self.dir / f"{SETTINGS_MODULE}.py").write_text(SETTINGS.format(databases=databases, semantic=semantic))
        self.env = child_env(self.dir, SETTINGS_MODULE, TMPDIR=str(self.dir / "tmp"),
                             XDG_CACHE_HOME=str(MODEL_CACHE))

    # -- processes ---------------------------------------------------------------------------------

    def _start(self, name: str, command: list[str]) -> Child:
        child = start(name, command, self.env, self.dir, self.logs)
        self.children.append(child)
        return child

    def _run(self, name: str, command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, cwd=self.dir, capture_output=True, text=True,
                              timeout=timeout, **child_kwargs())

    def setup(self) -> None:
        """Migrate, create the shops (and make the model's ONNX export on this machine's first run);
        then start the monitor."""
        warm = ["--warm"] if not any(MODEL_CACHE.glob("semantic-catalog/onnx/*/*.onnx")) else []
        done = self._run("setup", module_command("tests.reliability.writer", "setup", *warm))
        if done.returncode:
            raise RuntimeError(f"the setup failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        self.monitor = self._start("monitor", module_command("tests.reliability.monitor", "watch",
                                                             self.samples_path, SAMPLE_SECONDS))

    def start_worker(self) -> Child:
        worker = self._start(f"worker-{len(self.workers)}", db_worker_command(f"worker-{len(self.workers)}"))
        self.workers.append(worker)
        return worker

    def supervise(self) -> None:
        """Restart workers that exited by themselves (not killed by a scenario), as systemd's
        ``Restart=always`` would, noting why they exited."""
        for worker in list(self.workers):
            if worker.alive() or worker.process.returncode == -signal.SIGKILL or worker.name in self._restarted:
                continue
            lines = [line for line in worker.log.read_text(errors="replace").splitlines() if line.strip()]
            self.restarts.append(f"{worker.name} exited ({worker.process.returncode}): {lines[-1] if lines else ''}")
            self._restarted.add(worker.name)
            self.start_worker()

    def kill(self, child: Child) -> float:
        """SIGKILL: the process gets no chance to release anything. Returns when it happened."""
        os.kill(child.pid, signal.SIGKILL)
        at = time.time()
        child.process.wait()
        return at

    def start_writers(self, writers: int, writes: int, seed: int) -> list[Child]:
        """``writers`` processes making ``writes`` changes in all (split evenly), at once."""
        share = [writes // writers + (n < writes % writers) for n in range(writers)]
        first = sum(1 for c in self.children if c.name.startswith("writer-"))
        return [
            self._start(f"writer-{first + n}", module_command(
                "tests.reliability.writer", "write", first + n, share[n], seed * 100 + first + n,
                self.dir / f"writer-{first + n}.json"))
            for n in range(writers)
        ]

    def wait_writers(self, writers: list[Child], timeout: float = 600) -> dict[str, int]:
        """Wait for the writers; returns the changes made, by kind (and ``writes`` in all)."""
        deadline = time.monotonic() + timeout
        for writer in writers:
            writer.process.wait(timeout=max(1.0, deadline - time.monotonic()))
            if writer.process.returncode:
                raise AssertionError(f"a writer failed:\n{writer.tail()}")
        kinds: dict[str, int] = {"writes": 0}
        for writer in writers:
            summary = json.loads((self.dir / f"{writer.name}.json").read_text())
            kinds["writes"] += summary["writes"]
            self.locked_writes += summary["locked"]
            for kind, count in summary["kinds"].items():
                kinds[kind] = kinds.get(kind, 0) + count
        return kinds

    def write(self, writers: int, writes: int, seed: int) -> dict[str, int]:
        return self.wait_writers(self.start_writers(writers, writes, seed))

    # -- observing ---------------------------------------------------------------------------------

    def samples(self, since: float = 0.0, until: float = float("inf")) -> list[dict[str, Any]]:
        if not self.samples_path.exists():
            return []
        out = []
        for line in self.samples_path.read_text().splitlines():
            try:
                sample = json.loads(line)
            except ValueError:  # being written
                continue
            if "error" not in sample and since <= sample["t"] <= until:
                out.append(sample)
        return out

    def peak_lag(self, since: float = 0.0, until: float = float("inf")) -> float:
        return max((s["lag"] for s in self.samples(since, until)), default=0.0)

    def wait_for(self, what: str, condition: Callable[[dict[str, Any]], bool], since: float,
                 timeout: float) -> dict[str, Any]:
        """The first sample taken after ``since`` for which ``condition`` holds (workers that exit
        meanwhile are restarted); fails after ``timeout`` seconds."""
        deadline = time.time() + timeout
        seen = 0
        while True:
            samples = self.samples(since)
            for sample in samples[seen:]:
                if condition(sample):
                    return sample
            seen = len(samples)
            self.supervise()
            if time.time() > deadline:
                last = samples[-1] if samples else None
                raise AssertionError(f"{what}: not within {timeout:.0f}s; last sample {last}; worker restarts "
                                     f"{self.restarts}\n{tails(self.children)}")
            time.sleep(SAMPLE_SECONDS / 2)

    def wait_converged(self, since: float, timeout: float = 300) -> float:
        """Seconds from ``since`` until the outbox is empty (every change applied, none failed)."""
        sample = self.wait_for("the outbox did not empty", lambda s: s["pending"] == 0 and s["failed"] == 0,
                               since, timeout)
        return max(0.0, sample["t"] - since)

    def check(self) -> tuple[int, list[dict[str, Any]]]:
        """``manage.py semantic_check --json``: its exit status and its reports."""
        done = self._run("check", [sys.executable, str(MANAGE), "semantic_check", "--json"])
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError as exc:
            output = f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            raise AssertionError(f"semantic_check printed no JSON:\n{output}") from exc

    def stats(self) -> dict[str, Any]:
        done = self._run("stats", module_command("tests.reliability.monitor", "stats"))
        if done.returncode:
            raise RuntimeError(f"stats failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout)

    def tails(self) -> str:
        return tails(self.children)

    # -- the store's outage ------------------------------------------------------------------------

    @property
    def store_folder(self) -> Path:
        return self.data / "lancedb"

    def store_down(self) -> str:
        """Make the store unavailable to the workers; says how."""
        if self.backend == "pg":
            if self.store_server is None:
                raise RuntimeError("a PostgreSQL store outage needs Cluster(..., store_server=True)")
            self.store_server.stop()
            return "the store's PostgreSQL server stopped (pg_ctl stop -m fast)"
        if not self.store_folder.is_dir():
            raise RuntimeError(f"no store folder to make read-only: {self.store_folder} (nothing indexed yet?)")
        self._chmod(self.store_folder, 0o555, 0o444)
        who = "root without CAP_DAC_OVERRIDE" if drops_permission_bypass() else "a non-root user"
        return f"the LanceDB folder read-only (the workers run as {who})"

    def store_up(self) -> None:
        if self.backend == "pg":
            self.store_server.start()  # type: ignore[union-attr]
        else:
            self._chmod(self.store_folder, 0o755, 0o644)

    @staticmethod
    def _chmod(folder: Path, folders: int, files: int) -> None:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(folders if path.is_dir() else files)

    # -- the end -----------------------------------------------------------------------------------

    def close(self) -> None:
        stop(self.children)
        if self.store_server is not None:
            self.store_server.destroy()
        if self.database is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        if not os.environ.get("SEMANTIC_CATALOG_KEEP_RELIABILITY_RUNS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.pg_dsn, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(statement)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

