"""The warehouse handle: transactions for writers, pooled readers, and a cursor that speaks
``?`` placeholders on either dialect."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa

from include.warehouse.ddl import TABLES, ddl_statements
from include.warehouse.dialects import Dialect, PostgresDialect, WarehouseUnavailable, dialect_for


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
    def transaction(self, lock: bool = True) -> Iterator[Cursor]:
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
    def reader(self) -> Iterator[Cursor]:
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
            conn = self.dialect.connect(create=False)
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
            for statement in ddl_statements(self.dialect):
                cur.execute(statement)

    def drop_all(self) -> None:
        """Removes every table (tests and benchmarks only)."""
        with self.transaction() as cur:
            for table in TABLES:
                cur.execute(f"DROP TABLE IF EXISTS {table}")


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


def read_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the warehouse cannot answer" (not a bug): a reader answers
    them with 503."""
    import sqlite3

    errors: list[type[BaseException]] = [WarehouseUnavailable, sqlite3.Error]
    try:
        import psycopg2

        errors.append(psycopg2.Error)
    except ImportError:  # pragma: no cover - psycopg2 is a requirement
        pass
    return tuple(errors)


def now_epoch() -> int:
    return int(time.time())
