"""The Different Breed client against its sandbox over real HTTP: paging with limit/skip, the
changed window, customers new to the warehouse, deletions, the rate limit, retries, refusals;
and the sandbox's own rules."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest

from include.config import DifferentBreedSettings
from include.sources.differentbreed import DifferentBreedClient, SlidingWindowLimiter, extract_customers
from include.sources.http import SourceAuthError
from sandbox import differentbreed

UTC = UTC
UPPER = datetime(2026, 12, 1, tzinfo=UTC)
SETTINGS = DifferentBreedSettings(success_statuses=("paid",))


@pytest.fixture
def sandbox():
    store = differentbreed.DifferentBreedStore()
    ann = store.create_customer("  Ann@Example.com", "Ann", "Lee", "2026-01-01T00:00:00Z", cust_id="c1")
    for n in range(250):  # three pages of 100
        store.add_order(ann["cust_id"], f"2026-02-01T{n // 60:02d}:{n % 60:02d}:00Z", total=10.0, order_id=f"o{n:03d}")
    store.update_order("o000", "2026-06-01T12:00:00Z", status="refunded")
    store.create_customer("bob@example.com", "Bob", "", "2026-03-01T00:00:00Z", cust_id="c2")
    store.add_order("c2", "2026-03-02T00:00:00Z", total="n/a", order_id="bad")
    with differentbreed.serve_in_thread(store) as server:
        yield server


def client(monkeypatch, url, key="db_sandbox_key", **options):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DIFFERENTBREED_DEFAULT",
        json.dumps({"conn_type": "http", "host": f"{url}/client/api/v1", "password": key}),
    )
    return DifferentBreedClient(profile="ampress-events", backoff=0.01, **options)


def test_new_customers_get_their_whole_history_others_the_window(sandbox, monkeypatch):
    c = client(monkeypatch, sandbox.url)
    whole = extract_customers(c, ["c1", "c2"], {"c1", "c2"}, datetime(2026, 5, 1, tzinfo=UTC), UPPER, SETTINGS, "GBP")
    assert whole.stats["orders"] == 250 and whole.orders["order_id"].unique().to_pylist().__len__() == 250
    assert whole.quarantine["reason"].to_pylist() == ["unparseable amount 'n/a'"]
    assert whole.quarantine["customer_ref"].to_pylist() == ["c2"]
    assert set(whole.orders["email_norm"].to_pylist()) == {"ann@example.com"}
    assert sum(whole.orders["total_minor"].to_pylist()) == 249 * 1000  # the refunded order counts nothing
    recent = extract_customers(c, ["c1"], set(), datetime(2026, 5, 1, tzinfo=UTC), UPPER, SETTINGS, "GBP")
    assert recent.orders["order_id"].to_pylist() == ["o000"]  # only the refund changed since May
    profile = recent.profiles.to_pylist()[0]
    assert (profile["customer_ref"], profile["first_name"], profile["registered_at"]) == (
        "c1",
        "Ann",
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_customer_deleted_at_the_source_is_reported(sandbox, monkeypatch):
    sandbox.store.delete_customer("c2")
    result = extract_customers(
        client(monkeypatch, sandbox.url), ["c1", "c2", "never-existed"], set(), None, UPPER, SETTINGS, "GBP"
    )
    assert result.deleted == ["c2", "never-existed"] and set(result.profiles["customer_ref"].to_pylist()) == {"c1"}


def test_wrong_key_is_refused_at_once(sandbox, monkeypatch):
    with pytest.raises(SourceAuthError) as raised:
        client(monkeypatch, sandbox.url, key="db_wrong_key").get_customer("c1")
    assert "db_wrong_key" not in str(raised.value)


def test_the_rate_limit_is_kept_and_a_429_waited_out(monkeypatch):
    store = differentbreed.DifferentBreedStore(rate_limit=10, rate_period=1.0)
    store.create_customer("a@example.com", "A", "B", "2026-01-01T00:00:00Z", cust_id="c1")
    with differentbreed.serve_in_thread(store) as server:
        c = client(monkeypatch, server.url, rate_limit=10, rate_period=1.0)
        started = time.monotonic()
        for _ in range(25):
            assert c.get_customer("c1")
        assert time.monotonic() - started >= 2.0 and c.http.retries == 0  # paced, never refused
        store.faults.add("429", count=1, value=0.2)
        store.faults.add("503", count=1)
        assert c.get_customer("c1") and c.http.retries == 2


def test_sliding_window_limiter_shares_its_budget_between_threads():
    import threading

    limiter = SlidingWindowLimiter(5, 0.5)
    stamps = []
    lock = threading.Lock()

    def work():
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert all(stamps[i + 5] - stamps[i] >= 0.49 for i in range(len(stamps) - 5))


def test_sandbox_contract(sandbox):
    headers = {"admin-key": "db_sandbox_key", "profile": "ampress-events", "customer": "c1"}
    page = httpx.get(f"{sandbox.url}/client/api/v1/orders", params={"limit": 100, "skip": 200}, headers=headers).json()
    assert len(page["payload"]) == 50 and page["meta"]["total"] == 250
    assert httpx.get(f"{sandbox.url}/client/api/v1/orders", headers={**headers, "profile": "other"}).status_code == 401
    assert httpx.get(f"{sandbox.url}/client/api/v1/customer", headers={**headers, "customer": "zz"}).status_code == 404
    assert httpx.get(f"{sandbox.url}/client/api/v1/customer/delete", headers=headers).status_code == 200
    assert httpx.get(f"{sandbox.url}/client/api/v1/orders", headers=headers).status_code == 404
