"""The warehouse: order state, customer ids, the published customer table and sync state.

One code path serves the embedded SQLite default and PostgreSQL; every difference between the
two lives in :mod:`include.warehouse.dialects`. The modules of this package:

``urls``        warehouse URLs from the environment or a connection's fields
``airflow_url`` the URL from an Airflow connection (for tasks; not imported here)
``dialects``    what differs between SQLite and PostgreSQL
``ddl``         the tables and indexes, declared once
``handle``      :class:`Warehouse` (transactions, readers) and its :class:`Cursor`
``feed_reads``  the feed service's reads: totals and constant-time pages
``order_state`` merging staged extracts (bulk when the state is empty); watermarks
``aggregate``   the customer rules, once: one DuckDB query from orders to customer rows
``publish``     the atomic publish of the customer table (incremental, or a full rebuild streamed
                through DuckDB in bounded memory)
``suppression`` the keyed hashes of erased people, which every load consults
``arrow_export`` a SQLite query into an Arrow stream, run as a child process (see its docstring)
"""

from include.warehouse.dialects import WarehouseUnavailable
from include.warehouse.handle import Cursor, Warehouse, now_epoch, read_errors
from include.warehouse.urls import url_from_env

__all__ = [
    "Cursor",
    "Warehouse",
    "WarehouseUnavailable",
    "now_epoch",
    "read_errors",
    "url_from_env",
]
