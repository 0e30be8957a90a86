"""LanceDB on local disk (or object storage): the embedded default vector store.

Each collection is one Lance table with columns ``id``, ``text``, ``content_hash``, ``text_hash``,
``vector`` and one ``f_<name>`` column per filter field. Keyword search uses LanceDB's native
full-text index on ``text``; rows written after the index was built are still searched (flat), and
``optimize`` folds them into the index.

Vector search is exact (flat) until a collection reaches ``ann_threshold`` rows; the next ``optimize``
then builds an approximate index (IVF-HNSW with scalar quantisation by default) and later ones add
new rows to it. Rows written since the last ``optimize`` are still searched exactly, so a result is
never stale, and a filtered query that the index answers with fewer than ``limit`` hits is re-run
exactly, so filters never shrink results.

Searches and fetches go through LanceDB's async API, each as one coroutine on LanceDB's own background
loop: its sync query builders cross to that loop up to seven times per query (mostly to re-read the
schema), which cost more than the search itself on a small index. Both connections share one session
(one index cache).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from semantic_catalog.engine.documents import Document, SearchHit, StoredRecord
from semantic_catalog.engine.errors import CollectionMissing, ConfigurationError
from semantic_catalog.engine.filters import FieldSpec, Filter
from semantic_catalog.engine.stores.analyzer import TextAnalyzer
from semantic_catalog.engine.stores.base import (
    KeywordFinish,
    VectorSource,
    VectorStore,
    keyword_hits,
    resolve_vector,
    semantic_hits,
)
from semantic_catalog.engine.stores.hot import DEFAULT_HOT_COPY_MB, HotCopies, HotCopy

ARROW_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
ID_CHUNK = 500
HIT_COLUMNS = ("text", "vector")  # what hybrid's full-text query reads of each hit without a hot copy
DEFAULT_ANN_THRESHOLD = 50_000
# The index optimize builds when ``ann_index`` names no index type, chosen by the collection's rows at that
# moment (benchmarks/ann_scale.py --sweep): one HNSW graph (8-bit scalar quantised) searches fastest, and
# IVF_FLAT from DEFAULT_IVF_THRESHOLD rows builds in a fraction of the time and memory with recall@10 >= 0.95.
HNSW_INDEX = {"index_type": "IVF_HNSW_SQ", "num_partitions": 1}
IVF_INDEX = {"index_type": "IVF_FLAT"}
DEFAULT_IVF_THRESHOLD = 200_000
ANN_INDEX_TYPES = {  # index_type -> lancedb.index config class
    "IVF_HNSW_SQ": "IvfHnswSq",
    "IVF_HNSW_PQ": "IvfHnswPq",
    "IVF_PQ": "IvfPq",
    "IVF_SQ": "IvfSq",
    "IVF_FLAT": "IvfFlat",
}
# HNSW search list of 150 (raised to the limit when larger). On the Home Depot titles with real
# queries: recall@10 0.992 at p50 5.1 ms, against 0.913 / 4.4 ms with LanceDB's defaults and
# 0.969 / 5.6 ms re-scoring twice the hits with full vectors (benchmarks/ann_scale.py --rows 0).
# IVF partitions probed: 20 (IVF_FLAT at 1,000,000 rows: recall@10 0.960). Each index type ignores
# the other's option, so one default serves both.
DEFAULT_ANN_SEARCH = {"ef": 150, "nprobes": 20}


def column(field_name: str) -> str:
    """Store column of a filter field; the prefix keeps user names away from the fixed columns."""
    return f"f_{field_name}"


def sql_literal(value: Any) -> str:
    """A SQL literal for LanceDB's (DataFusion) filter syntax."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def where_clause(
    filters: Sequence[Filter], exclude_ids: Sequence[str] = (), specs: dict[str, FieldSpec] | None = None
) -> str | None:
    """Translate validated filters into one SQL predicate (None when there is nothing to filter)."""
    parts: list[str] = []
    specs = specs or {}
    for f in filters:
        col = f"`{column(f.field)}`"
        many = specs.get(f.field, FieldSpec(f.field)).many
        if f.op == "in":
            values = ", ".join(sql_literal(v) for v in f.value)
            parts.append(f"array_has_any({col}, [{values}])" if many else f"{col} IN ({values})")
        elif f.op == "eq":
            parts.append(f"array_has({col}, {sql_literal(f.value)})" if many else f"{col} = {sql_literal(f.value)}")
        else:
            symbol = {"gte": ">=", "lte": "<=", "gt": ">", "lt": "<"}[f.op]
            parts.append(f"{col} {symbol} {sql_literal(f.value)}")
    if exclude_ids:
        parts.append(f"id NOT IN ({', '.join(sql_literal(i) for i in exclude_ids)})")
    return " AND ".join(f"({p})" for p in parts) or None


def vector_matrix(vectors: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list column as an (n, dimension) float32 matrix, without a Python loop."""
    dimension = vectors.type.list_size
    flat = vectors.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(vectors), dimension).astype(np.float32, copy=False)


class LanceDBStore(VectorStore):
    """Options: ``uri`` (a folder, or an object-store URI LanceDB understands), ``read_consistency_seconds``
    (how stale a reader may be after another process wrote; 0 = always see the latest commit),
    ``storage_options`` (credentials for object storage), ``ann_threshold`` (rows at which ``optimize``
    builds an approximate vector index; ``None`` = always exact), ``ann_index`` (``index_type``, one of
    ``ANN_INDEX_TYPES``, plus that LanceDB index config's options such as ``num_partitions``; without an
    ``index_type`` the type is chosen by the rows when the index is built: ``HNSW_INDEX`` below
    ``ivf_threshold`` rows, ``IVF_INDEX`` from there, updated with the options given),
    ``ivf_threshold`` (default ``DEFAULT_IVF_THRESHOLD``), ``ann_search`` (query-time options such as
    ``{"nprobes": 20, "ef": 100, "refine_factor": 2}``; default ``{"ef": 150, "nprobes": 20}``, ``ef``
    raised to the limit when that is larger), ``hot_copy_mb`` (memory for hot copies of collections'
    texts and vectors, which hybrid searches read instead of the files, see ``hot``; 0 = none).
    """

    def __init__(
        self,
        uri: str | Path,
        read_consistency_seconds: float = 0.0,
        storage_options: dict[str, str] | None = None,
        ann_threshold: int | None = DEFAULT_ANN_THRESHOLD,
        ann_index: dict[str, Any] | None = None,
        ann_search: dict[str, Any] | None = None,
        ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
        hot_copy_mb: int = DEFAULT_HOT_COPY_MB,
    ) -> None:
        if not uri:
            raise ConfigurationError("LanceDBStore needs a 'uri': a folder path or an object-store URI.")
        if ann_threshold is not None and (not isinstance(ann_threshold, int) or ann_threshold < 1):
            raise ConfigurationError(f"ann_threshold must be a positive whole number or None, got {ann_threshold!r}.")
        ann_index = dict(ann_index or {})
        if ann_index.get("index_type", HNSW_INDEX["index_type"]) not in ANN_INDEX_TYPES:
            raise ConfigurationError(f"ann_index index_type must be one of {', '.join(ANN_INDEX_TYPES)}.")
        if not isinstance(ivf_threshold, int) or isinstance(ivf_threshold, bool) or ivf_threshold < 1:
            raise ConfigurationError(f"ivf_threshold must be a positive whole number, got {ivf_threshold!r}.")
        if not isinstance(hot_copy_mb, int) or isinstance(hot_copy_mb, bool) or hot_copy_mb < 0:
            raise ConfigurationError(f"hot_copy_mb must be whole megabytes, 0 or more, got {hot_copy_mb!r}.")
        unknown = set(ann_search or {}) - {"nprobes", "refine_factor", "ef"}
        if unknown:
            raise ConfigurationError(f"Unknown ann_search options {sorted(unknown)}; use nprobes, refine_factor, ef.")
        self.uri = str(uri)
        self.read_consistency_seconds = read_consistency_seconds
        self.storage_options = storage_options
        self.ann_threshold = ann_threshold
        self.ann_index = ann_index
        self.ivf_threshold = ivf_threshold
        self._hot = HotCopies(hot_copy_mb * 2**20)
        self.ann_search = dict(DEFAULT_ANN_SEARCH if ann_search is None else ann_search)
        self._db: Any = None
        self._async_db: Any = None
        self._session: Any = None
        self._tables: dict[str, Any] = {}
        self._async_tables: dict[str, Any] = {}
        self._specs: dict[str, dict[str, FieldSpec]] = {}
        self._lock = threading.RLock()  # opening a table may connect first

    # -- connection and tables -------------------------------------------------------------

    def _connect(self, connect: Any) -> Any:
        import lancedb

        if self._session is None:
            self._session = lancedb.Session()
        if "://" not in self.uri:
            Path(self.uri).mkdir(parents=True, exist_ok=True)
        return connect(
            self.uri,
            read_consistency_interval=timedelta(seconds=self.read_consistency_seconds),
            storage_options=self.storage_options,
            session=self._session,
        )

    @property
    def db(self) -> Any:
        """The sync connection: collections, writes and maintenance."""
        if self._db is None:
            import lancedb

            with self._lock:
                self._db = self._db or self._connect(lancedb.connect)
        return self._db

    def _table(self, name: str) -> Any:
        table = self._tables.get(name)
        if table is None:
            with self._lock:
                table = self._open(lambda: self.db.open_table(name), name)
                self._tables[name] = table
        return table

    def _async_table(self, name: str) -> Any:
        """The table on the async connection: searches and fetches."""
        table = self._async_tables.get(name)
        if table is None:
            import lancedb

            with self._lock:
                if self._async_db is None:
                    self._async_db = _run(self._connect(lancedb.connect_async))
                table = self._open(lambda: _run(self._async_db.open_table(name)), name)
                self._async_tables[name] = table
        return table

    def _open(self, open_table: Any, name: str) -> Any:
        try:
            return open_table()
        except (FileNotFoundError, ValueError) as exc:
            raise CollectionMissing(
                f"Collection {name!r} does not exist in {self.uri}; build it (semantic_index --rebuild)."
            ) from exc

    def _field_specs(self, name: str) -> dict[str, FieldSpec]:
        specs = self._specs.get(name)
        if specs is None:
            specs = {}
            for f in self._table(name).schema:
                if f.name.startswith("f_"):
                    many = pa.types.is_list(f.type)
                    arrow_type = f.type.value_type if many else f.type
                    kind = next(k for k, t in ARROW_TYPES.items() if t == arrow_type)
                    specs[f.name[2:]] = FieldSpec(f.name[2:], kind, many)  # type: ignore[arg-type]
            self._specs[name] = specs
        return specs

    def create_collection(self, name: str, dimension: int, fields: Sequence[FieldSpec]) -> None:
        if self.has_collection(name):
            stored = self._table(name).schema.field("vector").type.list_size
            if stored != dimension:
                raise ConfigurationError(
                    f"Collection {name!r} exists with dimension {stored}, not {dimension}; drop or rename it."
                )
            return
        from lancedb.index import FTS, BTree

        columns = [
            pa.field("id", pa.string(), nullable=False),
            pa.field("text", pa.string()),
            pa.field("content_hash", pa.string()),
            pa.field("text_hash", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
        ]
        for spec in fields:
            arrow_type = ARROW_TYPES[spec.type]
            columns.append(pa.field(column(spec.name), pa.list_(arrow_type) if spec.many else arrow_type))
        table = self.db.create_table(name, schema=pa.schema(columns))
        # the collection's analyser (LanceDB's defaults unless set_analyzer said otherwise), which terms mirrors
        table.create_index("text", config=FTS(**self.analyzer(name).fts_options()))
        table.create_index("id", config=BTree())  # fetches, deletes and upserts look rows up by id
        self._tables[name] = table

    def set_analyzer(self, name: str, analyzer: TextAnalyzer) -> bool:
        """Rebuild the collection's full-text index when it was built with other options (rows and
        vectors stay); a collection not created yet gets them at creation."""
        if not self.has_collection(name):
            self.remember_analyzer(name, analyzer)
            return False
        from lancedb.index import FTS

        table = self._table(name)
        wanted = analyzer.fts_options()
        built = next((i.index_details for i in table.list_indices() if i.index_type == "FTS"), None)
        if built is not None and _same_fts(built, wanted):
            self.remember_analyzer(name, analyzer)
            return False
        try:
            table.create_index("text", config=FTS(**wanted), replace=True)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ConfigurationError(
                f"LanceDB refuses the keyword options {analyzer.describe()!r} of {name!r}: {exc}"
            ) from exc
        self.remember_analyzer(name, analyzer)
        return True

    def drop_collection(self, name: str) -> None:
        self._tables.pop(name, None)
        self._async_tables.pop(name, None)
        self._specs.pop(name, None)
        self._hot.forget(name)
        if self.has_collection(name):
            self.db.drop_table(name)

    def has_collection(self, name: str) -> bool:
        return name in self.list_collections()

    def list_collections(self) -> list[str]:
        names: list[str] = []
        page_token = None
        while True:
            page = self.db.list_tables(page_token=page_token)
            names.extend(page.tables)
            page_token = page.page_token
            if not page_token:
                return names

    # -- writes --------------------------------------------------------------------------------

    def upsert(self, name: str, documents: Sequence[Document], vectors: np.ndarray) -> None:
        if not documents:
            return
        table = self._table(name)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dimension = table.schema.field("vector").type.list_size
        if vectors.shape != (len(documents), dimension):
            raise ValueError(f"Expected vectors of shape {(len(documents), dimension)}, got {vectors.shape}.")
        specs = self._field_specs(name)
        data: dict[str, Any] = {
            "id": [d.id for d in documents],
            "text": [d.text for d in documents],
            "content_hash": [d.content_hash for d in documents],
            "text_hash": [d.text_hash for d in documents],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dimension),
        }
        for field_name in specs:
            data[column(field_name)] = [d.fields.get(field_name) for d in documents]
        batch = pa.table(data, schema=table.schema)
        table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(batch)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        table = self._table(name)
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            table.delete(f"id IN ({', '.join(sql_literal(i) for i in chunk)})")

    def optimize(self, name: str) -> None:
        """Compact, fold new rows into the full-text and vector indexes, and build the vector index
        once the collection has ``ann_threshold`` rows."""
        table = self._table(name)
        table.optimize(cleanup_older_than=timedelta(minutes=10))
        threshold = self.ann_threshold
        if threshold is not None and not self.has_vector_index(name) and (rows := self.count(name)) >= threshold:
            import lancedb.index

            options = self.index_options(rows)
            config = getattr(lancedb.index, ANN_INDEX_TYPES[options.pop("index_type")])
            try:
                table.create_index("vector", config=config(distance_type="dot", **options))
            except TypeError as exc:
                raise ConfigurationError(f"Bad ann_index options {options}: {exc}") from exc

    def index_options(self, rows: int) -> dict[str, Any]:
        """The vector index (``index_type`` and its options) ``optimize`` builds for a collection of ``rows``."""
        if "index_type" in self.ann_index:
            return dict(self.ann_index)
        return {**(HNSW_INDEX if rows < self.ivf_threshold else IVF_INDEX), **self.ann_index}

    def version(self, name: str) -> str | None:
        """The Lance table version: every write (and optimize) commits a new one."""
        return str(_run(self._async_table(name).version()))

    def has_vector_index(self, name: str) -> bool:
        return any(index.columns == ["vector"] for index in self._table(name).list_indices())

    # -- reads ---------------------------------------------------------------------------------

    def fetch(self, name: str, ids: Sequence[str], with_vectors: bool = False) -> dict[str, StoredRecord]:
        table = self._async_table(name)
        columns = ["id", "content_hash", "text_hash"] + (["vector"] if with_vectors else [])
        records: dict[str, StoredRecord] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), ID_CHUNK):
            chunk = unique[start : start + ID_CHUNK]
            where = f"id IN ({', '.join(sql_literal(i) for i in chunk)})"
            rows = _run(table.query().where(where).select(columns).limit(len(chunk)).to_arrow())
            vectors = vector_matrix(rows.column("vector")) if with_vectors else None
            columns_as_lists = (rows.column(c).to_pylist() for c in ("id", "content_hash", "text_hash"))
            for i, (row_id, chash, thash) in enumerate(zip(*columns_as_lists)):
                vector = vectors[i].astype(np.float32, copy=True) if vectors is not None else None
                records[row_id] = StoredRecord(row_id, chash, thash, vector)
        return records

    def content_hashes(self, name: str) -> dict[str, str]:
        rows = self._table(name).search().select(["id", "content_hash"]).limit(None).to_arrow()
        return dict(zip(rows.column("id").to_pylist(), rows.column("content_hash").to_pylist()))

    def count(self, name: str) -> int:
        return int(self._table(name).count_rows())

    def all_vectors(self, name: str) -> tuple[list[str], np.ndarray]:
        """Ids and vectors in one scan of the ``id`` and ``vector`` columns (no index involved)."""
        table = self._async_table(name)
        rows = _run(table.query().select(["id", "vector"]).to_arrow())
        dimension = rows.schema.field("vector").type.list_size
        if rows.num_rows == 0:
            return [], np.zeros((0, dimension), dtype=np.float32)
        return rows.column("id").to_pylist(), vector_matrix(rows.column("vector"))

    def vector_search(
        self,
        name: str,
        vector: np.ndarray,
        limit: int,
        filters: Sequence[Filter] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[SearchHit]:
        table = self._async_table(name)
        vector = np.asarray(vector, dtype=np.float32)
        hot = self._hot.current(name)
        if hot is not None and not hot.indexed:
            hits = self._hot_nearest(name, hot, table, vector, limit, filters, exclude_ids)
            if hits is not None:
                return hits
        if hot is None or not hot.indexed:  # an index search reads no copy; an exact one does, next time
            self._refresh_hot(name)
        where = where_clause(filters, exclude_ids, self._field_specs(name))
        return _vector_hits(_run(self._vector_rows(table, vector, limit, where)))

    def _hot_nearest(
        self,
        name: str,
        hot: HotCopy,
        table: Any,
        vector: np.ndarray,
        limit: int,
        filters: Sequence[Filter],
        exclude_ids: Sequence[str],
    ) -> list[SearchHit] | None:
        """``vector_search`` of an unindexed collection on its hot copy (``HotCopy.nearest``): the filter's
        rows come from the pinned handle as row ids, the latest version is checked meanwhile; None when
        it is not the copy's."""
        where = where_clause(filters, (), self._field_specs(name))
        latest = _start(table.version())
        filtered = _start(self._filter_rows(hot.table, where)) if where else None
        try:
            rows = None
            if filtered is not None:
                rows = hot.rows_of(filtered.result()["_rowid"])
                if rows is None:
                    return None
            hits = hot.nearest(vector, limit, rows, frozenset(exclude_ids))
            if latest.result() != hot.version:
                self._refresh_hot(name)
                return None
            return hits
        finally:
            _cancel(latest, filtered)

    def keyword_search(
        self,
        name: str,
        query: str,
        limit: int,
        filters: Sequence[Filter] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[SearchHit]:
        where = where_clause(filters, exclude_ids, self._field_specs(name))
        # Not from the hot copy: for a page of hits, reading their texts cost less than checking the version
        # (profiled on the Home Depot titles; benchmarks/hot_copy.py measures hybrid only).
        return _keyword_hits(_run(self._keyword_rows(self._async_table(name), query, limit, where, ("text",))))

    def hybrid_candidates(
        self,
        name: str,
        vector: VectorSource,
        query: str,
        limit: int,
        filters: Sequence[Filter] = (),
        finish_keyword: KeywordFinish | None = None,
        version: str | None = None,
    ) -> tuple[list[SearchHit], list[SearchHit]]:
        """The full-text search starts first and runs while ``vector`` is computed (when it is a
        callable: the query's encoding), then the vector search. Both run on the collection's hot copy
        when it is of the latest version (``version`` when the caller read it, else checked beside the
        full-text search, see ``_hot_candidates``), else on the live table, where the
        full-text query reads its hits' texts and vectors. The keyword hits are built and finished
        (``finish_keyword``: the pipeline's coverage, Python work) while LanceDB runs the vector search."""
        where = where_clause(filters, (), self._field_specs(name))
        table = self._async_table(name)
        vector = functools.cache(vector) if callable(vector) else vector  # encoded once, whichever path runs
        hot = self._hot.current(name)
        if hot is not None:
            found = self._hot_candidates(hot, table, vector, query, limit, where, finish_keyword, version)
            if found is not None:
                return found
        self._refresh_hot(name)
        keyword_rows = _start(self._keyword_rows(table, query, limit, where, HIT_COLUMNS))
        semantic_rows = None
        try:
            query_vector = np.asarray(resolve_vector(vector), dtype=np.float32)
            semantic_rows = _start(self._vector_rows(table, query_vector, limit, where))
            keyword = keyword_rows.result()
            keyword_hits = _keyword_hits(keyword, vector_matrix(keyword.column("vector")) @ query_vector)
            if finish_keyword is not None:
                keyword_hits = finish_keyword(keyword_hits)
            return _vector_hits(semantic_rows.result()), keyword_hits
        finally:
            _cancel(keyword_rows, semantic_rows)

    def _hot_candidates(
        self,
        hot: HotCopy,
        table: Any,
        vector: VectorSource,
        query: str,
        limit: int,
        where: str | None,
        finish_keyword: KeywordFinish | None,
        version: str | None,
    ) -> tuple[list[SearchHit], list[SearchHit]] | None:
        """``hybrid_candidates`` on the hot copy's pinned handle: both searches return Lance row ids and
        scores only, and the hits' ids, texts and vectors come from memory (an unindexed collection's
        vector search is the copy's exact one, ``HotCopy.nearest``). None when the latest version
        (``version`` as the caller read it, else checked beside the full-text search) is not the copy's:
        a write came since the copy was read."""
        if version is not None and version != str(hot.version):
            return None
        latest = _start(table.version()) if version is None else None
        keyword_rows = _start(self._keyword_query(hot.table, query, limit, where).select(["_score"]).to_arrow())
        filtered = _start(self._filter_rows(hot.table, where)) if where and not hot.indexed else None
        semantic_rows = None
        try:
            query_vector = np.asarray(resolve_vector(vector), dtype=np.float32)
            if latest is not None and latest.result() != hot.version:
                return None
            if hot.indexed:
                semantic_rows = _start(self._vector_rows(hot.table, query_vector, limit, where, row_ids=True))
                semantic_hits = None
            else:  # exact, from memory, while LanceDB finishes the full-text search
                rows = None if filtered is None else hot.rows_of(filtered.result()["_rowid"])
                if filtered is not None and rows is None:
                    return None
                semantic_hits = hot.nearest(query_vector, limit, rows)
            keyword = keyword_rows.result()
            keyword_hits = hot.keyword_hits(keyword["_rowid"], keyword["_score"].to_pylist(), query_vector)
            if keyword_hits is None:
                return None
            if finish_keyword is not None:
                keyword_hits = finish_keyword(keyword_hits)
            if semantic_rows is not None:
                semantic = semantic_rows.result()
                semantic_hits = hot.vector_hits(semantic["_rowid"], semantic["_distance"].to_pylist())
            return None if semantic_hits is None else (semantic_hits, keyword_hits)
        finally:
            _cancel(latest, keyword_rows, filtered, semantic_rows)

    # -- hot copies ---------------------------------------------------------------------------

    def warm(self, name: str) -> bool:
        """Read collection ``name``'s hot copy now (a server may call it at start; searches otherwise make
        it in the background); True when a copy of the latest version is held."""
        self._hot.refresh(name, functools.partial(self._read_hot, name), wait=True)
        hot = self._hot.current(name)
        return hot is not None and hot.version == _run(self._async_table(name).version())

    def _refresh_hot(self, name: str) -> None:
        self._hot.refresh(name, functools.partial(self._read_hot, name))

    def _read_hot(self, name: str, max_bytes: int) -> HotCopy | None:
        self._async_table(name)  # connects first (and says when the collection is missing)
        return _run(self._hot_copy(name, max_bytes))

    async def _hot_copy(self, name: str, max_bytes: int) -> HotCopy | None:
        table = await self._async_db.open_table(name)
        version = await table.version()
        await table.checkout(version)  # pinned: no version check per query, the copy's data
        dimension = (await table.schema()).field("vector").type.list_size
        if await table.count_rows() * dimension * 4 > max_bytes:
            return None
        indexed = any(index.columns == ["vector"] for index in await table.list_indices())
        rows = await table.query().select(["id", "text", "vector"]).with_row_id().to_arrow()
        matrix = np.ascontiguousarray(vector_matrix(rows.column("vector")), dtype=np.float32)
        texts, ids = rows.column("text").to_pylist(), rows.column("id").to_pylist()
        return HotCopy.of(version, table, ids, texts, matrix, rows.column("_rowid"), indexed)

    @staticmethod
    async def _filter_rows(table: Any, where: str) -> pa.Table:
        """The ``_rowid`` of every row ``where`` keeps (an exact search on the hot copy ranks those)."""
        return await table.query().where(where).select([]).with_row_id().to_arrow()

    # The coroutines below take the opened async table: opening one inside the loop would deadlock.

    async def _vector_rows(
        self, table: Any, vector: np.ndarray, limit: int, where: str | None, row_ids: bool = False
    ) -> pa.Table:
        """id (or ``_rowid`` with ``row_ids``) and ``_distance`` of the nearest rows."""
        rows = await self._vector_query(table, vector, limit, where, exact=False, row_ids=row_ids)
        if where and rows.num_rows < limit:
            # An approximate index visits only some partitions; a selective filter may leave too few there.
            rows = await self._vector_query(table, vector, limit, where, exact=True, row_ids=row_ids)
        return rows

    def _vector_query(
        self, table: Any, vector: np.ndarray, limit: int, where: str | None, exact: bool, row_ids: bool
    ) -> Any:
        query = table.query().nearest_to(np.asarray(vector, dtype=np.float32)).distance_type("dot")
        if exact:
            query = query.bypass_vector_index()
        else:
            for option, value in self.ann_search.items():
                query = getattr(query, option)(max(value, limit) if option == "ef" else value)
        if where:
            query = query.where(where)  # a prefilter: applied before the limit
        if row_ids:
            return query.limit(limit).select(["_distance"]).with_row_id().to_arrow()
        return query.limit(limit).select(["id", "_distance"]).to_arrow()

    @staticmethod
    def _keyword_query(table: Any, query: str, limit: int, where: str | None, row_ids: bool = True) -> Any:
        """The full-text query of ``query``'s best ``limit`` rows (with their ``_rowid``)."""
        builder = table.query().nearest_to_text(query)
        if where:
            builder = builder.where(where)  # a prefilter: applied before the limit
        builder = builder.limit(limit)
        return builder.with_row_id() if row_ids else builder

    @classmethod
    async def _keyword_rows(
        cls, table: Any, query: str, limit: int, where: str | None, columns: tuple[str, ...]
    ) -> pa.Table:
        """Full-text matches: id, score and ``columns``, best first and equal scores by id: LanceDB returns
        ties in any order (one run in six of 200 dev queries ranked some differently from the run before),
        a page of results should not reshuffle on reload."""
        query_rows = cls._keyword_query(table, query, limit, where, row_ids=False)
        rows = await query_rows.select(["id", "_score", *columns]).to_arrow()
        return rows.sort_by([("_score", "descending"), ("id", "ascending")])


def _same_fts(built: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a full-text index's details (``list_indices``) match ``TextAnalyzer.fts_options``."""
    full = {"custom_stop_words": None, "ngram_min_length": 3, "ngram_max_length": 3, **wanted}
    renamed = {"ngram_min_length": "min_ngram_length", "ngram_max_length": "max_ngram_length"}
    for key, value in full.items():
        have = built.get(renamed.get(key, key))
        if key == "custom_stop_words":
            have, value = sorted(have or []), sorted(value or [])
        if have != value:
            return False
    return True


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on LanceDB's background event loop (the one its sync API uses) and wait."""
    from lancedb.background_loop import LOOP

    return LOOP.run(coroutine)


def _start(coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
    """Start a coroutine on LanceDB's background event loop without waiting for it."""
    from lancedb.background_loop import LOOP

    return asyncio.run_coroutine_threadsafe(coroutine, LOOP.loop)


def _cancel(*futures: concurrent.futures.Future | None) -> None:
    """Stop searches whose results are no longer wanted (a no-op for those done)."""
    for future in futures:
        if future is not None:
            future.cancel()


def _vector_hits(rows: pa.Table) -> list[SearchHit]:
    distances = rows.column("_distance").to_pylist()
    return semantic_hits(rows.column("id").to_pylist(), [1.0 - distance for distance in distances])


def _keyword_hits(rows: pa.Table, similarities: np.ndarray | None = None) -> list[SearchHit]:
    ids, scores, texts = (rows.column(c).to_pylist() for c in ("id", "_score", "text"))
    return keyword_hits(ids, scores, texts, similarities)
