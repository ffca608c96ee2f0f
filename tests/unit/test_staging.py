"""Staging, on the local disk and on S3: schemas enforced, re-runs replace the interval, parts,
deleted customers purged, an erased email gone from every file."""

from __future__ import annotations

from datetime import UTC, datetime

import fsspec
import pyarrow as pa
import pytest

from include.schema import ORDER_SCHEMA, PROFILE_SCHEMA, QUARANTINE_SCHEMA
from include.staging import purge_customers, purge_email, read_orders, read_tables, write_extract

START = datetime(2026, 11, 1, 10, tzinfo=UTC)
END = datetime(2026, 11, 1, 11, tzinfo=UTC)


def orders(*refs):
    t = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    return pa.Table.from_pylist(
        [
            {
                "source": "differentbreed",
                "domain": "events",
                "order_id": f"o{i}",
                "email_norm": f"{r}@example.com",
                "created_at": t,
                "changed_at": t,
                "status": "paid",
                "successful": True,
                "total_minor": 100,
                "currency": "GBP",
                "first_name": None,
                "last_name": None,
                "phone": None,
                "marketing_opt_in": True,
                "customer_ref": r,
                "version_hash": "h",
            }
            for i, r in enumerate(refs)
        ],
        schema=ORDER_SCHEMA,
    )


def quarantine(*refs):
    return pa.Table.from_pylist(
        [
            {
                "source": "differentbreed",
                "domain": "events",
                "order_id": "q",
                "customer_ref": r,
                "reason": "unknown currency 'XYZ'",
                "raw": "{}",
            }
            for r in refs
        ],
        schema=QUARANTINE_SCHEMA,
    )


def staged_files(root: str) -> list[str]:
    """URLs of every Parquet file under `root`."""
    fs, base = fsspec.core.url_to_fs(root)
    return sorted(fs.unstrip_protocol(p) for p in fs.glob(f"{base}/**/*.parquet"))


def test_rerun_replaces_the_interval(staging_root):
    root = staging_root
    write_extract(root, "differentbreed", "events", START, END, orders("a", "b"), quarantine())
    files = write_extract(root, "differentbreed", "events", START, END, orders("c"), quarantine())
    assert read_orders([files.orders])["customer_ref"].to_pylist() == ["c"]
    assert [f.rsplit("/", 1)[1] for f in staged_files(root)] == ["orders.parquet", "quarantine.parquet"]
    assert files.orders.startswith(root.split("://")[0] + "://")


def test_parts_replace_only_their_own_files(staging_root):
    root = staging_root
    one = write_extract(root, "differentbreed", "events", START, END, orders("a"), quarantine(), part="batch-0")
    two = write_extract(root, "differentbreed", "events", START, END, orders("b"), quarantine(), part="batch-1")
    write_extract(root, "differentbreed", "events", START, END, orders("a2"), quarantine(), part="batch-0")
    assert read_orders([one.orders, two.orders])["customer_ref"].to_pylist() == ["a2", "b"]


def test_schema_is_checked(tmp_path):
    with pytest.raises(ValueError, match="orders"):
        write_extract(f"file://{tmp_path}", "giftpro", "1", START, END, orders("a").drop(["phone"]), quarantine())


def test_purge_removes_a_deleted_customer_from_every_staged_file(staging_root):
    root = staging_root
    profiles = pa.Table.from_pylist(
        [
            {
                "source": "differentbreed",
                "domain": "events",
                "customer_ref": r,
                "email_norm": f"{r}@example.com",
                "first_name": "A",
                "last_name": "B",
                "registered_at": START,
                "changed_at": START,
                "version_hash": "h",
            }
            for r in ("gone", "kept")
        ],
        schema=PROFILE_SCHEMA,
    )
    files = write_extract(
        root,
        "differentbreed",
        "events",
        START,
        END,
        orders("gone", "kept", "gone"),
        quarantine("gone"),
        profiles=profiles,
    )
    assert purge_customers(root, "differentbreed", "events", ["gone"]) == 4
    assert read_orders([files.orders])["customer_ref"].to_pylist() == ["kept"]
    assert read_tables([files.profiles], PROFILE_SCHEMA)["customer_ref"].to_pylist() == ["kept"]
    assert read_tables([files.quarantine], QUARANTINE_SCHEMA).num_rows == 0


def test_erasure_purges_an_email_from_every_staged_file(staging_root):
    root = staging_root
    write_extract(root, "differentbreed", "events", START, END, orders("erased", "kept"), quarantine())
    later = write_extract(root, "differentbreed", "events", END, END.replace(hour=12), orders("erased"), quarantine())
    assert purge_email(root, "erased@example.com") == 2
    assert read_orders([later.orders]).num_rows == 0
    assert len(staged_files(root)) == 4
    remaining = read_orders([f for f in staged_files(root) if "orders" in f])
    assert remaining["customer_ref"].to_pylist() == ["kept"]
