"""The log storage: every LLM call is a JSON file, the prompts are archived once per run, and every file's
SHA-256 is recorded (in the call's ``InteractionRecord`` and in the run's ``checksums.sha256``).

Layout under the storage root (a local folder or any fsspec URL, e.g. ``s3://bucket/prefix``)::

    RUN_<ISO ts>_<hash>/
      prompts/<template>_v1.txt
      segmentation/<ts>_b<batch>_a<attempt>_<hash>.json          stage (a), extract
      consolidate_taxonomy/<ts>_b<batch>_a<attempt>_<hash>.json  stage (b)
      refine_assignments/<ts>_b<batch>_a<attempt>_<hash>.json    stage (c)
      name_clusters/<ts>_b<batch>_a<attempt>_<hash>.json         embedding_first: clusters named
      checksums.sha256                                           "<sha256>  <path in the run>" per file

``<hash>`` is the first 16 hex digits of the call's cache key; ``FileCallIndex`` finds earlier calls by it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import UTC, datetime
from typing import Any

from semantic_catalog.engine.errors import LogStorageError, SegmentationInputError
from semantic_catalog.engine.segmentation.types import InteractionRecord

INTERACTION_DIRS = ("segmentation", "consolidate_taxonomy", "refine_assignments", "name_clusters")
MANIFEST = "checksums.sha256"
RUN_ID = re.compile(r"^RUN_\d{8}T\d{6}(\.\d+)?Z_[0-9a-f]{8,64}$")
KEY_PREFIX = 16


def timestamp() -> str:
    """A compact ISO 8601 UTC timestamp that is safe in a file name on any storage."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise SegmentationInputError(f"{run_id!r} is not a run id; a run id looks like RUN_20260101T120000Z_1a2b3c4d.")
    return run_id


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LogStorage:
    """One storage root through fsspec; paths handed out are full URLs (plain paths for local folders)."""

    def __init__(self, storage_url: str, storage_options: dict[str, Any] | None = None):
        import fsspec

        self.storage_options = dict(storage_options or {})
        try:
            self.fs, root = fsspec.core.url_to_fs(str(storage_url), **self.storage_options)
        except (ImportError, ValueError) as exc:
            raise LogStorageError(f"cannot open the log storage {storage_url!r}: {exc}") from None
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(self.fs)

    def url(self, relative: str) -> str:
        path = f"{self.root}/{relative}" if relative else self.root
        return path if self.local else self.fs.unstrip_protocol(path)

    def path(self, url_or_relative: str) -> str:
        """The storage path of a URL handed out by ``url`` (or of a path relative to the root)."""
        stripped = self.fs._strip_protocol(url_or_relative)
        if stripped.startswith(self.root + "/") or stripped == self.root:
            return stripped
        return f"{self.root}/{url_or_relative.lstrip('/')}"

    def write(self, relative: str, data: bytes) -> str:
        """Writes a file; returns its SHA-256."""
        path = f"{self.root}/{relative}"
        try:
            if self.local:
                self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(path, data)
        except OSError as exc:
            raise LogStorageError(f"cannot write {relative} to the log storage: {exc}") from None
        return sha256(data)

    def read(self, url_or_relative: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(url_or_relative))
        except (OSError, FileNotFoundError) as exc:
            raise LogStorageError(f"cannot read {url_or_relative} from the log storage: {exc}") from None

    def exists(self, relative: str) -> bool:
        return bool(self.fs.exists(f"{self.root}/{relative}"))

    def files(self, run_id: str) -> list[str]:
        """Every file of a run, as paths relative to the run folder, sorted."""
        base = f"{self.root}/{run_id}"
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        return sorted(p[len(base) + 1 :] for p in found if p.startswith(base + "/"))


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


class RunLog:
    """The files of one run: archived prompts, one file per call, the checksum manifest."""

    def __init__(self, storage: LogStorage, run_id: str):
        self.storage = storage
        self.run_id = check_run_id(run_id)
        self.checksums: dict[str, str] = {}
        self.lock = threading.Lock()
        if storage.exists(f"{run_id}/{MANIFEST}"):
            for line in storage.read(f"{run_id}/{MANIFEST}").decode("utf-8").splitlines():
                digest, _, name = line.partition("  ")
                if digest and name:
                    self.checksums[name] = digest

    def archive_prompt(self, filename: str, text: str) -> str:
        """Archives a template once per run (a resumed run keeps the first copy); returns its URL."""
        relative = f"prompts/{filename}"
        if not self.storage.exists(f"{self.run_id}/{relative}"):
            digest = self.storage.write(f"{self.run_id}/{relative}", text.encode("utf-8"))
            with self.lock:
                self.checksums[relative] = digest
        return self.storage.url(f"{self.run_id}/{relative}")

    def write_call(
        self, interaction_type: str, batch: int, attempt: int, key: str, payload: dict[str, Any]
    ) -> tuple[str, str]:
        """Writes one call's file; returns (URL, SHA-256)."""
        if interaction_type not in INTERACTION_DIRS:
            raise ValueError(f"unknown interaction type {interaction_type!r}")
        relative = f"{interaction_type}/{timestamp()}_b{batch}_a{attempt}_{key[:KEY_PREFIX]}.json"
        data = json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8")
        digest = self.storage.write(f"{self.run_id}/{relative}", data)
        with self.lock:
            self.checksums[relative] = digest
        return self.storage.url(f"{self.run_id}/{relative}"), digest

    def write_manifest(self) -> None:
        with self.lock:
            lines = "".join(f"{digest}  {name}\n" for name, digest in sorted(self.checksums.items()))
        self.storage.write(f"{self.run_id}/{MANIFEST}", lines.encode("utf-8"))


def read_call(storage: LogStorage, url: str) -> dict[str, Any]:
    """A call's logged file (metadata, context, prompt, messages, response)."""
    try:
        data = json.loads(storage.read(url))
    except json.JSONDecodeError:
        raise LogStorageError(f"{url} is not a call log (not JSON).") from None
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict) or "response" not in data:
        raise LogStorageError(f"{url} is not a call log (no metadata or response).")
    return data


class FileCallIndex:
    """The engine's own ``CallIndex``: earlier calls found by scanning the log storage's file names (once,
    lazily), confirmed by the cache key in the file's metadata."""

    def __init__(self, storage_url: str, storage_options: dict[str, Any] | None = None):
        self.storage = LogStorage(storage_url, storage_options)
        self._by_prefix: dict[str, list[str]] | None = None
        self._lock = threading.Lock()

    def _scan(self) -> dict[str, list[str]]:
        with self._lock:
            if self._by_prefix is None:
                found: dict[str, list[str]] = {}
                for kind in INTERACTION_DIRS:
                    try:
                        paths = self.storage.fs.glob(f"{self.storage.root}/RUN_*/{kind}/*.json")
                    except FileNotFoundError:
                        paths = []
                    for path in sorted(paths):
                        prefix = path.rsplit("_", 1)[-1].removesuffix(".json")
                        found.setdefault(prefix, []).append(path)
                self._by_prefix = found
            return self._by_prefix

    def find(self, cache_key: str) -> str | None:
        for path in self._scan().get(cache_key[:KEY_PREFIX], []):
            try:
                metadata = read_call(self.storage, path)["metadata"]
            except LogStorageError:
                continue
            if metadata.get("cache_key") == cache_key:
                return path if self.storage.local else self.storage.fs.unstrip_protocol(path)
        return None

    def add(self, record: InteractionRecord) -> None:
        if record.cached:
            return
        path = self.storage.path(record.path)
        with self._lock:
            if self._by_prefix is not None:
                self._by_prefix.setdefault(record.cache_key[:KEY_PREFIX], []).append(path)
