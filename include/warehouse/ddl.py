"""The warehouse tables, declared once (timestamps are epoch seconds UTC, booleans 0/1, money
integer minor units):

``order_state``    the latest version of every order, keyed by (source, domain, order_id)
``source_customers`` the latest profile of every source customer (Different Breed), by cust_id
``dirty_emails``   emails whose orders changed since the last publish (the publish work list);
                   the mark :data:`EVERY_EMAIL` stands for all of them (a load into an empty state)
``sync_state``     one watermark per source x domain: everything changed before it is loaded
``customer_ids``   the stable id of every (feed, email) ever seen; rows are never deleted
``customers``      the published feed rows (consenting customers only), with ``pos``
``feed_blocks``    per feed and block of 256 ids: rows, orders and money in it, rows before it
``feed_meta``      per feed: total rows, config fingerprint, when and by which run published
``run_log``        per run and feed: what the publish left (customers, orders, money), the window
                   loaded, orders changed, customers recomputed, records quarantined (monitoring)
``run_quarantine`` per run: the staged quarantine files and how many records each holds
``suppressed_emails`` erased people: a keyed hash of the email (never the email), the key's id

``pos`` makes every feed page cost the same: ``pos = block * 256 + rank within block`` where
``block = id // 256``. A page starts at the ``pos`` found through ``feed_blocks`` (one indexed
lookup) and is read with ``pos >= start ORDER BY pos LIMIT n`` (one index range scan), with no
OFFSET. A publish renumbers only the blocks it touched and the running counts of the blocks
after them (a few thousand small rows for millions of customers).
"""

from __future__ import annotations

import os

from include.schema import ORDER_COLUMNS, PROFILE_COLUMNS
from include.warehouse.dialects import Dialect

BLOCK = 256

CUSTOMER_COLUMNS = [
    "feed",
    "id",
    "email",
    "first_name",
    "last_name",
    "orders_count",
    "total_spent_minor",
    "currency",
    "phone",
    "registered_at",
    "gender",
    "pos",
]

_COLUMN_TYPES = {
    "created_at": "BIGINT",
    "changed_at": "BIGINT",
    "registered_at": "BIGINT",
    "successful": "SMALLINT",
    "total_minor": "BIGINT",
    "marketing_opt_in": "SMALLINT",
}


#: In ``dirty_emails``: every email is to be recomputed (never a normalised address).
EVERY_EMAIL = "*"
#: A work list longer than this is published in full (the same rules over everything, in bounded
#: memory) rather than email by email: after a first load, say, every email is on it.
FULL_ABOVE = int(os.environ.get("CUSTOMER_FEED_FULL_PUBLISH_ABOVE", "200000"))

# Keys a bulk append into an empty table drops and builds again by one sort, where the dialect
# can (PostgreSQL; SQLite cannot drop a table's keys): name -> (kind, columns).
KEYS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "order_state": {"order_state_pkey": ("PRIMARY KEY", ("source", "domain", "order_id"))},
    "customer_ids": {
        "customer_ids_pkey": ("PRIMARY KEY", ("feed", "email_norm")),
        "customer_ids_feed_id_key": ("UNIQUE", ("feed", "id")),
    },
}

# Secondary indexes, by table. Writers read them too: an upsert that assigns none of these
# columns leaves every index untouched (see :func:`indexed_columns`).
INDEXES: dict[str, dict[str, tuple[str, ...]]] = {
    "order_state": {"order_state_email": ("email_norm",), "order_state_customer": ("source", "domain", "customer_ref")},
    "source_customers": {"source_customers_email": ("email_norm",)},
    "customers": {"customers_pos": ("feed", "pos"), "customers_email": ("email",)},
    "run_log": {"run_log_published": ("published_at",)},
    "feed_blocks": {"feed_blocks_cum": ("feed", "cum_before")},
}


def indexed_columns(table: str) -> set[str]:
    """Every column some secondary index of `table` covers."""
    return {c for columns in INDEXES.get(table, {}).values() for c in columns}


def ddl_statements(dialect: Dialect) -> list[str]:
    return [
        *_tables(dialect),
        *(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})"
            for table, indexes in INDEXES.items()
            for name, columns in indexes.items()
        ),
    ]


def customers_table(dialect: Dialect, name: str = "customers", primary_key: bool = True) -> str:
    """The published table; a full rebuild fills a copy under another name and swaps it in
    (on PostgreSQL without its primary key, added after the rows: an index built once by sorting
    is much cheaper than one maintained row by row)."""
    key = ", PRIMARY KEY (feed, id)" if primary_key else ""
    return f"""CREATE TABLE IF NOT EXISTS {name} (
  feed TEXT NOT NULL, id BIGINT NOT NULL, email TEXT NOT NULL, first_name TEXT NOT NULL,
  last_name TEXT NOT NULL, orders_count INTEGER NOT NULL, total_spent_minor BIGINT NOT NULL,
  currency TEXT NOT NULL, phone TEXT, registered_at TEXT NOT NULL, gender TEXT NOT NULL,
  pos BIGINT{key}){dialect.clustered if primary_key else ""}"""


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
        customers_table(dialect),
        """CREATE TABLE IF NOT EXISTS feed_blocks (
  feed TEXT NOT NULL, block BIGINT NOT NULL, n INTEGER NOT NULL, orders BIGINT NOT NULL,
  spent_minor BIGINT NOT NULL, cum_before BIGINT NOT NULL,
  PRIMARY KEY (feed, block))""",
        """CREATE TABLE IF NOT EXISTS feed_meta (
  feed TEXT PRIMARY KEY, total BIGINT NOT NULL, config_fingerprint TEXT NOT NULL,
  published_at BIGINT NOT NULL, run_id TEXT)""",
        """CREATE TABLE IF NOT EXISTS run_log (
  run_id TEXT NOT NULL, feed TEXT NOT NULL, published_at BIGINT NOT NULL,
  window_start BIGINT, window_end BIGINT, window_origin TEXT,
  customers BIGINT NOT NULL, orders BIGINT NOT NULL, spent_minor BIGINT NOT NULL, currency TEXT NOT NULL,
  orders_changed BIGINT NOT NULL, recomputed BIGINT NOT NULL, quarantined BIGINT NOT NULL,
  full_rebuild SMALLINT NOT NULL, PRIMARY KEY (run_id, feed))""",
        """CREATE TABLE IF NOT EXISTS run_quarantine (
  run_id TEXT NOT NULL, source TEXT NOT NULL, domain TEXT NOT NULL, path TEXT NOT NULL,
  records BIGINT NOT NULL, PRIMARY KEY (run_id, path))""",
        """CREATE TABLE IF NOT EXISTS suppressed_emails (
  digest TEXT PRIMARY KEY, key_id TEXT NOT NULL, suppressed_at BIGINT NOT NULL)""",
    ]


TABLES = (
    "order_state",
    "source_customers",
    "dirty_emails",
    "sync_state",
    "customer_ids",
    "customers",
    "feed_blocks",
    "feed_meta",
    "run_log",
    "run_quarantine",
    "suppressed_emails",
)
