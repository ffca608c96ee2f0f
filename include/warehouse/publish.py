"""Publishing the customer table: recompute the customers whose orders changed, atomically.

One transaction either way. Readers see the previous publish until the commit, then this one.

*Incremental* (the hourly run): read the work list (``dirty_emails``), fetch all orders of those
emails, aggregate them, give new customers the next ids of their feed, replace their rows in
``customers``, renumber the touched blocks, update the block counts and ``feed_meta``, and clear
the work list.

*Full* (a rebuild, a first load, or after the feed configuration changed): the order state,
the profiles and the customer ids stream into DuckDB (Arrow batches over ADBC, no Python object
per row; in memory up to a limit, spilling to a scratch directory past it), the same rules run
there, new ids, ``pos`` and the block counts are computed there too, and the results
stream back in batches: new ids appended, a fresh customer table filled and swapped in for the
old one, the block counts replaced. Memory stays bounded by the DuckDB limit and the batch size,
whatever the size of the history.

Both paths run the one definition of the rules in :mod:`include.warehouse.aggregate`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time

import pandas as pd
import pyarrow as pa

from include.config import FeedConfig
from include.guard import check_drop
from include.money import minor_to_major
from include.warehouse import Cursor, Warehouse, now_epoch
from include.warehouse.aggregate import (
    CUSTOMERS_SQL,
    ORDER_FIELDS,
    PROFILE_FIELDS,
    aggregate_customers,
    connect,
    register_config,
)
from include.warehouse.ddl import (
    BLOCK,
    CUSTOMER_COLUMNS,
    EVERY_EMAIL,
    FULL_ABOVE,
    INDEXES,
    KEYS,
    customers_table,
    indexed_columns,
)

_ORDER_FIELDS = ", ".join(ORDER_FIELDS)
_PROFILE_FIELDS = ", ".join(PROFILE_FIELDS)

#: DuckDB's memory limit during a full rebuild (it spills to a scratch directory beyond it), and
#: the orders per partition of the rules (see :func:`_read_state`). A partition's rules fit in
#: the limit: at 10M orders 512MB and 1M orders rebuilt as fast as 1GB and 2M (87.4 s, 88.0 s)
#: and peaked 0.64 GiB lower (1.07 GiB).
REBUILD_MEMORY = os.environ.get("CUSTOMER_FEED_REBUILD_MEMORY", "512MB")
PARTITION_ORDERS = int(os.environ.get("CUSTOMER_FEED_REBUILD_PARTITION_ORDERS", "1000000"))
#: Up to this many orders, a rebuild reads the state through the writer's own cursor (starting
#: the streamed readers costs more than the rows).
SMALL_STATE = 50_000
#: Rows per batch on the way into and out of DuckDB.
BATCH_ROWS = 131_072


def publish_customers(
    wh: Warehouse,
    config: FeedConfig,
    run_id: str,
    full: bool = False,
    confirm_mass_change: bool = False,
    emails: list[str] | None = None,
) -> dict:
    """Recompute and publish; returns a summary per feed (customers, orders, total) and timings.

    Before the commit, the mass-change guard compares each feed with what it was: when it would
    lose more than ``guard.max_drop_share`` of its customers or of its orders, the publish stops
    with :class:`~include.guard.MassChangeError` and the previous feed stays served (unless
    `confirm_mass_change` or ``CUSTOMER_FEED_CONFIRM_MASS_CHANGE`` confirms it).

    `emails` narrows the work list to those addresses (an erasure publishes its own change, not
    whatever else is waiting); a configuration change still makes it a full publish.
    """
    started = time.perf_counter()
    with wh.transaction() as cur:
        before = _feed_sizes(cur)
        full = full or _config_changed(cur, config) or (emails is None and _everyone_pending(cur))
        if full:
            recomputed, timings = _publish_full(cur, wh, config, run_id)
        else:
            recomputed, timings = _publish_incremental(cur, config, run_id, emails), {}
        summary = _summary(cur, config)
        # Every row is written; the commit makes it visible — unless the guard stops it here.
        for feed in config.feeds:
            customers_before, orders_before = before.get(feed.name, (0, 0))
            after = summary[feed.name]
            check_drop(
                f"feed {feed.name!r}",
                customers_before,
                {
                    "customers": (customers_before, max(customers_before - after["customers"], 0)),
                    "orders": (orders_before, max(orders_before - after["orders"], 0)),
                },
                config.guard,
                confirm_mass_change,
            )
    return {
        "feeds": summary,
        "recomputed_emails": recomputed,
        "full": full,
        "seconds": round(time.perf_counter() - started, 3),
        "timings": timings,
    }


def _feed_sizes(cur: Cursor) -> dict[str, tuple[int, int]]:
    """Per feed, the customers and orders it serves now (from the block counts)."""
    cur.execute("SELECT feed, COALESCE(SUM(n), 0), COALESCE(SUM(orders), 0) FROM feed_blocks GROUP BY feed")
    return {feed: (int(n), int(orders)) for feed, n, orders in cur.fetchall()}


def _publish_incremental(cur: Cursor, config: FeedConfig, run_id: str, emails: list[str] | None = None) -> int:
    cur.temp_table("work", columns="email_norm TEXT PRIMARY KEY")
    if emails is not None:
        cur.executemany(
            "INSERT INTO work (email_norm) VALUES (?) ON CONFLICT DO NOTHING", [(e,) for e in sorted(set(emails))]
        )
    else:
        cur.execute(
            "INSERT INTO work (email_norm) SELECT email_norm FROM dirty_emails WHERE email_norm <> ?", (EVERY_EMAIL,)
        )
    cur.analyze("work")
    cur.execute("SELECT COUNT(*) FROM work")
    recomputed = cur.fetchone()[0]

    orders = _frame(cur, f"SELECT {_ORDER_FIELDS} FROM order_state WHERE email_norm IN (SELECT email_norm FROM work)")
    profiles = _frame(
        cur, f"SELECT {_PROFILE_FIELDS} FROM source_customers WHERE email_norm IN (SELECT email_norm FROM work)"
    )
    customers = aggregate_customers(orders, config, profiles)
    customers = _with_ids(cur, customers)
    # In key order: the rows go into the clustered table in the order it stores them.
    published = customers.loc[customers["accepts_marketing"].astype(bool)].sort_values(["feed", "id"])
    old = _frame(
        cur,
        "SELECT feed, id, pos, orders_count, total_spent_minor FROM customers"
        " WHERE email IN (SELECT email_norm FROM work)",
    )
    _replace_customers(cur, _customer_rows(published, old), old)
    first_moved = _apply_block_changes(cur, old, published)
    _refresh_meta(cur, config, first_moved, run_id)
    cur.execute("DELETE FROM dirty_emails WHERE email_norm IN (SELECT email_norm FROM work)")
    return recomputed


# Streamed reads for the rebuild, each into a DuckDB table of declared types (an empty result
# carries no types of its own). On SQLite, ADBC types a column by its first batch, so nullable
# text comes through COALESCE (the rules treat '' and NULL alike).
_REBUILD_READS = {
    "all_orders": (
        "source VARCHAR, domain VARCHAR, order_id VARCHAR, email_norm VARCHAR, created_at BIGINT,"
        " successful INTEGER, total_minor BIGINT, currency VARCHAR, first_name VARCHAR, last_name VARCHAR,"
        " phone VARCHAR, marketing_opt_in INTEGER",
        "SELECT source, domain, order_id, email_norm, created_at, successful, total_minor, currency,"
        " COALESCE(first_name, '') AS first_name, COALESCE(last_name, '') AS last_name,"
        " COALESCE(phone, '') AS phone, marketing_opt_in FROM order_state",
    ),
    "all_profiles": (
        "source VARCHAR, domain VARCHAR, customer_ref VARCHAR, email_norm VARCHAR, first_name VARCHAR,"
        " last_name VARCHAR, registered_at BIGINT, changed_at BIGINT",
        "SELECT source, domain, customer_ref, email_norm, COALESCE(first_name, '') AS first_name,"
        " COALESCE(last_name, '') AS last_name, registered_at, changed_at FROM source_customers",
    ),
    "ids": ("feed VARCHAR, email_norm VARCHAR, id BIGINT", "SELECT feed, email_norm, id FROM customer_ids"),
}

# The reads split into partitions of the email key space.
_PARTITIONED = ("all_orders", "all_profiles")


def _declared(name: str) -> list[tuple[str, str]]:
    """(column, type) of a rebuild read, as :data:`_REBUILD_READS` declares them."""
    return [tuple(d.split()) for d in _REBUILD_READS[name][0].split(",")]


_REBUILD_SQL = [
    # Every customer with its id: the one it has, or for a new customer the next of its feed, in
    # order of registration (as incremental runs give them). One join to the ids, not two.
    """CREATE TABLE assigned AS
       SELECT c.*, k.id IS NULL AS is_new,
              coalesce(k.id, coalesce(m.top, 0) + row_number() OVER (
                  PARTITION BY c.feed, k.id IS NULL ORDER BY c.registered_at, c.email_norm))::BIGINT AS id
       FROM computed c
       LEFT JOIN ids k ON k.feed = c.feed AND k.email_norm = c.email_norm
       LEFT JOIN (SELECT feed, max(id) AS top FROM ids GROUP BY feed) m ON m.feed = c.feed""",
    """CREATE VIEW published AS
       SELECT feed, id, email_norm AS email, first_name, last_name, orders_count, total_spent_minor, currency,
              phone, registered_at, gender
       FROM assigned WHERE accepts_marketing""",
]

_PUBLISHED_ROWS = f"""
    SELECT feed, id, email, first_name, last_name, orders_count, total_spent_minor, currency, phone, registered_at,
           gender,
           (id // {BLOCK}) * {BLOCK} + row_number() OVER (PARTITION BY feed, id // {BLOCK} ORDER BY id) - 1 AS pos
    FROM published ORDER BY feed, id"""

_BLOCK_ROWS = f"""
    SELECT feed, block, n, orders, spent_minor,
           (sum(n) OVER (PARTITION BY feed ORDER BY block) - n)::BIGINT AS cum_before
    FROM (SELECT feed, id // {BLOCK} AS block, count(*)::BIGINT AS n, sum(orders_count)::BIGINT AS orders,
                 sum(total_spent_minor)::BIGINT AS spent_minor
          FROM published GROUP BY feed, block)
    ORDER BY feed, block"""


def _publish_full(cur: Cursor, wh: Warehouse, config: FeedConfig, run_id: str) -> tuple[int, dict]:
    """Every customer recomputed from the whole order state, in bounded memory (see the module
    docstring). Rows of feeds no longer configured go; ids are kept."""
    timings = {}
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="customer-feed-rebuild-") as scratch:
        # In memory, spilling to `scratch` past the limit (a database file compresses and writes
        # every block that comes in: 1.4 s per 1M orders instead of 0.35 s).
        con = connect(memory_limit=REBUILD_MEMORY, temp_directory=scratch)
        try:
            # Reads come from committed rows on connections of their own; this transaction holds
            # the writers' lock, so nothing changes them until it commits.
            partitions = timings["partitions"] = _read_state(cur, wh, con, scratch)
            register_config(con, config)
            timings["read"] = time.perf_counter() - clock
            clock = time.perf_counter()
            recomputed = _run_rules(con, partitions, scratch)
            timings["aggregate"] = time.perf_counter() - clock
            clock = time.perf_counter()
            for statement in _REBUILD_SQL:
                con.execute(statement)
            timings["ids"] = time.perf_counter() - clock
            clock = time.perf_counter()

            # In primary-key order: on SQLite, which keeps its keys while rows arrive, the key on
            # emails then only ever appends (ids, in registration order, land at random in the
            # smaller key on ids, whose pages stay in the cache).
            new_ids = "SELECT feed, email_norm, id FROM assigned WHERE is_new ORDER BY feed, email_norm"
            # A first publish gives everyone an id: keys built after the rows, by one sort each.
            first = not con.execute("SELECT count(*) FROM ids").fetchone()[0]
            if first:
                cur.dialect.drop_keys(cur.raw, "customer_ids", KEYS["customer_ids"])
            _stream(cur, con, new_ids, "customer_ids", ["feed", "email_norm", "id"], scratch)
            if first:
                cur.dialect.add_keys(cur.raw, "customer_ids", KEYS["customer_ids"])
            timings["write_ids"] = time.perf_counter() - clock
            customers_started = time.perf_counter()
            cur.execute("DROP TABLE IF EXISTS customers_next")
            cur.execute(customers_table(cur.dialect, "customers_next", primary_key=cur.dialect.key_before_rows))
            written = _stream(cur, con, _PUBLISHED_ROWS, "customers_next", CUSTOMER_COLUMNS, scratch)
            cur.dialect.swap_table(cur.raw, "customers", "customers_next", INDEXES["customers"])
            timings["write_customers"] = time.perf_counter() - customers_started
            cur.execute("DELETE FROM feed_blocks")
            cur.execute("DELETE FROM feed_meta")
            blocks = ["feed", "block", "n", "orders", "spent_minor", "cum_before"]
            _stream(cur, con, _BLOCK_ROWS, "feed_blocks", blocks, scratch)
            timings["write"] = time.perf_counter() - clock
            timings["customers_written"] = written
        finally:
            con.close()
    _refresh_meta(cur, config, {}, run_id)
    # Everyone was recomputed: nothing is left to do for an incremental run.
    cur.execute("DELETE FROM dirty_emails")
    return recomputed, {k: round(v, 3) if isinstance(v, float) else v for k, v in timings.items()}


def _read_state(cur: Cursor, wh: Warehouse, con, scratch: str) -> int:
    """The order state, profiles and ids into DuckDB; returns the number of partitions.

    Orders and profiles are split as they stream past by a hash of the email into partitions of
    :data:`PARTITION_ORDERS` orders, written as Parquet under `scratch` (one pass, no copy held
    in DuckDB's memory): every order and profile of an email land in the same partition, so the
    rules run partition by partition (:func:`_run_rules`), each reading its own rows only, and
    memory stays the same whatever the size of the history. The ids go into a table. A small
    state is read through the writer's own cursor; past :data:`SMALL_STATE` orders, by streamed
    Arrow readers, all opened at once (on SQLite each is a child process, whose start-ups
    overlap) and read in turn."""
    cur.execute("SELECT COUNT(*) FROM order_state")
    rows = cur.fetchone()[0]
    small = rows <= SMALL_STATE
    partitions = max(1, -(-rows // PARTITION_ORDERS))
    with contextlib.ExitStack() as readers:
        streams = {
            name: None if small else readers.enter_context(wh.dialect.arrow_reader(statement, BATCH_ROWS))
            for name, (_, statement) in _REBUILD_READS.items()
        }
        for name, (columns, statement) in _REBUILD_READS.items():
            # Typed, and empty for the partitioned reads: what a partition with no rows reads.
            con.execute(f"CREATE TABLE {name} ({columns})")
            if small:
                cur.execute(statement)
                fetched = cur.fetchall()
                if not fetched:
                    continue
                names = [d[0] for d in cur.description]
                streams[name] = pa.table([pa.array(values) for values in zip(*fetched)], names=names)
            con.register("incoming", streams[name])
            typed = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in _declared(name))
            if name in _PARTITIONED:
                con.execute(
                    f"COPY (SELECT {typed}, hash(email_norm) % {partitions} AS part FROM incoming)"
                    f" TO '{scratch}/{name}' (FORMAT parquet, PARTITION_BY (part))"
                )
            else:
                con.execute(f"INSERT INTO {name} SELECT {typed} FROM incoming")
            con.unregister("incoming")
    return partitions


def _run_rules(con, partitions: int, scratch: str) -> int:
    """The rules over the whole order state, one partition at a time (see :func:`_read_state`):
    each partition's aggregation fits in DuckDB's memory limit instead of spilling. Returns the
    number of emails recomputed (with an order or a profile)."""
    recomputed = 0
    for k in range(partitions):
        for view, name in (("orders", "all_orders"), ("profiles", "all_profiles")):
            files = os.path.join(scratch, name, f"part={k}")
            rows = f"read_parquet('{files}/*.parquet')" if os.path.isdir(files) else name
            columns = ", ".join(c for c, _ in _declared(name))
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {columns} FROM {rows}")
        con.execute(f"{'INSERT INTO computed' if k else 'CREATE TABLE computed AS'} SELECT * FROM ({CUSTOMERS_SQL})")
        recomputed += con.execute(
            "SELECT count(*) FROM (SELECT email_norm FROM orders UNION SELECT email_norm FROM profiles)"
        ).fetchone()[0]
    return recomputed


def _stream(cur: Cursor, con, query: str, table: str, columns: list[str], scratch: str) -> int:
    """The rows of a DuckDB query into a warehouse table, batch by batch, by the dialect's bulk
    path; returns the row count."""
    return cur.dialect.bulk_append(cur.raw, table, columns, con.execute(query).to_arrow_reader(BATCH_ROWS), scratch)


def _frame(cur: Cursor, statement: str, params=()) -> pd.DataFrame:
    cur.execute(statement, params)
    names = [d[0] for d in cur.description]
    return pd.DataFrame.from_records(cur.fetchall(), columns=names)


def _everyone_pending(cur: Cursor) -> bool:
    """Whether the work list marks every email, or holds more than an incremental run is for."""
    cur.execute("SELECT 1 FROM dirty_emails WHERE email_norm = ?", (EVERY_EMAIL,))
    if cur.fetchone():
        return True
    cur.execute("SELECT COUNT(*) FROM dirty_emails")
    return int(cur.fetchone()[0]) > FULL_ABOVE


def _config_changed(cur: Cursor, config: FeedConfig) -> bool:
    cur.execute("SELECT DISTINCT config_fingerprint FROM feed_meta")
    seen = {r[0] for r in cur.fetchall()}
    return bool(seen) and seen != {config.fingerprint}


def _with_ids(cur: Cursor, customers: pd.DataFrame) -> pd.DataFrame:
    """Attach each (feed, email)'s stable id, allocating the next ids of the feed to new ones."""
    if customers.empty:
        return customers.assign(id=pd.Series(dtype="int64"))
    cur.temp_table("wanted", columns="feed TEXT, email_norm TEXT")
    cur.bulk_insert(
        "wanted", ["feed", "email_norm"], pa.Table.from_pandas(customers[["feed", "email_norm"]], preserve_index=False)
    )
    cur.analyze("wanted")
    known = _frame(
        cur,
        "SELECT c.feed, c.email_norm, c.id FROM customer_ids c"
        " JOIN wanted w ON w.feed = c.feed AND w.email_norm = c.email_norm",
    )
    merged = customers.merge(known, on=["feed", "email_norm"], how="left")
    new = merged[merged["id"].isna()].sort_values(["feed", "registered_at", "email_norm"], kind="stable")
    if not new.empty:
        next_id = {}
        for feed in new["feed"].unique():
            cur.execute("SELECT MAX(id) FROM customer_ids WHERE feed = ?", (feed,))
            next_id[feed] = cur.fetchone()[0] or 0
        ids = []
        for feed in new["feed"]:
            next_id[feed] += 1
            ids.append(next_id[feed])
        merged.loc[new.index, "id"] = ids
        allocated = pd.DataFrame({"feed": new["feed"].values, "email_norm": new["email_norm"].values, "id": ids})
        cur.bulk_insert(
            "customer_ids", ["feed", "email_norm", "id"], pa.Table.from_pandas(allocated, preserve_index=False)
        )
    merged["id"] = merged["id"].astype("int64")
    return merged


def _customer_rows(published: pd.DataFrame, old: pd.DataFrame) -> pa.Table:
    """Rows to insert; a customer already in the feed keeps its `pos` (its block is renumbered
    only if a row joined or left it)."""
    pos = published[["feed", "id"]].merge(old[["feed", "id", "pos"]], on=["feed", "id"], how="left")["pos"]
    return pa.table(
        {
            "feed": published["feed"].tolist(),
            "id": pa.array(published["id"].tolist(), pa.int64()),
            "email": published["email_norm"].tolist(),
            "first_name": published["first_name"].tolist(),
            "last_name": published["last_name"].tolist(),
            "orders_count": pa.array(published["orders_count"].tolist(), pa.int64()),
            "total_spent_minor": pa.array(published["total_spent_minor"].tolist(), pa.int64()),
            "currency": published["currency"].tolist(),
            "phone": pa.array(published["phone"].tolist(), pa.string()),
            "registered_at": published["registered_at"].tolist(),
            "gender": published["gender"].tolist(),
            "pos": pa.array([None if pd.isna(p) else int(p) for p in pos], pa.int64()),
        }
    )


_UPDATED = [c for c in CUSTOMER_COLUMNS if c not in ("feed", "id") and c not in indexed_columns("customers")]


def _replace_customers(cur: Cursor, rows: pa.Table, old: pd.DataFrame) -> None:
    """Make the work list's rows in ``customers`` equal `rows`: rows that left the feed go, the
    others are upserted. A customer who stays keeps its row and its `pos`, and only columns no
    index covers are rewritten, so a run dirties one table page per customer rather than a page
    in every index (the cost that grows with the size of the table)."""
    kept = set(zip(rows.column("feed").to_pylist(), rows.column("id").to_pylist()))
    leaving = [(feed, int(id_)) for feed, id_ in zip(old["feed"], old["id"]) if (feed, int(id_)) not in kept]
    if leaving:
        cur.executemany("DELETE FROM customers WHERE feed = ? AND id = ?", leaving)
    cur.temp_table("published", like="customers")
    cur.bulk_insert("published", CUSTOMER_COLUMNS, rows)
    cur.analyze("published")
    updates = ", ".join(f"{c} = excluded.{c}" for c in _UPDATED)
    cur.execute(
        f"INSERT INTO customers ({', '.join(CUSTOMER_COLUMNS)}) SELECT {', '.join(CUSTOMER_COLUMNS)} FROM published"
        f" WHERE true ON CONFLICT (feed, id) DO UPDATE SET {updates}"
    )


def _apply_block_changes(cur: Cursor, old: pd.DataFrame, new: pd.DataFrame) -> dict[str, int]:
    """Bring `feed_blocks` and `pos` up to date with the replaced rows.

    Counts move by deltas (old rows out, new rows in); only blocks that a row joined or left are
    renumbered, so a run of updates to existing customers and new customers (who get the
    highest ids) touches one block or two, whatever the size of the feed. Returns, per feed,
    the first block whose row count changed (running counts are refreshed from there).
    """
    columns = ["feed", "id", "orders_count", "total_spent_minor"]
    rows = pd.concat([old[columns].assign(n=-1, sign=-1), new[columns].assign(n=1, sign=1)], ignore_index=True)
    if rows.empty:
        return {}
    rows["id"] = rows["id"].astype("int64")
    rows["block"] = rows["id"] // BLOCK
    rows["orders"] = rows["orders_count"].astype("int64") * rows["sign"]
    rows["spent"] = rows["total_spent_minor"].astype("int64") * rows["sign"]
    deltas = rows.groupby(["feed", "block"], sort=True)[["n", "orders", "spent"]].sum().reset_index()
    cur.executemany(
        "INSERT INTO feed_blocks (feed, block, n, orders, spent_minor, cum_before) VALUES (?, ?, ?, ?, ?, 0)"
        " ON CONFLICT (feed, block) DO UPDATE SET n = feed_blocks.n + excluded.n,"
        " orders = feed_blocks.orders + excluded.orders, spent_minor = feed_blocks.spent_minor + excluded.spent_minor",
        [(f, int(b), int(n), int(o), int(sp)) for f, b, n, o, sp in deltas.itertuples(index=False)],
    )
    # Membership changed where an id is on one side only (an id on both sides stayed).
    sides = rows.groupby(["feed", "id"])["sign"].sum()
    moved = sides[sides != 0].reset_index()
    moved = moved.assign(block=moved["id"].astype("int64") // BLOCK).groupby(["feed", "block"])["id"].min()
    moved_blocks = [(feed, int(block)) for feed, block in moved.index]
    for (feed, block), first_id in moved.items():
        # Rows before the first id that joined or left keep their rank; renumber from there on.
        cur.execute(
            "UPDATE customers SET pos = r.new_pos FROM ("
            " SELECT id, ? + (SELECT COUNT(*) FROM customers WHERE feed = ? AND id >= ? AND id < ?)"
            "  + ROW_NUMBER() OVER (ORDER BY id) - 1 AS new_pos"
            " FROM customers WHERE feed = ? AND id >= ? AND id < ?"
            ") r WHERE customers.feed = ? AND customers.id = r.id",
            (block * BLOCK, feed, block * BLOCK, int(first_id), feed, int(first_id), (block + 1) * BLOCK, feed),
        )
    cur.executemany("DELETE FROM feed_blocks WHERE feed = ? AND block = ? AND n = 0", moved_blocks)
    first: dict[str, int] = {}
    for feed, block in moved_blocks:
        first.setdefault(feed, block)
    return first


def _refresh_meta(cur: Cursor, config: FeedConfig, first_moved: dict[str, int], run_id: str) -> dict[str, int]:
    """Running counts from the first block whose size changed, and the feed totals."""
    for feed, block in first_moved.items():
        cur.execute(
            "UPDATE feed_blocks SET cum_before = r.cum FROM ("
            " SELECT block,"
            "  COALESCE(SUM(n) OVER (ORDER BY block ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS cum"
            " FROM feed_blocks WHERE feed = ?) r"
            " WHERE feed_blocks.feed = ? AND feed_blocks.block = r.block AND feed_blocks.block >= ?",
            (feed, feed, block),
        )
    totals = {}
    for feed in config.feeds:
        cur.execute("SELECT COALESCE(SUM(n), 0) FROM feed_blocks WHERE feed = ?", (feed.name,))
        totals[feed.name] = int(cur.fetchone()[0])
        cur.execute(
            "INSERT INTO feed_meta (feed, total, config_fingerprint, published_at, run_id) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (feed) DO UPDATE SET total = excluded.total,"
            " config_fingerprint = excluded.config_fingerprint,"
            " published_at = excluded.published_at, run_id = excluded.run_id",
            (feed.name, totals[feed.name], config.fingerprint, now_epoch(), run_id),
        )
    return totals


def _summary(cur: Cursor, config: FeedConfig) -> dict[str, dict]:
    """Per configured feed: customers, orders and money as the feed serves them."""
    out = {}
    for feed in config.feeds:
        cur.execute(
            "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(orders), 0), COALESCE(SUM(spent_minor), 0)"
            " FROM feed_blocks WHERE feed = ?",
            (feed.name,),
        )
        customers, orders, spent = cur.fetchone()
        out[feed.name] = {
            "customers": int(customers),
            "orders": int(orders),
            "total_spent": minor_to_major(int(spent), feed.currency),
            "currency": feed.currency,
        }
    return out
