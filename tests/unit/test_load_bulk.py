"""A load in parts (the staged files one by one) into an empty order state: the bulk path (no
secondary indexes while it runs, one upsert per part) keeps the same version rule as the merge,
marks every email, builds the indexes again, and stays atomic — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from include.schema import ORDER_SCHEMA
from include.warehouse.ddl import INDEXES
from include.warehouse.dialects import SQLiteDialect
from include.warehouse.order_state import load_orders

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


def test_a_failed_part_leaves_the_state_and_its_indexes_as_they_were(warehouse):
    def failing():
        yield from parts()[:2]
        raise RuntimeError("staged file unreadable")

    with pytest.raises(RuntimeError, match="unreadable"):
        load_orders(warehouse, failing(), [], "first")
    assert state(warehouse) == {}
    assert dirty(warehouse) == set()
    assert set(INDEXES["order_state"]) <= index_names(warehouse)
