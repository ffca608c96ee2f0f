"""Everything that differs between SQLite and PostgreSQL: placeholders, bulk load, locking,
temporary tables and DDL details."""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import os
import queue
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote, urlparse

import pyarrow as pa
import pyarrow.csv as pacsv

from include.warehouse.urls import DEFAULT_SQLITE_PATH


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be read: a SQLite file that does not exist (a reader never creates
    one), or a server that does not answer."""


class Dialect:
    """Everything that differs between SQLite and PostgreSQL."""

    # Appended to the tables whose rows are read and rewritten by primary-key range.
    clustered = ""
    # Whether a table filled in bulk is created with its primary key (else added after the rows).
    key_before_rows = True

    def sql(self, statement: str) -> str:
        return statement

    def connect(self, create: bool = True):
        """A connection; `create=False` (readers) never creates a database that is not there."""
        raise NotImplementedError

    def begin(self, cur) -> None:
        """Open a write transaction."""

    def begin_read_snapshot(self, cur) -> None:
        cur.execute("BEGIN")

    def lock(self, cur) -> None:
        """Serialise writers: load and publish must never interleave."""

    def bulk_insert(self, cur, table: str, columns: Sequence[str], data: pa.Table) -> None:
        raise NotImplementedError

    def bulk_append(
        self, cur, table: str, columns: Sequence[str], batches: Iterable[pa.RecordBatch], scratch: str
    ) -> int:
        """Append a stream of Arrow batches (millions of rows: a first load, a rebuild) to `table`
        inside the caller's transaction, by the dialect's fastest path; `scratch` is a directory
        it may write to. Returns the number of rows."""
        written = 0
        for batch in batches:
            self.bulk_insert(cur, table, columns, pa.Table.from_batches([batch]))
            written += batch.num_rows
        return written

    def drop_keys(self, cur, table: str, keys: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        """Before rows are appended in bulk to an empty table: drop its keys (name -> (kind,
        columns)) where the dialect can build them again afterwards by one sort (:meth:`add_keys`)."""

    def add_keys(self, cur, table: str, keys: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        """The keys dropped by :meth:`drop_keys`, built again."""

    def temp_table(self, cur, name: str, like: str | None = None, columns: str | None = None) -> None:
        raise NotImplementedError

    def analyze(self, cur, table: str) -> None:
        """Give the planner the size of a freshly filled table."""

    def executemany(self, cur, statement: str, rows: Iterable[Sequence]) -> None:
        cur.executemany(statement, rows)

    def arrow_reader(self, statement: str, batch_rows: int = 131_072) -> contextlib.AbstractContextManager:
        """A context manager yielding a query's committed rows as a stream of Arrow batches
        (a ``pa.RecordBatchReader``), read through ADBC on a connection of its own: rows go from
        the database into Arrow without a Python object per row.

        SQLite's ADBC driver infers a column's type from the first batch and fails on a later
        batch that disagrees (a text column that starts with NULLs), so on SQLite every nullable
        text column must be selected through ``COALESCE(column, '')``.
        """
        raise NotImplementedError

    def swap_table(self, cur, table: str, staged: str, indexes: dict[str, tuple[str, ...]]) -> None:
        """Put the filled table `staged` in the place of `table`, with `table`'s secondary indexes
        (built once, by sorting), inside the caller's transaction."""
        cur.execute(f"DROP TABLE {table}")
        cur.execute(f"ALTER TABLE {staged} RENAME TO {table}")
        for name, columns in indexes.items():
            cur.execute(f"CREATE INDEX {name} ON {table} ({', '.join(columns)})")


class SQLiteDialect(Dialect):
    # Rows stored in primary-key order: renumbering a block of a feed, or rewriting a run's
    # orders of one domain, touches a few adjacent pages instead of one page per row, and the
    # separate primary-key index (one more B-tree to write) goes.
    clustered = " WITHOUT ROWID"

    def __init__(self, path: str):
        self.path = path

    def connect(self, create: bool = True):
        if create:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            # WAL: the feed service keeps reading the previous table while a publish writes.
            conn.execute("PRAGMA journal_mode=WAL")
        else:
            # mode=rw opens an existing file and never creates one (mode=ro could not open a WAL
            # database whose -shm file is gone); the writers' WAL mode is persistent.
            uri = f"file:{quote(str(Path(self.path).resolve()))}?mode=rw"
            try:
                conn = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None, check_same_thread=False)
            except sqlite3.OperationalError:
                raise WarehouseUnavailable(
                    f"the SQLite warehouse {self.path} does not exist or cannot be opened"
                ) from (None)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA cache_size=-131072")  # 128 MiB: keeps the indexes a publish walks in memory
        # Temporary tables and the sorter's spills in files (the page cache keeps the small ones
        # in memory anyway): in memory, building the indexes of a 10M-order load held 0.9 GiB more.
        conn.execute("PRAGMA temp_store=FILE")
        return conn

    def begin(self, cur) -> None:
        cur.execute("BEGIN IMMEDIATE")  # takes the write lock now, so writers never interleave

    def bulk_insert(self, cur, table, columns, data):
        # Python's sqlite3 binds row by row; in slices, so the Python objects of only one slice
        # exist at a time (a million rows at once held a gigabyte of them).
        statement = f"INSERT INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"
        for batch in data.select(list(columns)).to_batches(max_chunksize=20_000):
            cur.executemany(statement, zip(*(column.to_pylist() for column in batch.columns)))

    _attached = itertools.count()

    def bulk_append(self, cur, table, columns, batches, scratch):
        # Python's sqlite3 binds value by value (~300k rows/s of narrow rows, a third of that for
        # the order state). ADBC binds Arrow arrays in C: the batches go into a scratch database
        # file of their own (this connection holds the write lock on the warehouse), which is
        # then attached and copied by one INSERT ... SELECT inside the transaction, in the order
        # the rows came (a clustered table filled in key order only ever appends).
        import adbc_driver_sqlite.dbapi

        alias = f"bulk_{next(self._attached)}"
        path = os.path.join(scratch, f"{alias}.sqlite")
        conn = adbc_driver_sqlite.dbapi.connect(path, autocommit=True)
        try:
            adbc = conn.cursor()
            adbc.execute("PRAGMA journal_mode=OFF")  # a scratch file: nothing to roll back to
            adbc.execute("PRAGMA synchronous=OFF")
            reader = pa.RecordBatchReader.from_batches(_schema_of(batches), batches)
            adbc.adbc_ingest("rows", reader, mode="create")
            adbc.close()
        finally:
            conn.close()
        # SQLite cannot DETACH a database a transaction has read; it goes with the connection
        # (an unlinked file stays readable until then).
        cur.execute("ATTACH DATABASE ? AS " + alias, (path,))
        names = ", ".join(columns)
        cur.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {alias}.rows")
        return max(cur.rowcount, 0)

    @contextlib.contextmanager
    def arrow_reader(self, statement, batch_rows=131_072):
        # ADBC reads the file in a child process (include/warehouse/arrow_export.py says why)
        # and streams the batches back as Arrow IPC: still no Python object per row. The script
        # runs by its path, so the child imports pyarrow and the driver, not this package.
        script = str(Path(__file__).with_name("arrow_export.py"))
        command = [sys.executable, script, self.path, str(batch_rows), statement]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=_PIPE_BYTES)
        with contextlib.suppress(OSError):  # a larger pipe: fewer round trips per batch
            fcntl.fcntl(child.stdout.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
        try:
            try:
                reader = pa.ipc.open_stream(child.stdout)
            except pa.ArrowInvalid:
                reader = None  # the child failed before it wrote anything
            if reader is not None:
                yield reader
        finally:
            child.stdout.close()  # a reader that stops early ends the child (a broken pipe)
            error = child.stderr.read().decode(errors="replace")
            child.stderr.close()
            child.wait()
        if child.returncode or reader is None:
            raise RuntimeError(f"reading the SQLite warehouse into Arrow failed: {error.strip()[-2000:]}")

    def temp_table(self, cur, name, like=None, columns=None):
        cur.execute(f"DROP TABLE IF EXISTS temp.{name}")
        if like:
            cur.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {like} WHERE 0")
        else:
            cur.execute(f"CREATE TEMP TABLE {name} ({columns})")


_F_SETPIPE_SZ = 1031  # Linux's fcntl to resize a pipe
_PIPE_BYTES = 1 << 20


class PostgresDialect(Dialect):
    key_before_rows = False

    def __init__(self, url: str):
        self.url = url

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def connect(self, create: bool = True):
        import psycopg2

        return psycopg2.connect(self.url)

    def lock(self, cur) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('customer_feed.publish'))")

    def bulk_insert(self, cur, table, columns, data):
        # COPY is an order of magnitude faster than INSERTs; CSV keeps NULL and '' apart. The
        # CSV of one slice of rows at a time is in memory (see bulk_append).
        self.bulk_append(cur, table, columns, data.select(list(columns)).to_batches(max_chunksize=200_000), None)

    def bulk_append(self, cur, table, columns, batches, scratch):
        # One COPY for the whole stream: a thread writes the CSV of the next batch while the
        # server parses the one before (pyarrow's writer releases the GIL), instead of one COPY
        # per batch with the two sides taking turns.
        statement = f"COPY {table} ({','.join(columns)}) FROM STDIN WITH (FORMAT csv)"
        pipe = _CsvPipe(batches, list(columns))
        try:
            cur.copy_expert(statement, pipe, size=1 << 20)
        finally:
            pipe.finish()
        return pipe.rows

    def drop_keys(self, cur, table, keys):
        for name in keys:
            cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")

    def add_keys(self, cur, table, keys):
        # Index builds sort in maintenance_work_mem (64MB by default: millions of keys spill).
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for name, (kind, columns) in keys.items():
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {kind} ({', '.join(columns)})")

    def temp_table(self, cur, name, like=None, columns=None):
        # Qualified: an unqualified name would drop a permanent table of that name when this
        # session has no temporary one yet.
        cur.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
        if like:
            cur.execute(f"CREATE TEMP TABLE {name} (LIKE {like}) ON COMMIT DROP")
        else:
            cur.execute(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP")

    @contextlib.contextmanager
    def arrow_reader(self, statement, batch_rows=131_072):
        import adbc_driver_postgresql.dbapi

        conn = adbc_driver_postgresql.dbapi.connect(self.url)
        try:
            cur = conn.cursor()
            try:
                cur.execute(statement)
                yield cur.fetch_record_batch()
            finally:
                cur.close()
        finally:
            conn.close()

    def swap_table(self, cur, table, staged, indexes):
        # Everything slow happens before the old table is locked: the primary key and indexes are
        # built on the staged table under temporary names, so the exclusive lock that DROP takes
        # (readers wait on it) is held only from here to the commit.
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cur.execute(f"ALTER TABLE {staged} ADD CONSTRAINT {staged}_pkey PRIMARY KEY (feed, id)")
        for name, columns in indexes.items():
            cur.execute(f"CREATE INDEX {staged}_{name} ON {staged} ({', '.join(columns)})")
        cur.execute(f"DROP TABLE {table}")
        cur.execute(f"ALTER TABLE {staged} RENAME TO {table}")
        cur.execute(f"ALTER INDEX {staged}_pkey RENAME TO {table}_pkey")
        for name in indexes:
            cur.execute(f"ALTER INDEX {staged}_{name} RENAME TO {name}")
        cur.execute(f"ANALYZE {table}")

    def begin_read_snapshot(self, cur) -> None:
        # psycopg2 opens write transactions on the first statement; a reader (autocommit) asks
        # for one snapshot so the total and the rows belong to the same publish. The lock comes
        # before the first query, so the snapshot is taken after it is granted: a reader that
        # arrives while a rebuild swaps the customer table in waits for that commit and then sees
        # the new table whole (with the snapshot first, it would see the new table empty).
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cur.execute("LOCK TABLE customers IN ACCESS SHARE MODE")

    def executemany(self, cur, statement, rows):
        # psycopg2's executemany is one round trip per row; pages of rows in one call instead.
        from psycopg2.extras import execute_batch

        execute_batch(cur, statement, rows, page_size=500)

    def analyze(self, cur, table):
        # Autovacuum never analyzes temporary tables, and a table loaded moments ago has no
        # statistics yet: without them the planner joins a run's thousand rows to the order
        # state with nested loops over sequential scans (seconds instead of milliseconds).
        cur.execute(f"ANALYZE {table}")


def _schema_of(batches) -> pa.Schema:
    schema = getattr(batches, "schema", None)
    if schema is None:
        raise TypeError("bulk_append needs a RecordBatchReader (its schema types the scratch table)")
    return schema


class _CsvPipe(io.RawIOBase):
    """A file-like object that ``copy_expert`` reads: the CSV of a stream of Arrow batches,
    written by a thread of its own one batch ahead of the reader."""

    def __init__(self, batches: Iterable[pa.RecordBatch], columns: list[str]):
        self._chunks: queue.Queue = queue.Queue(maxsize=2)
        self._view = memoryview(b"")
        self._done = False
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self.rows = 0
        self._thread = threading.Thread(target=self._produce, args=(batches, columns), daemon=True)
        self._thread.start()

    def _produce(self, batches, columns) -> None:
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        try:
            for batch in batches:
                if self._stopped.is_set():
                    return
                if batch.num_rows:
                    out = io.BytesIO()
                    pacsv.write_csv(batch.select(columns), out, options)
                    self.rows += batch.num_rows
                    self._put(out.getvalue())
        except BaseException as error:  # re-raised in the caller's thread
            self._error = error
        finally:
            self._put(None)

    def _put(self, chunk) -> None:
        while not self._stopped.is_set():
            try:
                self._chunks.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._view and not self._done:
            chunk = self._chunks.get()
            if chunk is None:
                self._done = True
            else:
                self._view = memoryview(chunk)
        n = min(len(target), len(self._view))
        target[:n] = self._view[:n]
        self._view = self._view[n:]
        return n

    def finish(self) -> None:
        """Stop the writer (whether or not the COPY read everything) and raise its error."""
        self._stopped.set()
        self._thread.join()
        if self._error is not None:
            raise self._error


def dialect_for(url: str) -> Dialect:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return SQLiteDialect(url[len("sqlite:///") :] or str(DEFAULT_SQLITE_PATH))
    if parsed.scheme in ("postgresql", "postgres"):
        return PostgresDialect(url.replace("postgres://", "postgresql://", 1))
    raise ValueError(f"unsupported warehouse URL scheme {parsed.scheme!r} (sqlite:/// or postgresql://)")
