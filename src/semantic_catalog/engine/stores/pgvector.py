"""PostgreSQL with pgvector: the vector store for a project that already runs PostgreSQL.

Each collection is one table with columns ``id`` (primary key), ``text``, ``content_hash``,
``text_hash``, ``vector`` (``vector(dimension)``), one ``f_<name>`` column per filter field (an array
for a ``many`` field) and ``tsv``, a generated ``tsvector`` of ``text`` with PostgreSQL's 'english'
configuration. Indexes: HNSW on ``vector`` (inner product, which is the cosine on the normalised vectors
the encoders make), GIN on ``tsv``, and one per filter field (B-tree, or GIN for arrays).

The HNSW index is built by the first ``optimize`` after the collection reaches ``ann_threshold`` rows
(default 50,000, as LanceDB's), in one pass over the table; until then vector search is exact. Built
with the table instead, every insert of a first load would update the graph row by row: on the
54,667 Home Depot titles that loaded 100 rows/s against 2,389 without the index
(benchmarks/store_compare.py). Rows written after the build are added to the index by their writes.

A small registry table, ``semantic_catalog_collections``, maps each collection to its table and keeps
its dimension, its filter fields and its version: every write bumps the version from one sequence, in
the write's own transaction, so ``version`` changes on every write and never repeats (the hit cache).

Filters are SQL with bound parameters and identifiers quoted by ``psycopg.sql``. Filtered vector search
uses pgvector's iterative index scan (``hnsw.iterative_scan``, ``relaxed_order`` by default; hits are
put back in exact order here), so the index keeps scanning until ``limit`` rows pass the filter; a
filtered query that still returns fewer than ``limit`` rows (``hnsw.max_scan_tuples`` reached) is re-run
exactly, as the LanceDB store does, so filters never shrink results.

Keyword search matches any of the query's words (like LanceDB's full-text search: the engine adds the
parts of glued sizes to a query, and measures how much of it each hit covers) and ranks with BM25
(k1 1.2, b 0.75) computed in SQL over the matching rows (see ``KEYWORD_SEARCH``). It ranked with
``ts_rank_cd`` before, which has no inverse document frequency: on the Home Depot dev queries keyword
nDCG@10 was 0.248 with it and is 0.378 with BM25 (LanceDB's: 0.366), and ranking every match with it
made a query of common words slow (benchmarks/store_compare.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from semantic_catalog.engine.documents import Document, SearchHit, StoredRecord
from semantic_catalog.engine.errors import CollectionMissing, ConfigurationError
from semantic_catalog.engine.filters import FieldSpec, Filter
from semantic_catalog.engine.stores.analyzer import TextAnalyzer
from semantic_catalog.engine.stores.base import (
    KeywordFinish,
    VectorSource,
    VectorStore,
    _retrievers,
    keyword_hits,
    resolve_vector,
    semantic_hits,
)
from semantic_catalog.engine.stores.terms import MAX_TOKEN_LENGTH, _stem

try:
    import psycopg
    from psycopg import sql
except ImportError as exc:  # load_backend turns this into a ConfigurationError naming the extra
    raise ImportError(
        f"PgVectorStore needs psycopg 3 and pgvector: pip install 'django-semantic-catalog[postgres]' ({exc})"
    ) from exc

REGISTRY = "semantic_catalog_collections"
VERSIONS = "semantic_catalog_versions"
PG_TYPES = {"str": "text", "int": "bigint", "float": "double precision", "bool": "boolean"}
ITERATIVE_SCANS = ("relaxed_order", "strict_order", "off")
HNSW_MAX_DIMENSION = 2000  # pgvector's limit for an HNSW index on `vector`; larger ones are searched exactly
DEFAULT_HNSW = {"m": 16, "ef_construction": 64}
DEFAULT_EF_SEARCH = 150  # as the LanceDB store's HNSW search list
DEFAULT_ANN_THRESHOLD = 50_000  # as the LanceDB store's: rows at which optimize builds the HNSW index
DDL_LOCK = 0x5EA7C47A  # pg_advisory_xact_lock key serialising this store's DDL across processes
MAX_IDENTIFIER = 63  # PostgreSQL's identifier length, in bytes
ALL_VECTORS_BLOCK = 10_000  # rows per fetch when all_vectors streams a collection

# PostgreSQL's English stop words (share/tsearch_data/english.stop, Snowball's list), which its
# 'english' configuration drops: the words ``terms`` leaves out.
_STOP_WORDS_TEXT = """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
    hers herself it its itself they them their theirs themselves what which who whom this that these those
    am is are was were be been being have has had having do does did doing a an the and but if or because
    as until while of at by for with about against between into through during before after above below
    to from up down in out on off over under again further then once here there when where why how all
    any both each few more most other some such no nor not only own same so than too very s t can will
    just don should now"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD = re.compile(r"[^\W_]+")
logger = logging.getLogger("semantic_catalog")
_warned_analyzers: set[str] = set()  # collections already warned about (once per process)

# The query's lexemes ('english'), OR-ed into one tsquery. Built from PostgreSQL's own analysis of the
# text (bound as a parameter) and quoted as tsquery input wants, so no user text is ever parsed as
# tsquery syntax. NULL (no row matches) when the query has only stop words.
TSQUERY = """(SELECT string_agg('''' || replace(replace(l, '\\', '\\\\'), '''', '''''') || '''', ' | ')
      FROM unnest(tsvector_to_array(to_tsvector('english', %s))) AS l)::tsquery"""

# The query's distinct lexemes, each with a one-lexeme tsquery quoted the same way.
TERMS = """SELECT l AS lexeme, ('''' || replace(replace(l, '\\', '\\\\'), '''', '''''') || '''')::tsquery AS q
      FROM unnest(tsvector_to_array(to_tsvector('english', %s))) AS l"""
BM25_K1, BM25_B = 1.2, 0.75  # BM25's usual constants (LanceDB's full-text search uses them too)

# Keyword search ranked by BM25 over the rows that match any query word, in one pass over them: a word's
# inverse document frequency comes from those rows (every row holding the word matches; with filters, the
# rows they keep) against the table's row estimate; a word counts once per row (titles rarely repeat
# one); the length norm uses the matched rows' mean length. Text (and vector) are read for the top rows only.
KEYWORD_SEARCH = """WITH terms AS MATERIALIZED ({terms}),
  matched AS MATERIALIZED (
    SELECT t.id, t.tsv, length(t.tsv) AS len FROM {table} AS t
    WHERE t.tsv @@ (SELECT string_agg(q::text, ' | ')::tsquery FROM terms) {filters}),
  pairs AS MATERIALIZED (SELECT m.id, m.len, terms.lexeme FROM matched AS m JOIN terms ON m.tsv @@ terms.q),
  stats AS (SELECT greatest((SELECT reltuples FROM pg_class WHERE oid = %s::regclass),
                            (SELECT count(*) FROM matched), 1)::float8 AS n,
                   (SELECT avg(len) FROM matched)::float8 AS avgdl),
  weights AS (SELECT p.lexeme, ln(1 + (s.n - count(*) + 0.5) / (count(*) + 0.5)) AS idf
              FROM pairs AS p, stats AS s GROUP BY p.lexeme, s.n),
  scored AS (SELECT p.id, sum(w.idf) * ({k1} + 1) / (1 + {k1} * (1 - {b} + {b} * p.len / s.avgdl)) AS score
             FROM pairs AS p JOIN weights AS w USING (lexeme), stats AS s GROUP BY p.id, p.len, s.avgdl
             ORDER BY score DESC, p.id LIMIT %s)
SELECT t.id, s.score, t.text{vector} FROM scored AS s JOIN {table} AS t USING (id) ORDER BY s.score DESC, t.id"""


def column(field_name: str) -> str:
    """Table column of a filter field; the prefix keeps user names away from the fixed columns."""
    return f"f_{field_name}"


def table_name(name: str) -> str:
    """The table of a collection: its name, or a shortened name with a hash when PostgreSQL would cut it."""
    if len(name.encode()) <= MAX_IDENTIFIER and name != REGISTRY:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return name.encode()[:48].decode("utf-8", "ignore") + "_" + digest


def index_key(schema: str, table: str) -> str:
    """The stem of a collection's index names (short and unique whatever the table's name)."""
    return hashlib.sha1(f"{schema}.{table}".encode()).hexdigest()[:16]


def _clean(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL characters: drop them (from strings and lists of strings)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _to_numpy(value: Any) -> np.ndarray:
    """A vector as pgvector's loader gives it (a ``Vector``, or an array in older releases)."""
    array = value.to_numpy() if hasattr(value, "to_numpy") else value
    return np.asarray(array, dtype=np.float32)


class _Collection:
    """What the registry knows of a collection."""

    def __init__(self, table: str, dimension: int, fields: list[dict[str, Any]], schema: str) -> None:
        self.table = table
        self.dimension = dimension
        self.specs = {f["name"]: FieldSpec(f["name"], f["type"], f["many"]) for f in fields}
        self.ident = sql.Identifier(schema, table)


class PgVectorStore(VectorStore):
    """Options: ``dsn`` (a libpq connection string or URI, required), ``schema`` (where the tables go,
    default ``public``; created when missing), ``hnsw`` (the index's build options, default
    ``{"m": 16, "ef_construction": 64}``; ``None`` = no vector index, always exact), ``ann_threshold``
    (rows at which ``optimize`` builds that index, default 50,000; ``0`` = build it with the table and
    update it on every insert from the first row; ``None`` = never), ``ef_search``
    (the HNSW search list, default 150, raised to the limit when larger, at most 1000),
    ``iterative_scan`` (``relaxed_order`` default, ``strict_order`` or ``off``: how a filtered query
    keeps scanning the index until ``limit`` rows pass), ``max_scan_tuples`` (pgvector's cap on that
    scan; ``None`` = its default, 20000), ``connect_timeout`` (seconds, default 10) and ``max_idle``
    (connections kept open for reuse, default 8).
    """

    def __init__(
        self,
        dsn: str,
        schema: str = "public",
        hnsw: dict[str, int] | None = DEFAULT_HNSW,
        ann_threshold: int | None = DEFAULT_ANN_THRESHOLD,
        ef_search: int = DEFAULT_EF_SEARCH,
        iterative_scan: str = "relaxed_order",
        max_scan_tuples: int | None = None,
        connect_timeout: float = 10,
        max_idle: int = 8,
    ) -> None:
        if not dsn:
            raise ConfigurationError("PgVectorStore needs a 'dsn', e.g. 'postgresql://user:password@host/db'.")
        if iterative_scan not in ITERATIVE_SCANS:
            raise ConfigurationError(f"iterative_scan must be one of {', '.join(ITERATIVE_SCANS)}.")
        if not isinstance(ef_search, int) or not 1 <= ef_search <= 1000:
            raise ConfigurationError(f"ef_search must be a whole number from 1 to 1000, got {ef_search!r}.")
        unknown = set(hnsw or {}) - {"m", "ef_construction"}
        if unknown:
            raise ConfigurationError(f"Unknown hnsw options {sorted(unknown)}; use m, ef_construction.")
        if ann_threshold is not None and (
            isinstance(ann_threshold, bool) or not isinstance(ann_threshold, int) or ann_threshold < 0
        ):
            raise ConfigurationError(
                f"ann_threshold must be a whole number of rows (0 or more) or None, got {ann_threshold!r}."
            )
        if max_scan_tuples is not None and (not isinstance(max_scan_tuples, int) or max_scan_tuples < 1):
            raise ConfigurationError(
                f"max_scan_tuples must be a positive whole number or None, got {max_scan_tuples!r}."
            )
        self.dsn = dsn
        self.schema = schema
        self.hnsw = None if hnsw is None else {**DEFAULT_HNSW, **hnsw}
        self.ann_threshold = ann_threshold
        self.ef_search = ef_search
        self.iterative_scan = iterative_scan
        self.max_scan_tuples = max_scan_tuples
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: list[Any] = []
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._ready = False
        self._collections: dict[str, _Collection] = {}
        self._registry = sql.Identifier(schema, REGISTRY)
        self._versions = sql.Identifier(schema, VERSIONS)
        self._sequence = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, VERSIONS))  # for nextval

    # -- connections -------------------------------------------------------------------------------

    def where(self) -> str:
        """The server and database, without credentials (for messages)."""
        try:
            info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError:
            return "PostgreSQL"
        return f"PostgreSQL {info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    def _open(self) -> Any:
        from pgvector.psycopg import register_vector

        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=int(self.connect_timeout))
        try:
            try:
                register_vector(conn)
            except psycopg.ProgrammingError:  # the extension is not created in this database yet
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except psycopg.Error as exc:
                    raise ConfigurationError(
                        f"{self.where()} has no pgvector extension and this user cannot create it "
                        f"(run 'CREATE EXTENSION vector' as a superuser): {exc}"
                    ) from exc
                register_vector(conn)
            settings = [("hnsw.ef_search", str(self.ef_search))]
            if self.iterative_scan != "off":
                settings.append(("hnsw.iterative_scan", self.iterative_scan))
            if self.max_scan_tuples is not None:
                settings.append(("hnsw.max_scan_tuples", str(self.max_scan_tuples)))
            for setting, value in settings:
                conn.execute("SELECT set_config(%s, %s, false)", (setting, value))
            if not self._ready:
                self._bootstrap(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _bootstrap(self, conn: Any) -> None:
        """The schema, the registry table and the version sequence, once per process."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, table_name text NOT NULL UNIQUE, "
                    "dimension integer NOT NULL, fields jsonb NOT NULL, version bigint NOT NULL)"
                ).format(self._registry)
            )
            conn.execute(sql.SQL("CREATE SEQUENCE IF NOT EXISTS {}").format(self._versions))
        self._ready = True

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A connection of this process (autocommit; writes open their own transaction)."""
        conn = None
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connections are not ours to use or close
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                conn = self._idle.pop()
        if conn is None or conn.closed:
            conn = self._open()
        try:
            yield conn
        finally:
            healthy = not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            with self._lock:
                if healthy and len(self._idle) < self.max_idle and self._pid == os.getpid():
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def close(self) -> None:
        """Close the idle connections (those in use close when they are given back)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _collection(self, name: str, conn: Any) -> _Collection:
        collection = self._collections.get(name)
        if collection is None:
            row = conn.execute(
                sql.SQL("SELECT table_name, dimension, fields FROM {} WHERE name = %s").format(self._registry), (name,)
            ).fetchone()
            if row is None:
                raise CollectionMissing(
                    f"Collection {name!r} does not exist in {self.where()}; build it (semantic_index --rebuild)."
                )
            collection = _Collection(row[0], row[1], row[2], self.schema)
            self._collections[name] = collection
        return collection

    @contextmanager
    def _using(self, name: str) -> Iterator[tuple[Any, _Collection]]:
        """A connection and the collection; a table dropped by another process is CollectionMissing."""
        with self._connection() as conn:
            try:
                yield conn, self._collection(name, conn)
            except psycopg.errors.UndefinedTable as exc:
                self._collections.pop(name, None)
                raise CollectionMissing(
                    f"Collection {name!r} does not exist in {self.where()}; build it (semantic_index --rebuild)."
                ) from exc

    def _bump(self, conn: Any, name: str) -> None:
        """Give the collection a new version, in the write's transaction."""
        query = sql.SQL("UPDATE {} SET version = nextval(%s) WHERE name = %s").format(self._registry)
        conn.execute(query, (self._sequence, name))

    # -- collections ---------------------------------------------------------------------------------

    def create_collection(self, name: str, dimension: int, fields: Sequence[FieldSpec]) -> None:
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
            self._collections.pop(name, None)
            row = conn.execute(
                sql.SQL("SELECT dimension FROM {} WHERE name = %s").format(self._registry), (name,)
            ).fetchone()
            if row is not None:
                if row[0] != dimension:
                    raise ConfigurationError(
                        f"Collection {name!r} exists with dimension {row[0]}, not {dimension}; drop or rename it."
                    )
                return
            table = table_name(name)
            ident = sql.Identifier(self.schema, table)
            key = index_key(self.schema, table)
            columns = [
                sql.SQL("id text PRIMARY KEY"),
                sql.SQL("text text NOT NULL DEFAULT ''"),
                sql.SQL("content_hash text NOT NULL"),
                sql.SQL("text_hash text NOT NULL"),
                sql.SQL("vector vector({}) NOT NULL").format(sql.Literal(int(dimension))),
            ]
            for spec in fields:
                pg_type = PG_TYPES[spec.type] + ("[]" if spec.many else "")
                columns.append(sql.SQL("{} {}").format(sql.Identifier(column(spec.name)), sql.SQL(pg_type)))
            columns.append(sql.SQL("tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED"))
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))  # left by a registry row deleted by hand
            conn.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(", ").join(columns)))
            if self.ann_threshold == 0:
                self._create_hnsw(conn, table, dimension)
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} USING gin (tsv)").format(sql.Identifier(f"sc_{key}_tsv"), ident)
            )
            for i, spec in enumerate(fields):
                conn.execute(
                    sql.SQL("CREATE INDEX {} ON {} USING {} ({})").format(
                        sql.Identifier(f"sc_{key}_f{i}"),
                        ident,
                        sql.SQL("gin" if spec.many else "btree"),
                        sql.Identifier(column(spec.name)),
                    )
                )
            specs = [{"name": s.name, "type": s.type, "many": s.many} for s in fields]
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (name, table_name, dimension, fields, version) VALUES (%s, %s, %s, %s, nextval(%s))"
                ).format(self._registry),
                (name, table, int(dimension), json.dumps(specs), self._sequence),
            )

    def _create_hnsw(self, conn: Any, table: str, dimension: int) -> None:
        """Build the HNSW index of a table when the store uses one and it is missing."""
        if self.hnsw is None or dimension > HNSW_MAX_DIMENSION:
            return
        options = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.SQL(option), sql.Literal(int(value)))
            for option, value in sorted(self.hnsw.items())
        )
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (vector vector_ip_ops) WITH ({})").format(
                sql.Identifier(f"sc_{index_key(self.schema, table)}_hnsw"), sql.Identifier(self.schema, table), options
            )
        )

    def drop_collection(self, name: str) -> None:
        self._collections.pop(name, None)
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
            row = conn.execute(
                sql.SQL("DELETE FROM {} WHERE name = %s RETURNING table_name").format(self._registry), (name,)
            ).fetchone()
            table = row[0] if row else table_name(name)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.schema, table)))

    def has_collection(self, name: str) -> bool:
        with self._connection() as conn:
            query = sql.SQL("SELECT 1 FROM {} WHERE name = %s").format(self._registry)
            return conn.execute(query, (name,)).fetchone() is not None

    def list_collections(self) -> list[str]:
        with self._connection() as conn:
            query = sql.SQL("SELECT name FROM {} ORDER BY name").format(self._registry)
            return [row[0] for row in conn.execute(query)]

    def has_vector_index(self, name: str) -> bool:
        with self._using(name) as (conn, collection):
            return self._has_hnsw(conn, collection)

    def _has_hnsw(self, conn: Any, collection: _Collection) -> bool:
        row = conn.execute(
            "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND tablename = %s AND indexdef LIKE %s",
            (self.schema, collection.table, "% USING hnsw %"),
        ).fetchone()
        return row is not None

    # -- writes --------------------------------------------------------------------------------------

    def upsert(self, name: str, documents: Sequence[Document], vectors: np.ndarray) -> None:
        if not documents:
            return
        with self._using(name) as (conn, collection):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            if vectors.shape != (len(documents), collection.dimension):
                raise ValueError(
                    f"Expected vectors of shape {(len(documents), collection.dimension)}, got {vectors.shape}."
                )
            fields = list(collection.specs)
            names = ["id", "text", "content_hash", "text_hash", "vector", *(column(f) for f in fields)]
            statement = sql.SQL(
                "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET {updates}"
            ).format(
                table=collection.ident,
                columns=sql.SQL(", ").join(map(sql.Identifier, names)),
                values=sql.SQL(", ").join(sql.Placeholder() * len(names)),
                updates=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in names[1:]),
            )
            rows = [
                (
                    d.id,
                    _clean(d.text),
                    d.content_hash,
                    d.text_hash,
                    vectors[i],
                    *(_clean(d.fields.get(f)) for f in fields),
                )
                for i, d in enumerate(documents)
            ]
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(statement, rows)
                self._bump(conn, name)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        with self._using(name) as (conn, collection), conn.transaction():
            query = sql.SQL("DELETE FROM {} WHERE id = ANY(%s::text[])").format(collection.ident)
            conn.execute(query, (list(ids),))
            self._bump(conn, name)

    def optimize(self, name: str) -> None:
        """VACUUM and ANALYZE the table (reclaims dead rows, refreshes the planner's statistics), then
        build the HNSW index in one pass once the table has ``ann_threshold`` rows (writes keep an
        existing index current). The build blocks writes to this table while it runs, not reads; a lock
        of this table's own keeps two processes from building it at once."""
        with self._using(name) as (conn, collection):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(collection.ident))
            if self.ann_threshold is None or self.hnsw is None or collection.dimension > HNSW_MAX_DIMENSION:
                return
            if self._has_hnsw(conn, collection):
                return
            if self.ann_threshold and self._count(conn, collection) < self.ann_threshold:
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (DDL_LOCK, collection.table))
                self._create_hnsw(conn, collection.table, collection.dimension)

    def version(self, name: str) -> str | None:
        """A number from one sequence, taken by every write in its own transaction."""
        with self._connection() as conn:
            query = sql.SQL("SELECT version FROM {} WHERE name = %s").format(self._registry)
            row = conn.execute(query, (name,)).fetchone()
        if row is None:
            raise CollectionMissing(
                f"Collection {name!r} does not exist in {self.where()}; build it (semantic_index --rebuild)."
            )
        return str(row[0])

    # -- reads ---------------------------------------------------------------------------------------

    def fetch(self, name: str, ids: Sequence[str], with_vectors: bool = False) -> dict[str, StoredRecord]:
        if not ids:
            return {}
        with self._using(name) as (conn, collection), conn.cursor(binary=True) as cursor:
            columns = sql.SQL("id, content_hash, text_hash" + (", vector" if with_vectors else ""))
            query = sql.SQL("SELECT {} FROM {} WHERE id = ANY(%s::text[])").format(columns, collection.ident)
            rows = cursor.execute(query, (list(dict.fromkeys(ids)),)).fetchall()
        return {
            row[0]: StoredRecord(row[0], row[1], row[2], _to_numpy(row[3]) if with_vectors else None) for row in rows
        }

    def content_hashes(self, name: str) -> dict[str, str]:
        with self._using(name) as (conn, collection):
            return dict(conn.execute(sql.SQL("SELECT id, content_hash FROM {}").format(collection.ident)).fetchall())

    def count(self, name: str) -> int:
        with self._using(name) as (conn, collection):
            return self._count(conn, collection)

    def all_vectors(self, name: str) -> tuple[list[str], np.ndarray]:
        """Ids and vectors in one scan, streamed through a server-side cursor in blocks (no million
        vector objects held at once)."""
        ids: list[str] = []
        blocks: list[np.ndarray] = []
        with self._using(name) as (conn, collection), conn.transaction():  # a named cursor lives in one
            query = sql.SQL("SELECT id, vector FROM {}").format(collection.ident)
            with conn.cursor(name="semantic_catalog_all_vectors", binary=True) as cursor:
                cursor.execute(query)
                while rows := cursor.fetchmany(ALL_VECTORS_BLOCK):
                    ids.extend(row[0] for row in rows)
                    blocks.append(np.stack([_to_numpy(row[1]) for row in rows]))
        if not blocks:
            return [], np.zeros((0, collection.dimension), dtype=np.float32)
        return ids, np.concatenate(blocks)

    @staticmethod
    def _count(conn: Any, collection: _Collection) -> int:
        return int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(collection.ident)).fetchone()[0])

    def vector_search(
        self,
        name: str,
        vector: np.ndarray,
        limit: int,
        filters: Sequence[Filter] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[SearchHit]:
        with self._using(name) as (conn, collection):
            where, params = self._where(collection, filters, exclude_ids)
            return self._vector_hits(conn, collection, vector, limit, where, params)

    def keyword_search(
        self,
        name: str,
        query: str,
        limit: int,
        filters: Sequence[Filter] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[SearchHit]:
        with self._using(name) as (conn, collection):
            where, params = self._where(collection, filters, exclude_ids)
            rows = self._keyword_rows(conn, collection, query, limit, where, params, vectors=False)
        return _keyword_hits(rows)

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
        """The full-text query starts first, on a connection of its own, while ``vector`` is computed
        (when it is a callable: the query's encoding); it reads the hits' vectors too, so fusion needs no
        second lookup. ``version`` is not needed: every query reads the latest rows."""

        def keyword_rows() -> list[tuple]:
            with self._using(name) as (conn, collection):
                where, params = self._where(collection, filters, ())
                return self._keyword_rows(conn, collection, query, limit, where, params, vectors=True)

        pending = _retrievers.submit(keyword_rows)
        try:
            vector = resolve_vector(vector)
            semantic = self.vector_search(name, vector, limit, filters)
            rows = pending.result()
        except BaseException:
            pending.cancel()
            raise
        query_vector = np.asarray(vector, dtype=np.float32)
        similarities = [float(np.dot(_to_numpy(row[3]), query_vector)) for row in rows]
        keyword = _keyword_hits(rows, similarities)
        return semantic, finish_keyword(keyword) if finish_keyword else keyword

    # -- SQL -------------------------------------------------------------------------------------------

    @staticmethod
    def _where(
        collection: _Collection, filters: Sequence[Filter], exclude_ids: Sequence[str]
    ) -> tuple[sql.Composable | None, list[Any]]:
        """Validated filters as one SQL predicate with bound parameters (None when nothing filters)."""
        parts: list[sql.Composable] = []
        params: list[Any] = []
        for f in filters:
            spec = collection.specs.get(f.field, FieldSpec(f.field))
            col = sql.Identifier(column(f.field))
            pg_type = PG_TYPES[spec.type]
            if f.op in ("eq", "in"):
                values = list(f.value) if f.op == "in" else [f.value]
                if spec.many:  # the row's list shares a value with the filter's
                    parts.append(sql.SQL("{} && %s::{}[]").format(col, sql.SQL(pg_type)))
                else:
                    parts.append(sql.SQL("{} = ANY(%s::{}[])").format(col, sql.SQL(pg_type)))
                params.append(_clean(values))
            else:
                symbol = {"gte": ">=", "lte": "<=", "gt": ">", "lt": "<"}[f.op]
                parts.append(sql.SQL("{} {} %s::{}").format(col, sql.SQL(symbol), sql.SQL(pg_type)))
                params.append(f.value)
        if exclude_ids:
            parts.append(sql.SQL("NOT (id = ANY(%s::text[]))"))
            params.append(list(exclude_ids))
        if not parts:
            return None, params
        return sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in parts), params

    def _vector_hits(
        self,
        conn: Any,
        collection: _Collection,
        vector: np.ndarray,
        limit: int,
        where: sql.Composable | None,
        params: list[Any],
    ) -> list[SearchHit]:
        query = sql.SQL("SELECT id, (vector <#> %s) AS distance FROM {} {} ORDER BY vector <#> %s LIMIT %s").format(
            collection.ident, sql.SQL("WHERE {}").format(where) if where is not None else sql.SQL("")
        )
        vector = np.asarray(vector, dtype=np.float32)
        arguments = [vector, *params, vector, int(limit)]
        rows = self._run_search(conn, query, arguments, limit, exact=False)
        if where is not None and len(rows) < limit:
            # the index scan stopped (hnsw.max_scan_tuples) before enough rows passed the filter
            rows = self._run_search(conn, query, arguments, limit, exact=True)
        rows.sort(key=lambda row: row[1])  # relaxed_order may return them slightly out of order
        return semantic_hits([row[0] for row in rows], [-float(row[1]) for row in rows])

    def _run_search(self, conn: Any, query: sql.Composable, arguments: list[Any], limit: int, exact: bool) -> list:
        with conn.transaction(), conn.cursor(binary=True) as cursor:
            if exact:
                cursor.execute("SELECT set_config('enable_indexscan', 'off', true)")
            elif limit > self.ef_search:
                cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(min(limit, 1000)),))
            return cursor.execute(query, arguments).fetchall()

    @staticmethod
    def _keyword_rows(
        conn: Any,
        collection: _Collection,
        text: str,
        limit: int,
        where: sql.Composable | None,
        params: list[Any],
        vectors: bool,
    ) -> list[tuple]:
        query = sql.SQL(KEYWORD_SEARCH).format(
            terms=sql.SQL(TERMS),
            vector=sql.SQL(", t.vector" if vectors else ""),
            table=collection.ident,
            filters=sql.SQL("AND {}").format(where) if where is not None else sql.SQL(""),
            k1=sql.Literal(BM25_K1),
            b=sql.Literal(BM25_B),
        )
        relation = collection.ident.as_string(conn)  # '"schema"."table"', for the row estimate
        with conn.cursor(binary=True) as cursor:
            return cursor.execute(query, [_clean(text), *params, relation, int(limit)]).fetchall()

    # -- analysis ----------------------------------------------------------------------------------------

    def set_analyzer(self, name: str, analyzer: TextAnalyzer) -> bool:
        """PostgreSQL's 'english' text search configuration serves every collection here: a language
        other than English is only honoured by LanceDB (README, "Catalogs in other languages")."""
        if not analyzer.is_default and name not in _warned_analyzers:
            _warned_analyzers.add(name)
            logger.warning(
                "%s: keyword search on pgvector uses PostgreSQL's 'english' configuration, not %s",
                name,
                analyzer.describe(),
            )
        self.remember_analyzer(name, analyzer)  # asked once per process, not on every search
        return False

    def terms(self, text: str, name: str | None = None) -> set[str]:
        """The default analysis (split on what is not a letter or digit, lower-cased, accents folded,
        Snowball English stems) with PostgreSQL's English stop words, which its full-text search ignores
        ("up", "off", "over", "all", ...; LanceDB's list has 33 words, PostgreSQL's 127).

        PostgreSQL's parser differs in other ways (it keeps "XK-900" as "xk" and "-900", and "1/2in" as
        one token, and does not fold accents), but coverage applies this one analysis to the query and
        to the hit's text alike, so those differences cancel out; only which query words count does not,
        and that is the stop words."""
        lowered = text.lower()
        if not lowered.isascii():
            lowered = unicodedata.normalize("NFKD", lowered).encode("ascii", "ignore").decode("ascii")
        return {
            _stem(word) for word in _WORD.findall(lowered) if word not in STOP_WORDS and len(word) <= MAX_TOKEN_LENGTH
        }


def _keyword_hits(rows: list[tuple], similarities: list[float] | None = None) -> list[SearchHit]:
    """Full-text rows (id, score, text) as hits."""
    return keyword_hits([row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows], similarities)
