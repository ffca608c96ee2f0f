"""Stream a query's rows from a SQLite warehouse file to stdout as an Arrow IPC stream, through
ADBC, in a process of its own: ``python include/warehouse/arrow_export.py PATH BATCH_ROWS SQL`` (by its
path: the child imports pyarrow and the driver only, not the package).

Why a process: ADBC's SQLite driver carries its own copy of the SQLite library. Two copies in one
process that open the same database file corrupt it (https://sqlite.org/howtocorrupt.html,
section 2.2): POSIX locks belong to the process, so one copy closing the file drops the other's
locks, and it takes itself for the last connection and deletes the WAL the other is still
writing. A child process is just another reader, with locks of its own.
"""

from __future__ import annotations

import sys

import pyarrow as pa


def main(argv: list[str] | None = None) -> int:
    path, batch_rows, statement = (argv if argv is not None else sys.argv[1:])[:3]
    import adbc_driver_sqlite.dbapi

    conn = adbc_driver_sqlite.dbapi.connect(path)
    try:
        cur = conn.cursor()
        cur.execute("PRAGMA busy_timeout=60000")
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": batch_rows})
        cur.execute(statement)
        reader = cur.fetch_record_batch()
        with pa.ipc.new_stream(sys.stdout.buffer, reader.schema) as out:
            for batch in reader:
                out.write_batch(batch)
        cur.close()
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
