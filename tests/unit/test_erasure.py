"""Erasure removes an email from every layer and keeps its id reserved."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from include.config import load_config
from include.erasure import erase
from include.schema import ORDER_SCHEMA, QUARANTINE_SCHEMA
from include.staging import read_orders, read_tables, write_extract
from include.warehouse.feed_reads import feed_page
from include.warehouse.order_state import load_orders
from include.warehouse.publish import publish_customers

T = datetime(2026, 6, 1, tzinfo=UTC)


def order(n, email):
    return {
        "source": "giftpro",
        "domain": "3521",
        "order_id": str(n),
        "email_norm": email,
        "created_at": T,
        "changed_at": T,
        "status": "Complete",
        "successful": True,
        "total_minor": 100,
        "currency": "GBP",
        "first_name": "A",
        "last_name": "B",
        "phone": None,
        "marketing_opt_in": True,
        "customer_ref": None,
        "version_hash": str(n),
    }


def test_erasure_reaches_every_layer(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMER_FEED_ERASURE_KEY", "test-erasure-key")
    config = load_config()
    root = f"file://{tmp_path}"
    orders = pa.Table.from_pylist(
        [order(1, "gone@example.com"), order(2, "kept@example.com"), order(3, "gone@example.com")], schema=ORDER_SCHEMA
    )
    bad = pa.Table.from_pylist(
        [
            {
                "source": "giftpro",
                "domain": "3521",
                "order_id": "4",
                "customer_ref": None,
                "reason": "unknown currency 'XYZ'",
                "raw": '{"emailAddress": " Gone@Example.com"}',
            }
        ],
        schema=QUARANTINE_SCHEMA,
    )
    files = write_extract(root, "giftpro", "3521", T, T.replace(hour=1), orders, bad)
    load_orders(warehouse, orders, [], "r")
    publish_customers(warehouse, config, "r")
    with warehouse.reader() as cur:
        cur.execute("SELECT id FROM customer_ids WHERE email_norm = 'gone@example.com'")
        (gone_id,) = cur.fetchone()

    assert erase(warehouse, config, "  GONE@example.com ", root) == {"warehouse_rows": 2, "staged_rows": 3}

    rows, total = feed_page(warehouse, "ampress", 1, 10)
    assert total == 1 and [r[1] for r in rows] == ["kept@example.com"]
    assert read_orders([files.orders])["email_norm"].to_pylist() == ["kept@example.com"]
    assert read_tables([files.quarantine], QUARANTINE_SCHEMA).num_rows == 0
    with warehouse.reader() as cur:
        cur.execute("SELECT email_norm FROM customer_ids WHERE id = ? AND feed = 'ampress'", (gone_id,))
        assert cur.fetchone()[0].startswith("erased:")
        for table in ("order_state", "dirty_emails", "customers"):
            column = "email" if table == "customers" else "email_norm"
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = 'gone@example.com'")
            assert cur.fetchone()[0] == 0
