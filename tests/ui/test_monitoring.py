"""The monitoring data: the publish history written after a publish, the overview the Customer
feeds page renders (numbers equal the warehouse's, quarantined records masked), freshness and
the run note."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from include.config import load_config
from include.monitoring import freshness, mask_email, mask_record, overview, record_publish, run_note, stale_feeds
from include.schema import QUARANTINE_SCHEMA, to_table
from include.staging import write_extract
from include.warehouse.order_state import LoadedWindow, load_orders
from include.warehouse.publish import publish_customers
from include.warehouse.run_log import current_feeds, history, recent_runs
from tests.ui.fixtures import order_rows

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}")


def test_mask_email():
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_email(" Bob.Smith@Mail.example.org ") == "B***@Mail.example.org"
    assert mask_email("not-an-address") == "***"
    assert mask_email("@example.com") == "***"


def test_mask_record_masks_every_address_and_email_field():
    raw = json.dumps(
        {
            "emailAddress": "carol@example.com",
            "customer": {"email": "broken@@example", "note": "ask dave@example.co.uk"},
            "total": "12.50",
            "items": ["erin@example.net"],
        }
    )
    masked = mask_record(raw)
    assert not EMAIL.search(masked.replace("***@", "")), masked
    data = json.loads(masked)
    assert data["emailAddress"] == "c***@example.com"
    assert data["customer"]["email"] == "b***@example"  # malformed, still masked
    assert data["customer"]["note"] == "ask d***@example.co.uk"
    assert data["items"] == ["e***@example.net"]
    assert data["total"] == "12.50"
    assert mask_record("not json frank@example.com") == "not json f***@example.com"


def test_freshness_against_the_schedule():
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    at = lambda hours: int((now - timedelta(hours=hours)).timestamp())  # noqa: E731
    assert freshness(at(0.5), now) == {"age_seconds": 1800, "intervals": 0.5, "status": "ok"}
    assert freshness(at(2), now)["status"] == "due"
    assert freshness(at(3.5), now)["status"] == "late"
    assert freshness(None, now)["status"] == "never published"


def _publish_run(wh, config, staging, run_id, orders, quarantine, hour):
    start = datetime(2026, 11, 2, hour, tzinfo=UTC)
    end = start + timedelta(hours=1)
    files = write_extract(staging, "giftpro", "3521", start, end, orders, quarantine)
    loaded = load_orders(wh, orders, [LoadedWindow("giftpro", "3521", None, int(end.timestamp()))], run_id)
    published = publish_customers(wh, config, run_id)
    window = {"start": start.isoformat(), "end": end.isoformat(), "origin": "params", "rebuild": False}
    extract = {
        "source": "giftpro",
        "domain": "3521",
        "quarantine_path": files.quarantine,
        "stats": {"orders": orders.num_rows, "quarantined": quarantine.num_rows, "requests": 3},
    }
    return record_publish(
        wh, config, run_id, window, [extract], {**loaded, "quarantined": quarantine.num_rows}, published
    )


def test_history_and_overview_equal_the_warehouse(sqlite_warehouse, tmp_path):
    wh, config = sqlite_warehouse, load_config()
    staging = f"file://{tmp_path / 'staging'}"
    bad = to_table(
        [
            {
                "source": "giftpro",
                "domain": "3521",
                "order_id": "77",
                "customer_ref": None,
                "reason": "malformed email address",
                "raw": json.dumps({"orderID": 77, "emailAddress": "grace@@example.com", "total": "5"}),
            },
            {
                "source": "giftpro",
                "domain": "3521",
                "order_id": "78",
                "customer_ref": None,
                "reason": "unparseable amount 'x'",
                "raw": json.dumps({"orderID": 78, "emailAddress": "heidi@example.com", "total": "x"}),
            },
        ],
        QUARANTINE_SCHEMA,
    )
    first = _publish_run(wh, config, staging, "run-1", order_rows(3, start=0), bad, 0)
    _publish_run(wh, config, staging, "run-2", order_rows(5, start=3), QUARANTINE_SCHEMA.empty_table(), 1)

    assert first["feeds"]["ampress"]["customers"] == 3
    assert first["sources"]["giftpro"] == {
        "orders": 3,
        "quarantined": 2,
        "requests": 3,
        "extracts": 1,
        "deleted_at_source": 0,
    }
    runs = recent_runs(wh)
    assert [r.run_id for r in runs if r.feed == "ampress"] == ["run-2", "run-1"]
    assert [h.customers for h in history(wh, "ampress")] == [3, 8]

    now = datetime.now(UTC)
    data = overview(wh, now=now)
    [ampress] = [f for f in data["feeds"] if f["feed"] == "ampress"]
    (_, customers, orders, spent, published_at, run_id) = next(f for f in current_feeds(wh) if f[0] == "ampress")
    with wh.reader() as cur:
        cur.execute("SELECT COUNT(*), SUM(orders_count), SUM(total_spent_minor) FROM customers WHERE feed = 'ampress'")
        assert cur.fetchone() == (customers, orders, spent) == (8, 8, 8 * 1250)
    assert (ampress["customers"], ampress["orders"], ampress["total_spent"]) == (8, 8, 100.0)
    assert ampress["run_id"] == "run-2" and ampress["freshness"]["status"] == "ok"
    assert [c for _, c in ampress["history"]] == [3, 8]
    assert [r["run_id"] for r in data["runs"]] == ["run-2", "run-1"]
    assert data["runs"][1]["quarantined"] == 2 and data["runs"][1]["window_origin"] == "params"
    q = {s["run_id"]: s for s in data["quarantine"]}
    assert q["run-1"]["reasons"] == {"malformed email address": 1, "unparseable amount 'x'": 1}
    assert q["run-2"]["reasons"] == {}
    text = json.dumps(data)
    assert "grace@" not in text and "heidi@" not in text and "h***@example.com" in text
    assert stale_feeds(wh, now + timedelta(hours=5)) == ["ampress", "seaview"]
    assert stale_feeds(wh, now + timedelta(hours=2)) == []


def test_quarantine_file_gone_is_said_not_raised(sqlite_warehouse, tmp_path):
    wh, config = sqlite_warehouse, load_config()
    staging = tmp_path / "staging"
    bad = to_table(
        [
            {
                "source": "giftpro",
                "domain": "3521",
                "order_id": "1",
                "customer_ref": None,
                "reason": "missing email address",
                "raw": "{}",
            }
        ],
        QUARANTINE_SCHEMA,
    )
    _publish_run(wh, config, f"file://{staging}", "run-1", order_rows(1), bad, 0)
    for path in staging.rglob("quarantine*.parquet"):
        path.unlink()
    [section] = overview(wh)["quarantine"]
    assert section["records"] == [] and "no longer staged" in section["notes"][0]


def test_run_note_says_the_window_loaded():
    summary = {
        "window": {"start": "2026-11-01T00:00:00+00:00", "end": "2026-11-02T00:00:00+00:00", "origin": "params"},
        "rebuild": False,
        "feeds": {"ampress": {"customers": 1200, "orders": 3400, "total_spent": 70545.49, "currency": "GBP"}},
        "sources": {
            "differentbreed": {
                "orders": 4,
                "quarantined": 1,
                "requests": 239,
                "extracts": 3,
                "deleted_at_source": 0,
                "customers_polled": 120,
            }
        },
        "orders_changed": 4,
        "recomputed": 3,
        "quarantined": 1,
    }
    note = run_note(summary)
    assert note.startswith("**Window loaded:** 2026-11-01 00:00 UTC → 2026-11-02 00:00 UTC (explicit window")
    assert "| ampress | 1,200 | 3,400 | 70,545.49 GBP |" in note
    assert "120 customers polled, 0 newly deleted at the source" in note
