"""The warehouse: order state, customer ids, the published customer table and sync state.

One code path serves the embedded SQLite default and PostgreSQL; every difference between the
two (placeholders, bulk load, locking, DDL types) lives in :class:`Dialect` below.

Tables (timestamps are epoch seconds UTC, booleans 0/1, money integer minor units):

``order_state``    the latest version of every order, keyed by (source, domain, order_id)
``source_customers`` the latest profile of every source customer (Different Breed), by cust_id
``dirty_emails``   emails whose orders changed since the last publish (the publish work list)
``sync_state``     one watermark per source x domain: everything changed before it is loaded
``customer_ids``   the stable id of every (feed, email) ever seen; rows are never deleted
``customers``      the published feed rows (consenting customers only), with ``pos``
``feed_blocks``    per feed and block of 256 ids: rows, orders and money in it, rows before it
``feed_meta``      per feed: total rows, config fingerprint, when and by which run published

``pos`` makes every feed page cost the same: ``pos = block * 256 + rank within block`` where
``block = id // 256``. A page starts at the ``pos`` found through ``feed_blocks`` (one indexed
lookup) and is read with ``pos >= start ORDER BY pos LIMIT n`` (one index range scan), with no
OFFSET. A publish renumbers only the blocks it touched and the running counts of the blocks
after them (a few thousand small rows for millions of customers).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence
from urllib.parse import quote, unquote, urlparse

import pyarrow as pa
import pyarrow.csv as pacsv

from include.config import PROJECT_ROOT
from include.schema import ORDER_COLUMNS, PROFILE_COLUMNS

BLOCK = 256
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "data" / "warehouse.db"
CONN_ENV = "AIRFLOW_CONN_CUSTOMER_FEED_DB"

CUSTOMER_COLUMNS = [
    "feed", "id", "email", "first_name", "last_name", "orders_count", "total_spent_minor",
    "currency", "phone", "registered_at", "gender", "pos",
]

_COLUMN_TYPES = {
    "created_at": "BIGINT", "changed_at": "BIGINT", "registered_at": "BIGINT", "successful": "SMALLINT",
    "total_minor": "BIGINT", "marketing_opt_in": "SMALLINT",
}


# --------------------------------------------------------------------------- connection URLs


def url_from_connection(conn) -> str:
    """An Airflow Connection (or anything with its attributes) -> a warehouse URL."""
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    if conn_type in ("postgres", "postgresql"):
        auth = quote(conn.login or "", safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        return f"postgresql://{auth}{'@' if auth else ''}{conn.host or 'localhost'}:{conn.port or 5432}/{conn.schema or ''}"
    raise ValueError(f"customer_feed_db: unsupported connection type {conn.conn_type!r} (use sqlite or postgres)")


def url_from_env(environ=os.environ) -> str:
    """The warehouse URL for processes without Airflow (the feed service, benchmarks).

    ``CUSTOMER_FEED_DB_URL`` wins; otherwise ``AIRFLOW_CONN_CUSTOMER_FEED_DB`` in Airflow's JSON or
    URI form; otherwise the embedded SQLite file under ``data/``.
    """
    if environ.get("CUSTOMER_FEED_DB_URL"):
        return environ["CUSTOMER_FEED_DB_URL"]
    raw = environ.get(CONN_ENV, "").strip()
    if not raw:
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"
    if raw.startswith("{"):
        data = json.loads(raw)
        conn = _ConnFields(data.get("conn_type"), data.get("host"), data.get("port"), data.get("login"),
                           data.get("password"), data.get("schema"))
        return url_from_connection(conn)
    parsed = urlparse(raw)
    if parsed.scheme == "sqlite":
        return f"sqlite:///{unquote(parsed.netloc + parsed.path) if parsed.netloc else parsed.path[1:] or parsed.path}"
    return raw.replace("postgres://", "postgresql://", 1)


@dataclass
class _ConnFields:
    conn_type: str | None
    host: str | None
    port: int | None
    login: str | None
    password: str | None
    schema: str | None


def url_from_airflow(conn_id: str = "customer_feed_db", default: str | None = f"sqlite:///{DEFAULT_SQLITE_PATH}") -> str:
    """A database URL from Airflow's connection (any secrets backend); `default` when no such
    connection exists (the embedded SQLite file for the warehouse; None makes it an error)."""
    from airflow.sdk import BaseHook  # imported here: the feed service runs without Airflow

    try:
        return url_from_connection(BaseHook.get_connection(conn_id))
    except Exception as exc:  # AirflowNotFoundException's home moved between versions
        if default is None or ("isn't defined" not in str(exc) and "not found" not in str(exc).lower()):
            raise
        return default


# --------------------------------------------------------------------------- dialects


class Dialect:
    """Everything that differs between SQLite and PostgreSQL."""

    name: str
    text = "TEXT"
    # Appended to the tables whose rows are read and rewritten by primary-key range.
    clustered = ""

    def sql(self, statement: str) -> str:
        return statement

    def connect(self):
        raise NotImplementedError

    def begin(self, cur) -> None:
        """Open a write transaction."""

    def begin_read_snapshot(self, cur) -> None:
        cur.execute("BEGIN")

    def lock(self, cur) -> None:
        """Serialise writers: load and publish must never interleave."""

    def bulk_insert(self, cur, table: str, columns: Sequence[str], data: pa.Table) -> None:
        raise NotImplementedError

    def temp_table(self, cur, name: str, like: str | None = None, columns: str | None = None) -> None:
        raise NotImplementedError

    def analyze(self, cur, table: str) -> None:
        """Give the planner the size of a freshly filled table."""

    def executemany(self, cur, statement: str, rows: Iterable[Sequence]) -> None:
        cur.executemany(statement, rows)


class SQLiteDialect(Dialect):
    name = "sqlite"
    # Rows stored in primary-key order: renumbering a block of a feed, or rewriting a run's
    # orders of one domain, touches a few adjacent pages instead of one page per row, and the
    # separate primary-key index (one more B-tree to write) goes.
    clustered = " WITHOUT ROWID"

    def __init__(self, path: str):
        self.path = path

    def connect(self):
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        # WAL: the feed service keeps reading the previous table while a publish writes.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA cache_size=-131072")  # 128 MiB: keeps the indexes a publish walks in memory
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def begin(self, cur) -> None:
        cur.execute("BEGIN IMMEDIATE")  # takes the write lock now, so writers never interleave

    def bulk_insert(self, cur, table, columns, data):
        placeholders = ",".join("?" * len(columns))
        rows = zip(*(data.column(c).to_pylist() for c in columns))
        cur.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({placeholders})", rows)

    def temp_table(self, cur, name, like=None, columns=None):
        cur.execute(f"DROP TABLE IF EXISTS temp.{name}")
        if like:
            cur.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {like} WHERE 0")
        else:
            cur.execute(f"CREATE TEMP TABLE {name} ({columns})")


class PostgresDialect(Dialect):
    name = "postgresql"

    def __init__(self, url: str):
        self.url = url

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def connect(self):
        import psycopg2

        return psycopg2.connect(self.url)

    def begin_read_snapshot(self, cur) -> None:
        # psycopg2 opens write transactions on the first statement; a reader (autocommit) asks
        # for one snapshot so the total and the rows belong to the same publish.
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def lock(self, cur) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('customer_feed.publish'))")

    def bulk_insert(self, cur, table, columns, data):
        # COPY is an order of magnitude faster than INSERTs; CSV keeps NULL and '' apart.
        buffer = io.BytesIO()
        pacsv.write_csv(
            data.select(list(columns)), buffer,
            pacsv.WriteOptions(include_header=False, quoting_style="needed"),
        )
        buffer.seek(0)
        cur.copy_expert(f"COPY {table} ({','.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)

    def temp_table(self, cur, name, like=None, columns=None):
        # Qualified: an unqualified name would drop a permanent table of that name when this
        # session has no temporary one yet.
        cur.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
        if like:
            cur.execute(f"CREATE TEMP TABLE {name} (LIKE {like}) ON COMMIT DROP")
        else:
            cur.execute(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP")

    def executemany(self, cur, statement, rows):
        # psycopg2's executemany is one round trip per row; pages of rows in one call instead.
        from psycopg2.extras import execute_batch

        execute_batch(cur, statement, rows, page_size=500)

    def analyze(self, cur, table):
        # Autovacuum never analyzes temporary tables, and a table loaded moments ago has no
        # statistics yet: without them the planner joins a run's thousand rows to the order
        # state with nested loops over sequential scans (seconds instead of milliseconds).
        cur.execute(f"ANALYZE {table}")


def dialect_for(url: str) -> Dialect:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return SQLiteDialect(url[len("sqlite:///"):] or str(DEFAULT_SQLITE_PATH))
    if parsed.scheme in ("postgresql", "postgres"):
        return PostgresDialect(url.replace("postgres://", "postgresql://", 1))
    raise ValueError(f"unsupported warehouse URL scheme {parsed.scheme!r} (sqlite:/// or postgresql://)")


# --------------------------------------------------------------------------- the warehouse


# Secondary indexes, by table. Writers read them too: an upsert that assigns none of these
# columns leaves every index untouched (see :func:`indexed_columns`).
INDEXES: dict[str, dict[str, tuple[str, ...]]] = {
    "order_state": {"order_state_email": ("email_norm",), "order_state_customer": ("source", "domain", "customer_ref")},
    "source_customers": {"source_customers_email": ("email_norm",)},
    "customers": {"customers_pos": ("feed", "pos"), "customers_email": ("email",)},
    "feed_blocks": {"feed_blocks_cum": ("feed", "cum_before")},
}


def indexed_columns(table: str) -> set[str]:
    """Every column some secondary index of `table` covers."""
    return {c for columns in INDEXES.get(table, {}).values() for c in columns}


def _ddl(dialect: Dialect) -> list[str]:
    return [*_tables(dialect), *(
        f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})"
        for table, indexes in INDEXES.items() for name, columns in indexes.items()
    )]


def _tables(dialect: Dialect) -> list[str]:
    def columns(names):
        return ",\n  ".join(f"{c} {_COLUMN_TYPES.get(c, 'TEXT')}" for c in names)

    return [
        f"""CREATE TABLE IF NOT EXISTS order_state (
  {columns(ORDER_COLUMNS)},
  PRIMARY KEY (source, domain, order_id)){dialect.clustered}""",
        f"""CREATE TABLE IF NOT EXISTS source_customers (
  {columns(PROFILE_COLUMNS)},
  PRIMARY KEY (source, domain, customer_ref))""",
        "CREATE TABLE IF NOT EXISTS dirty_emails (email_norm TEXT PRIMARY KEY)",
        """CREATE TABLE IF NOT EXISTS sync_state (
  source TEXT NOT NULL, domain TEXT NOT NULL, watermark BIGINT, updated_at BIGINT NOT NULL,
  last_run_id TEXT, PRIMARY KEY (source, domain))""",
        """CREATE TABLE IF NOT EXISTS customer_ids (
  feed TEXT NOT NULL, email_norm TEXT NOT NULL, id BIGINT NOT NULL,
  PRIMARY KEY (feed, email_norm), UNIQUE (feed, id))""",
        f"""CREATE TABLE IF NOT EXISTS customers (
  feed TEXT NOT NULL, id BIGINT NOT NULL, email TEXT NOT NULL, first_name TEXT NOT NULL,
  last_name TEXT NOT NULL, orders_count INTEGER NOT NULL, total_spent_minor BIGINT NOT NULL,
  currency TEXT NOT NULL, phone TEXT, registered_at TEXT NOT NULL, gender TEXT NOT NULL,
  pos BIGINT, PRIMARY KEY (feed, id)){dialect.clustered}""",
        """CREATE TABLE IF NOT EXISTS feed_blocks (
  feed TEXT NOT NULL, block BIGINT NOT NULL, n INTEGER NOT NULL, orders BIGINT NOT NULL,
  spent_minor BIGINT NOT NULL, cum_before BIGINT NOT NULL,
  PRIMARY KEY (feed, block))""",
        """CREATE TABLE IF NOT EXISTS feed_meta (
  feed TEXT PRIMARY KEY, total BIGINT NOT NULL, config_fingerprint TEXT NOT NULL,
  published_at BIGINT NOT NULL, run_id TEXT)""",
    ]


class Warehouse:
    """A handle on the warehouse at `url`. Cheap to create; connections are made per use
    (and pooled for PostgreSQL readers, see :meth:`reader`)."""

    def __init__(self, url: str):
        self.url = url
        self.dialect = dialect_for(url)
        self._pool = None
        self._pool_lock = threading.Lock()

    # -- plumbing

    @contextlib.contextmanager
    def transaction(self, lock: bool = True) -> Iterator["Cursor"]:
        """One atomic unit of work: commits on success, rolls back on any error."""
        conn = self.dialect.connect()
        try:
            cur = Cursor(conn.cursor(), self.dialect)
            self.dialect.begin(cur.raw)
            if lock:
                self.dialect.lock(cur.raw)
            yield cur
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    @contextlib.contextmanager
    def reader(self) -> Iterator["Cursor"]:
        """A read-only cursor; PostgreSQL connections come from a thread-safe pool."""
        if isinstance(self.dialect, PostgresDialect):
            pool = self._reader_pool()
            conn = pool.getconn()
            try:
                conn.autocommit = True
                yield Cursor(conn.cursor(), self.dialect)
            finally:
                pool.putconn(conn)
        else:
            conn = self.dialect.connect()
            try:
                yield Cursor(conn.cursor(), self.dialect)
            finally:
                conn.close()

    def _reader_pool(self):
        with self._pool_lock:
            if self._pool is None:
                from psycopg2.pool import ThreadedConnectionPool

                self._pool = ThreadedConnectionPool(1, int(os.environ.get("FEED_DB_POOL_SIZE", "16")), self.url)
            return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.closeall()
            self._pool = None

    def create_schema(self) -> None:
        with self.transaction() as cur:
            for statement in _ddl(self.dialect):
                cur.execute(statement)

    def drop_all(self) -> None:
        """Removes every table (tests and `make reset` only)."""
        with self.transaction() as cur:
            for table in ("order_state", "source_customers", "dirty_emails", "sync_state", "customer_ids", "customers",
                          "feed_blocks", "feed_meta"):
                cur.execute(f"DROP TABLE IF EXISTS {table}")

    # -- sync state

    def watermarks(self, source: str) -> dict[str, int]:
        with self.reader() as cur:
            cur.execute("SELECT domain, watermark FROM sync_state WHERE source = ? AND watermark IS NOT NULL", (source,))
            return dict(cur.fetchall())

    def source_customer_refs(self, source: str, domain: str) -> set[str]:
        """The customer ids of a source domain the warehouse already holds a profile of."""
        with self.reader() as cur:
            cur.execute("SELECT customer_ref FROM source_customers WHERE source = ? AND domain = ?", (source, domain))
            return {r[0] for r in cur.fetchall()}

    # -- feed reads (the feed service)

    def feed_total(self, feed: str) -> int:
        with self.reader() as cur:
            cur.execute("SELECT total FROM feed_meta WHERE feed = ?", (feed,))
            row = cur.fetchone()
            return int(row[0]) if row else 0

    def feed_page(self, feed: str, page: int, per_page: int) -> tuple[list[tuple], int]:
        """Rows ``(id, email, first_name, last_name, orders_count, total_spent_minor, currency,
        phone, registered_at, gender)`` of page `page` (1-based) in id order, and the total.

        Reads run in one snapshot so the rows and the total belong to the same publish.
        """
        offset = (page - 1) * per_page
        with self.reader() as cur:
            cur.begin_snapshot()
            cur.execute("SELECT total FROM feed_meta WHERE feed = ?", (feed,))
            row = cur.fetchone()
            total = int(row[0]) if row else 0
            if offset >= total:
                cur.end_snapshot()
                return [], total
            cur.execute(
                "SELECT block, cum_before FROM feed_blocks WHERE feed = ? AND cum_before <= ?"
                " ORDER BY cum_before DESC, block DESC LIMIT 1",
                (feed, offset),
            )
            block, cum_before = cur.fetchone()
            start = block * BLOCK + (offset - cum_before)
            cur.execute(
                "SELECT id, email, first_name, last_name, orders_count, total_spent_minor, currency,"
                " phone, registered_at, gender FROM customers WHERE feed = ? AND pos >= ?"
                " ORDER BY pos LIMIT ?",
                (feed, start, per_page),
            )
            rows = cur.fetchall()
            cur.end_snapshot()
            return rows, total


class Cursor:
    """A DB-API cursor that speaks `?` placeholders on either dialect."""

    def __init__(self, raw, dialect: Dialect):
        self.raw = raw
        self.dialect = dialect

    def execute(self, statement: str, params: Sequence = ()):
        self.raw.execute(self.dialect.sql(statement), tuple(params))
        return self

    def executemany(self, statement: str, rows: Iterable[Sequence]):
        self.dialect.executemany(self.raw, self.dialect.sql(statement), rows)
        return self

    def fetchone(self):
        return self.raw.fetchone()

    def fetchall(self):
        return self.raw.fetchall()

    @property
    def rowcount(self) -> int:
        return self.raw.rowcount

    @property
    def description(self):
        return self.raw.description

    def bulk_insert(self, table: str, columns: Sequence[str], data: pa.Table) -> None:
        if data.num_rows:
            self.dialect.bulk_insert(self.raw, table, columns, data)

    def temp_table(self, name: str, like: str | None = None, columns: str | None = None) -> None:
        self.dialect.temp_table(self.raw, name, like=like, columns=columns)

    def analyze(self, table: str) -> None:
        self.dialect.analyze(self.raw, table)

    def begin_snapshot(self) -> None:
        self.dialect.begin_read_snapshot(self.raw)

    def end_snapshot(self) -> None:
        self.raw.execute("COMMIT")


def now_epoch() -> int:
    return int(time.time())
