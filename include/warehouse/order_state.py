"""Merging staged extracts into the order state, and the per source x domain watermarks.

The order state keeps the latest version of every order, keyed by (source, domain, order_id):
a version replaces the stored one when its ``changed_at`` is later, or equal with a greater
``version_hash`` (so two versions stamped in the same second resolve the same way whichever
arrives first). Loading the same extract twice, or extracts out of order, changes nothing.

Every email whose orders change — the new version's email and, when an email was edited, the
old one — is written to ``dirty_emails`` in the same transaction; the publish step works from that
list, so a crash between load and publish loses nothing: the next publish completes it.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from include.config import GuardSettings
from include.guard import check_drop
from include.schema import ORDER_COLUMNS, ORDER_SCHEMA, PROFILE_COLUMNS, PROFILE_SCHEMA
from include.warehouse import Cursor, Warehouse, now_epoch
from include.warehouse.aggregate import connect
from include.warehouse.ddl import EVERY_EMAIL, FULL_ABOVE, INDEXES, KEYS, indexed_columns
from include.warehouse.suppression import read_suppression

_KEY = ("source", "domain", "order_id")
_PROFILE_KEY = ("source", "domain", "customer_ref")


@dataclass(frozen=True)
class LoadedWindow:
    """What one extract covered: every order of (source, domain) changed in [lower, upper)."""

    source: str
    domain: str
    lower: int | None  # epoch seconds; None = from the beginning of the source's history
    upper: int


def to_warehouse_rows(records: pa.Table) -> pa.Table:
    """A staged table -> warehouse column types (epoch seconds, 0/1 flags)."""
    columns = {}
    for name in records.column_names:
        column = records.column(name)
        if pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.int64())
        elif pa.types.is_boolean(column.type):
            column = pc.cast(column, pa.int8())
        columns[name] = column
    return pa.table(columns)


def latest_versions(records: pa.Table, key: tuple[str, ...] = _KEY) -> pa.Table:
    """One row per key: the latest version within the batch, by the order-state rule."""
    if records.num_rows == 0:
        return records
    ordered = records.sort_by(
        [(c, "ascending") for c in key] + [("changed_at", "ascending"), ("version_hash", "ascending")]
    )
    keys = [ordered.column(c) for c in key]
    # A row is its key's latest when the next row has another key (or there is none).
    n = ordered.num_rows
    last = pa.array([True] * n)
    if n > 1:
        same = None
        for k in keys:
            eq = pc.equal(k.slice(0, n - 1), k.slice(1))
            same = eq if same is None else pc.and_(same, eq)
        last = pa.concat_arrays([pc.invert(same).combine_chunks(), pa.array([True])])
    return ordered.filter(last)


def load_orders(
    wh: Warehouse,
    orders: pa.Table | Iterable[pa.Table],
    windows: list[LoadedWindow],
    run_id: str,
    replace_domains: list[tuple[str, str]] = (),
    profiles: pa.Table | None = None,
    deleted: list[tuple[str, str, str]] = (),
    guard: GuardSettings | None = None,
    confirm_mass_change: bool = False,
) -> dict:
    """Merge `orders` (ORDER_SCHEMA; one table, or an iterable of them — the staged files one by
    one, so memory holds one at a time) and `profiles` (PROFILE_SCHEMA) into the state, apply
    deletions at the source, and advance the watermarks, atomically.

    `replace_domains` first removes every stored order of those (source, domain) pairs (a rebuild
    from scratch). `deleted` lists (source, domain, customer_ref) of customers the source has
    deleted: their profile and every order of theirs go, and their customers are recomputed.

    A load into an empty order state (a first load, or a rebuild of every domain) takes the bulk
    path of :func:`_load_into_empty`: rows sorted once in DuckDB, appended in key order, indexes
    built once at the end, instead of millions of inserts at random places (what made a large
    load slow down as it grew).

    Records of erased people (the suppression list) are dropped as they stream past and counted
    as ``suppressed``. The mass-change guard (:mod:`include.guard`) stops the load before anything
    is committed when a rebuild leaves a domain with far fewer customers than it held, or the
    source deletes more than the allowed share of a domain's customers.
    """
    profiles = PROFILE_SCHEMA.empty_table() if profiles is None else profiles
    parts = [orders] if isinstance(orders, pa.Table) else orders
    orders_in = changed = suppressed = 0
    guard = guard or GuardSettings()
    with wh.transaction() as cur:
        # Erased people never re-enter, whatever the extract brought (see include.suppression).
        suppression = read_suppression(cur)
        if suppression:
            kept = profiles.filter(pc.invert(suppression.hits(profiles["email_norm"])))
            suppressed += profiles.num_rows - kept.num_rows
            profiles = kept
        held = {d: _customers_with_orders(cur, *d) for d in replace_domains}
        for source, domain in replace_domains:
            for table in ("order_state", "source_customers"):
                cur.execute(
                    f"INSERT INTO dirty_emails (email_norm) SELECT DISTINCT email_norm FROM {table}"
                    " WHERE source = ? AND domain = ? ON CONFLICT DO NOTHING",
                    (source, domain),
                )
                cur.execute(f"DELETE FROM {table} WHERE source = ? AND domain = ?", (source, domain))

        def unsuppressed(parts):
            nonlocal orders_in, suppressed
            for part in parts:
                if suppression:
                    kept = part.filter(pc.invert(suppression.hits(part["email_norm"])))
                    suppressed += part.num_rows - kept.num_rows
                    part = kept
                orders_in += part.num_rows
                yield part

        timings: dict[str, float] = {}
        if _empty(cur, "order_state"):
            changed = _load_into_empty(cur, unsuppressed(parts), timings)
        else:
            # Versions of one order in different parts resolve by the same rule whichever part
            # comes first, so merging part by part equals merging them all at once.
            for part in unsuppressed(parts):
                changed += _merge(cur, "order_state", _KEY, ORDER_COLUMNS, to_warehouse_rows(latest_versions(part)))
        changed_profiles = _merge(
            cur,
            "source_customers",
            _PROFILE_KEY,
            PROFILE_COLUMNS,
            to_warehouse_rows(latest_versions(profiles, _PROFILE_KEY)),
        )
        # A rebuild replaced each domain's orders with its new extract: one that came back empty
        # or far smaller (a revoked key, a wrong domainID) must not wipe the domain.
        for (source, domain), before in held.items():
            after = _customers_with_orders(cur, source, domain)
            check_drop(
                f"the rebuild of {source} domain {domain}",
                before,
                {"customers with orders": (before, max(before - after, 0))},
                guard,
                confirm_mass_change,
            )
        removed = _delete_customers(cur, deleted, guard, confirm_mass_change)
        for window in windows:
            _advance_watermark(cur, window, run_id)
    return {
        "orders_in": orders_in,
        "orders_changed": changed,
        "profiles_changed": changed_profiles,
        "orders_deleted": removed,
        "suppressed": suppressed,
        "timings": timings,
    }


def _customers_with_orders(cur: Cursor, source: str, domain: str) -> int:
    cur.execute("SELECT COUNT(DISTINCT email_norm) FROM order_state WHERE source = ? AND domain = ?", (source, domain))
    return int(cur.fetchone()[0])


def _empty(cur: Cursor, table: str) -> bool:
    cur.execute(f"SELECT 1 FROM {table} LIMIT 1")
    return cur.fetchone() is None


def _drop_indexes(cur: Cursor, table: str) -> None:
    for name in INDEXES.get(table, {}):
        cur.execute(f"DROP INDEX IF EXISTS {name}")


def _create_indexes(cur: Cursor, table: str) -> None:
    for name, columns in INDEXES.get(table, {}).items():
        cur.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})")


#: DuckDB's memory limit while a load into an empty order state sorts its rows (it spills to
#: a scratch directory beyond it).
LOAD_MEMORY = os.environ.get("CUSTOMER_FEED_LOAD_MEMORY", "512MB")
_BATCH_ROWS = 131_072
# Every version in key order, each order's latest first (the order-state rule): one sort, after
# which the latest versions are the first row of each key (:func:`_first_per_key`). At 10M rows
# this took 10.9 s where a window keeping row_number() = 1, then ordering, took 27.9 s.
_BY_KEY_LATEST_FIRST = (
    f"SELECT {', '.join(ORDER_COLUMNS)} FROM incoming ORDER BY {', '.join(_KEY)}, changed_at DESC, version_hash DESC"
)


def _first_per_key(batches: pa.RecordBatchReader, key: tuple[str, ...]) -> pa.RecordBatchReader:
    """Of a stream of rows in key order, the first row of each key (a key's rows may straddle
    two batches)."""

    def first_rows():
        last = None  # the previous batch's last key, as length-1 arrays
        for batch in batches:
            n = batch.num_rows
            if not n:
                continue
            same = None
            for i, name in enumerate(key):
                column = batch.column(name)
                before = column.slice(0, n - 1)
                before = pa.concat_arrays([last[i] if last else pa.nulls(1, column.type), before])
                equal = pc.fill_null(pc.equal(column, before), False)
                same = equal if same is None else pc.and_(same, equal)
            last = [batch.column(name).slice(n - 1) for name in key]
            yield batch.filter(pc.invert(same))

    return pa.RecordBatchReader.from_batches(batches.schema, first_rows())


def _load_into_empty(cur: Cursor, parts: Iterable[pa.Table], timings: dict) -> int:
    """A first load, or a rebuild of every domain: nothing stored can be older than what comes,
    so no row needs looking up. The parts stream into DuckDB (in memory up to a limit, spilling to
    a scratch directory past it), which sorts them by key, each order's latest version first
    (the order-state rule); the first row of each key is appended to the order state without its
    indexes (the primary key too, where the dialect can add it back), which are then built once
    by sorting.
    Every email loaded goes on the work list. Memory holds one part and DuckDB's limit, whatever
    the size of the history. `timings` receives the seconds of each step."""
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = round(now - clock, 3)
        clock = now

    with tempfile.TemporaryDirectory(prefix="customer-feed-load-") as scratch:
        # In memory, spilling to `scratch` past the limit: rows go in 4x faster than into a
        # database file, which compresses and writes every block (1.4 s per 1M orders).
        con = connect(memory_limit=LOAD_MEMORY, temp_directory=scratch)
        try:
            con.register("part", to_warehouse_rows(ORDER_SCHEMA.empty_table()))
            con.execute("CREATE TABLE incoming AS SELECT * FROM part")
            for part in parts:
                con.register("part", to_warehouse_rows(part.select(ORDER_COLUMNS)))
                con.execute("INSERT INTO incoming SELECT * FROM part")
            con.unregister("part")
            lap("staged")
            if not con.execute("SELECT count(*) FROM incoming").fetchone()[0]:
                return 0
            _drop_indexes(cur, "order_state")
            cur.dialect.drop_keys(cur.raw, "order_state", KEYS["order_state"])
            latest = _first_per_key(con.execute(_BY_KEY_LATEST_FIRST).to_arrow_reader(_BATCH_ROWS), _KEY)
            written = cur.dialect.bulk_append(cur.raw, "order_state", ORDER_COLUMNS, latest, scratch)
            lap("latest_appended")
            cur.dialect.add_keys(cur.raw, "order_state", KEYS["order_state"])
            _create_indexes(cur, "order_state")
            cur.analyze("order_state")
            lap("keys_indexes")
            # Every email of the state is new. Past the size a publish takes in full anyway, one
            # mark stands for them all instead of millions of rows on the work list.
            emails = con.execute("SELECT count(DISTINCT email_norm) FROM incoming").fetchone()[0]
            if emails > FULL_ABOVE:
                cur.execute("INSERT INTO dirty_emails (email_norm) VALUES (?) ON CONFLICT DO NOTHING", (EVERY_EMAIL,))
            else:
                cur.temp_table("loaded_emails", columns="email_norm TEXT")
                batches = con.execute("SELECT DISTINCT email_norm FROM incoming").to_arrow_reader(_BATCH_ROWS)
                cur.dialect.bulk_append(cur.raw, "loaded_emails", ["email_norm"], batches, scratch)
                cur.execute(
                    "INSERT INTO dirty_emails (email_norm) SELECT email_norm FROM loaded_emails WHERE true"
                    " ON CONFLICT DO NOTHING"
                )
            return written
        finally:
            con.close()


def _merge(cur: Cursor, table: str, key: tuple[str, ...], columns: list[str], rows: pa.Table) -> int:
    if rows.num_rows == 0:
        return 0
    cur.temp_table("incoming", like=table)
    cur.bulk_insert("incoming", columns, rows)
    cur.analyze("incoming")
    join = " AND ".join(f"o.{c} = i.{c}" for c in key)
    cur.temp_table("winners", like=table)
    # In key order: the rows then go into the clustered table (and its primary key) in the order
    # it stores them.
    cur.execute(
        f"INSERT INTO winners SELECT i.* FROM incoming i LEFT JOIN {table} o ON {join}"
        f" WHERE o.{key[-1]} IS NULL OR i.changed_at > o.changed_at"
        " OR (i.changed_at = o.changed_at AND i.version_hash > o.version_hash)"
        f" ORDER BY {', '.join(f'i.{c}' for c in key)}"
    )
    cur.execute("SELECT COUNT(*) FROM winners")
    changed = cur.fetchone()[0]
    if not changed:
        return 0
    cur.analyze("winners")
    win_join = " AND ".join(f"o.{c} = w.{c}" for c in key)
    cur.execute(
        "INSERT INTO dirty_emails (email_norm) SELECT DISTINCT email_norm FROM ("
        " SELECT email_norm FROM winners"
        f" UNION SELECT o.email_norm FROM {table} o JOIN winners w ON {win_join}"
        ") changed_emails WHERE true ON CONFLICT DO NOTHING"
    )
    # Indexed columns are set only on the rows where they change (an edited email, a profile
    # re-linked): assigning a column rewrites its index entry even when the value is the same.
    indexed = [c for c in columns if c in indexed_columns(table) and c not in key]
    if indexed:
        cur.execute(
            f"UPDATE {table} SET {', '.join(f'{c} = w.{c}' for c in indexed)} FROM winners w"
            f" WHERE {' AND '.join(f'{table}.{c} = w.{c}' for c in key)}"
            f" AND ({' OR '.join(f'{table}.{c} IS DISTINCT FROM w.{c}' for c in indexed)})"
        )
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key and c not in indexed)
    cur.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM winners"
        f" WHERE true ORDER BY {', '.join(key)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )
    return changed


def _delete_customers(cur: Cursor, deleted: list[tuple[str, str, str]], guard: GuardSettings, confirm: bool) -> int:
    for source, domain in sorted({(s, d) for s, d, _ in deleted}):
        refs = {r for s, d, r in deleted if (s, d) == (source, domain)}
        cur.execute("SELECT customer_ref FROM source_customers WHERE source = ? AND domain = ?", (source, domain))
        known = {r[0] for r in cur.fetchall()}
        check_drop(
            f"{source} domain {domain} (customers deleted at the source)",
            len(known),
            {"customers": (len(known), len(known & refs))},
            guard,
            confirm,
        )
    removed = 0
    for source, domain, customer_ref in deleted:
        for table in ("order_state", "source_customers"):
            where = "source = ? AND domain = ? AND customer_ref = ?"
            cur.execute(
                f"INSERT INTO dirty_emails (email_norm) SELECT DISTINCT email_norm FROM {table} WHERE {where}"
                " ON CONFLICT DO NOTHING",
                (source, domain, customer_ref),
            )
            cur.execute(f"DELETE FROM {table} WHERE {where}", (source, domain, customer_ref))
            if table == "order_state":
                removed += max(cur.rowcount, 0)
    return removed


def _advance_watermark(cur: Cursor, window: LoadedWindow, run_id: str) -> None:
    """Coverage stays contiguous: the watermark moves to `upper` only when the window started at
    or before it (or covered the whole history); a window after a gap leaves it where it is."""
    cur.execute("SELECT watermark FROM sync_state WHERE source = ? AND domain = ?", (window.source, window.domain))
    row = cur.fetchone()
    current = row[0] if row else None
    if current is None:
        new = window.upper if window.lower is None else None
    elif window.lower is None or window.lower <= current:
        new = max(current, window.upper)
    else:
        new = current
    cur.execute(
        "INSERT INTO sync_state (source, domain, watermark, updated_at, last_run_id) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (source, domain) DO UPDATE SET watermark = excluded.watermark,"
        " updated_at = excluded.updated_at, last_run_id = excluded.last_run_id",
        (window.source, window.domain, new, now_epoch(), run_id),
    )


def watermarks(wh: Warehouse, source: str) -> dict[str, int]:
    with wh.reader() as cur:
        cur.execute("SELECT domain, watermark FROM sync_state WHERE source = ? AND watermark IS NOT NULL", (source,))
        return dict(cur.fetchall())


def source_customer_refs(wh: Warehouse, source: str, domain: str) -> set[str]:
    """The customer ids of a source domain the warehouse already holds a profile of."""
    with wh.reader() as cur:
        cur.execute("SELECT customer_ref FROM source_customers WHERE source = ? AND domain = ?", (source, domain))
        return {r[0] for r in cur.fetchall()}
