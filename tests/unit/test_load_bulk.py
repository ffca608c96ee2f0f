"""A load in parts (the staged files one by one) into an empty order state: the bulk path (the
latest versions kept in DuckDB, appended in key order with no index or droppable key, which are
built after the rows) keeps the same version rule as the merge, marks every email, and stays
atomic — on SQLite and PostgreSQL. And the rebuild's bulk reads and writes around it."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import include.warehouse.order_state as order_state
from include.schema import ORDER_SCHEMA
from include.warehouse import publish
from include.warehouse.ddl import EVERY_EMAIL, INDEXES, KEYS
from include.warehouse.dialects import SQLiteDialect
from include.warehouse.order_state import load_orders
from include.warehouse.publish import publish_customers
from tests.unit.test_publish import _feed, make_config

T0 = int(datetime(2026, 5, 1, tzinfo=UTC).timestamp())


def version(order_id, email, changed, digest="a", **fields) -> dict:
    row = {
        "source": "giftpro",
        "domain": "3521",
        "order_id": str(order_id),
        "email_norm": email,
        "created_at": datetime.fromtimestamp(T0, UTC),
        "changed_at": datetime.fromtimestamp(changed, UTC),
        "status": "Complete",
        "successful": True,
        "total_minor": 1000,
        "currency": "GBP",
        "first_name": None,
        "last_name": None,
        "phone": None,
        "marketing_opt_in": True,
        "customer_ref": None,
        "version_hash": digest,
    }
    row.update(fields)
    return row


def table(*rows) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=ORDER_SCHEMA)


def state(wh) -> dict[str, tuple]:
    with wh.reader() as cur:
        cur.execute("SELECT order_id, email_norm, changed_at, version_hash, total_minor FROM order_state")
        return {r[0]: tuple(r[1:]) for r in cur.fetchall()}


def dirty(wh) -> set[str]:
    with wh.reader() as cur:
        cur.execute("SELECT email_norm FROM dirty_emails")
        return {r[0] for r in cur.fetchall()}


def index_names(wh) -> set[str]:
    with wh.reader() as cur:
        if isinstance(wh.dialect, SQLiteDialect):
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'order_state'")
        else:
            cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'order_state'")
        return {r[0] for r in cur.fetchall()}


def parts():
    """Versions of orders 1 and 2 spread over three parts, the latest not always last."""
    return [
        table(version(1, "ann@example.com", T0 + 20, total_minor=3), version(3, "cy@example.com", T0)),
        table(
            version(1, "old@example.com", T0 + 10, total_minor=1),
            version(2, "bob@example.com", T0 + 10),
            # Same second as the stored version of order 3, greater digest: it wins.
            version(3, "cy@example.com", T0, digest="b", total_minor=7),
        ),
        table(
            version(2, "new@example.com", T0 + 30, total_minor=9),
            version(1, "older@example.com", T0 + 5, total_minor=0),
        ),
    ]


def test_parts_into_an_empty_state_keep_the_latest_versions(warehouse):
    result = load_orders(warehouse, iter(parts()), [], "first")
    assert result["orders_in"] == 7
    assert state(warehouse) == {
        "1": ("ann@example.com", T0 + 20, "a", 3),
        "2": ("new@example.com", T0 + 30, "a", 9),
        "3": ("cy@example.com", T0, "b", 7),
    }
    # Every email the load saw may have changed customers, including the ones orders left.
    assert dirty(warehouse) == {
        "ann@example.com",
        "old@example.com",
        "older@example.com",
        "bob@example.com",
        "new@example.com",
        "cy@example.com",
    }
    assert set(INDEXES["order_state"]) <= index_names(warehouse)


def test_same_result_as_one_table_into_a_state_that_is_not_empty(warehouse, tmp_path):
    """The bulk path and the merge agree: the same parts loaded after an unrelated order (so the
    merge runs) leave the same versions."""
    load_orders(warehouse, table(version(99, "zed@example.com", T0)), [], "seed")
    for n, part in enumerate(parts()):
        load_orders(warehouse, part, [], f"part-{n}")
    merged = {k: v for k, v in state(warehouse).items() if k != "99"}

    from include.warehouse import Warehouse

    fresh = Warehouse(f"sqlite:///{tmp_path / 'bulk.db'}")
    fresh.create_schema()
    load_orders(fresh, iter(parts()), [], "first")
    assert state(fresh) == merged
    fresh.close()


def key_names(wh, table) -> set[str]:
    """The keys a bulk append may drop and build again, as the database holds them now."""
    with wh.reader() as cur:
        if isinstance(wh.dialect, SQLiteDialect):
            # SQLite cannot drop a table's keys: they are in its definition, always.
            cur.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
            definition = cur.fetchone()[0]
            return {name for name, (kind, _) in KEYS[table].items() if kind in definition}
        cur.execute("SELECT constraint_name FROM information_schema.table_constraints WHERE table_name = ?", (table,))
        return {r[0] for r in cur.fetchall()}


def test_a_failed_part_leaves_the_state_and_its_indexes_as_they_were(warehouse):
    def failing():
        yield from parts()[:2]
        raise RuntimeError("staged file unreadable")

    with pytest.raises(RuntimeError, match="unreadable"):
        load_orders(warehouse, failing(), [], "first")
    assert state(warehouse) == {}
    assert dirty(warehouse) == set()
    assert set(INDEXES["order_state"]) <= index_names(warehouse)
    assert set(KEYS["order_state"]) <= key_names(warehouse, "order_state")


def test_a_failed_bulk_append_rolls_back_whole(warehouse, tmp_path):
    """The rows stream into the warehouse while they are read: a batch that fails midway (after
    others went) leaves the table as it was, and the error is the caller's."""
    rows = order_state.to_warehouse_rows(parts()[0])

    def batches():
        yield from rows.to_batches()
        raise RuntimeError("scratch disk full")

    reader = pa.RecordBatchReader.from_batches(rows.schema, batches())
    with pytest.raises(Exception, match="disk full"):  # ADBC wraps it in its own error
        with warehouse.transaction() as cur:
            cur.dialect.bulk_append(cur.raw, "order_state", rows.column_names, reader, str(tmp_path))
    assert state(warehouse) == {}


def test_keys_are_built_again_after_the_rows(warehouse):
    load_orders(warehouse, iter(parts()), [], "first")
    assert set(KEYS["order_state"]) <= key_names(warehouse, "order_state")
    # A duplicate key now fails as it would have before the bulk load.
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        with warehouse.transaction() as cur:
            cur.execute("INSERT INTO order_state SELECT * FROM order_state WHERE order_id = '1'")
    publish_customers(warehouse, make_config(_feed("a", giftpro=["3521"])), "first", full=True)
    assert set(KEYS["customer_ids"]) <= key_names(warehouse, "customer_ids")
    with warehouse.reader() as cur:
        cur.execute("SELECT feed, email_norm, id FROM customer_ids ORDER BY id")
        assert [r[2] for r in cur.fetchall()] == [1, 2, 3]


def test_a_load_past_the_full_publish_size_marks_every_email(warehouse, monkeypatch):
    """Past the size a publish takes in full anyway, one mark stands for every email; the next
    publish is then a full one, recomputes everyone and clears it."""
    monkeypatch.setattr(order_state, "FULL_ABOVE", 2)
    load_orders(warehouse, iter(parts()), [], "first")
    assert dirty(warehouse) == {EVERY_EMAIL}
    summary = publish_customers(warehouse, make_config(_feed("a", giftpro=["3521"])), "first")
    assert summary["full"] is True
    assert summary["feeds"]["a"]["customers"] == 3
    assert dirty(warehouse) == set()


def test_a_rebuild_on_sqlite_leaves_the_file_whole_for_the_next_connection(sqlite_warehouse, monkeypatch):
    """The rebuild reads SQLite through ADBC, whose own copy of the SQLite library must never
    open the warehouse file in this process: its close took the writer's locks away and deleted
    the WAL the writer was using, and the next connection met 'disk I/O error'."""
    monkeypatch.setattr(publish, "SMALL_STATE", 0)  # the streamed reads, whatever the size
    load_orders(sqlite_warehouse, iter(parts()), [], "first")
    with pytest.raises(Exception, match="UNIQUE"):  # a failed write leaves a WAL behind
        with sqlite_warehouse.transaction() as cur:
            cur.execute("INSERT INTO order_state SELECT * FROM order_state WHERE order_id = '1'")
    publish_customers(sqlite_warehouse, make_config(_feed("a", giftpro=["3521"])), "first", full=True)
    with sqlite_warehouse.reader() as cur:
        cur.execute("PRAGMA integrity_check")
        assert cur.fetchall() == [("ok",)]
        cur.execute("SELECT COUNT(*) FROM customer_ids")
        assert cur.fetchone() == (3,)


def test_an_arrow_read_that_fails_says_why(sqlite_warehouse):
    with pytest.raises(RuntimeError, match="no such table: nowhere"):
        with sqlite_warehouse.dialect.arrow_reader("SELECT * FROM nowhere") as reader:
            reader.read_all()
    with sqlite_warehouse.dialect.arrow_reader("SELECT order_id FROM order_state") as reader:
        assert reader.read_all().num_rows == 0


def test_a_rebuild_reads_the_same_state_streamed_or_through_the_cursor(warehouse, monkeypatch):
    """Past SMALL_STATE orders the rebuild streams the state through Arrow readers (on SQLite
    child processes); below it, the writer's cursor reads it: the same feed either way."""
    config = make_config(_feed("a", giftpro=["3521"]), _feed("b", giftpro=["3521"]))
    load_orders(warehouse, iter(parts()), [], "first")

    def rebuilt():
        summary = publish_customers(warehouse, config, "rebuild", full=True)
        with warehouse.reader() as cur:
            cur.execute("SELECT * FROM customers ORDER BY feed, id")
            return summary["feeds"], cur.fetchall()

    through_cursor = rebuilt()
    monkeypatch.setattr(publish, "SMALL_STATE", 0)
    assert rebuilt() == through_cursor
    assert len(through_cursor[1]) == 2 * 3


@pytest.mark.parametrize("streamed", [False, True])
def test_a_rebuild_in_partitions_with_none_empty_or_many_gives_the_same_feed(warehouse, monkeypatch, streamed):
    """The rebuild splits orders and profiles by a hash of the email into partitions written as
    Parquet; a partition no email hashed to reads as empty. One partition or one per order: the
    same feed, and every email counted once."""
    config = make_config(_feed("a", giftpro=["3521"]), _feed("b", giftpro=["3521"]))
    load_orders(warehouse, iter(parts()), [], "first")
    if streamed:
        monkeypatch.setattr(publish, "SMALL_STATE", 0)

    def rebuilt(partition_orders):
        monkeypatch.setattr(publish, "PARTITION_ORDERS", partition_orders)
        summary = publish_customers(warehouse, config, "rebuild", full=True)
        with warehouse.reader() as cur:
            cur.execute("SELECT * FROM customers ORDER BY feed, id")
            return summary, cur.fetchall()

    whole, whole_rows = rebuilt(1_000_000)
    # 3 orders in 3 partitions, one per order; the 3 emails hash to two of them (so one reads
    # as empty).
    emails = "('ann@example.com'), ('new@example.com'), ('cy@example.com')"
    assert duckdb.sql(f"SELECT count(DISTINCT hash(e) % 3) FROM (VALUES {emails}) t(e)").fetchone() == (2,)
    split, split_rows = rebuilt(1)
    assert (whole["timings"]["partitions"], split["timings"]["partitions"]) == (1, 3)
    assert split_rows == whole_rows and len(whole_rows) == 2 * 3
    assert split["feeds"] == whole["feeds"]
    assert split["recomputed_emails"] == whole["recomputed_emails"] == 3


@given(
    versions=st.lists(
        st.tuples(
            st.sampled_from(["giftpro", "differentbreed"]), st.integers(0, 4), st.integers(0, 3), st.integers(0, 2)
        ),
        max_size=40,
    ),
    chunk=st.integers(1, 7),
)
@settings(max_examples=200, deadline=None)
def test_the_first_row_of_each_key_is_kept_across_batch_boundaries(versions, chunk):
    rows = [
        version(order_id, "x@example.com", T0 + changed, digest=str(digest), source=source)
        for source, order_id, changed, digest in versions
    ]
    records = order_state.to_warehouse_rows(table(*rows))
    key_order = records.sort_by(
        [(c, "ascending") for c in order_state._KEY] + [("changed_at", "descending"), ("version_hash", "descending")]
    )
    reader = pa.RecordBatchReader.from_batches(key_order.schema, key_order.to_batches(max_chunksize=chunk))
    kept = pa.Table.from_batches(list(order_state._first_per_key(reader, order_state._KEY)), key_order.schema)
    expected = order_state.to_warehouse_rows(order_state.latest_versions(table(*rows)))
    assert sorted(kept.to_pylist(), key=str) == sorted(expected.to_pylist(), key=str)
