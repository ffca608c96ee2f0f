"""The page renders what it is given and nothing it should not: source text is escaped (a
quarantined record is whatever a source sent), and the chart is inline SVG."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from customer_feeds import render_page  # noqa: E402

DATA = {
    "generated_at": 1_795_000_000,
    "schedule_interval_seconds": 3600,
    "freshness_intervals": 3,
    "feeds": [
        {
            "feed": "ampress",
            "customers": 1234,
            "orders": 5678,
            "spent_minor": 12345678,
            "total_spent": 123456.78,
            "currency": "GBP",
            "published_at": 1_794_999_000,
            "run_id": "scheduled__2026-11-19T09:00:00+00:00",
            "freshness": {"age_seconds": 1000, "intervals": 0.28, "status": "ok"},
            "history": [(1_794_990_000, 1200), (1_794_995_000, 1210), (1_794_999_000, 1234)],
        }
    ],
    "runs": [
        {
            "run_id": "scheduled__2026-11-19T09:00:00+00:00",
            "published_at": 1_794_999_000,
            "window_start": 1_794_992_400,
            "window_end": 1_794_996_000,
            "window_origin": "data_interval",
            "orders_changed": 12,
            "recomputed": 9,
            "quarantined": 1,
            "full_rebuild": False,
            "feeds": {"ampress": {"customers": 1234, "orders": 5678}},
        }
    ],
    "quarantine": [
        {
            "run_id": "scheduled__2026-11-19T09:00:00+00:00",
            "reasons": {"unparseable amount '<b>'": 1},
            "records": [
                {
                    "source": "giftpro",
                    "domain": "3521",
                    "order_id": "9",
                    "customer_ref": None,
                    "reason": "unparseable amount '<b>'",
                    "raw": '{"customerName": "<script>alert(1)</script>", "emailAddress": "m***@example.com"}',
                }
            ],
            "notes": [],
        }
    ],
}


def test_numbers_chart_and_escaping():
    page = render_page(DATA)
    assert '<b data-field="customers">1,234</b>' in page
    assert '<b data-field="total_spent">123,456.78 GBP</b>' in page
    assert page.count("<polyline") == 1 and page.count("<circle") == 3 and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "unparseable amount &#x27;&lt;b&gt;&#x27;" in page
    assert "m***@example.com" in page and "data interval" in page


def test_empty_warehouse():
    page = render_page({**DATA, "feeds": [], "runs": [], "quarantine": []})
    assert "No feed published yet" in page and "No publish recorded yet" in page


def test_the_page_finds_the_warehouse_through_the_airflow_connection(monkeypatch, tmp_path):
    import customer_feeds

    from include.monitoring import overview
    from include.warehouse import airflow_url

    monkeypatch.delenv("CUSTOMER_FEED_DB_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_CUSTOMER_FEED_DB", raising=False)
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    monkeypatch.setattr(airflow_url, "url_from_airflow", lambda conn_id: url if conn_id == "customer_feed_db" else None)
    wh = customer_feeds._warehouse()
    assert wh.url == url
    assert "No feed published yet" in render_page(overview(wh))  # the tables exist: an empty page
