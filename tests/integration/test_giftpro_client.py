"""The GiftPro client against the sandbox over real HTTP: paging, windows, a list that moves
while it is read, retries, and refused keys."""

from __future__ import annotations

import json

import pytest

from include.config import GiftProSettings
from include.sources.giftpro import GiftProClient, extract_domain
from include.sources.http import SourceAuthError, SourceHttpError
from sandbox.giftpro import GiftProStore, seed_store, serve_in_thread

END = "2026-12-01 00:00:00"


@pytest.fixture
def sandbox():
    with serve_in_thread(seed_store(seed=7, orders=900)) as server:
        yield server


def connect(monkeypatch, url, key="gp_sandbox_key", sleep=None, **extra):
    conn = {"conn_type": "http", "host": url, "password": key}
    if extra:
        conn["extra"] = extra
    monkeypatch.setenv("AIRFLOW_CONN_GIFTPRO_DEFAULT", json.dumps(conn))
    return GiftProClient(backoff=0.01, max_attempts=4, **({"sleep": sleep} if sleep else {}))


def ids(orders):
    return [o["orderID"] for o in orders]


def on_second_request(store, change):
    """Run `change` on the store just before it answers the client's second list request.

    The client restarts each page at p=1 below the last dateCreated seen, so a hook on p=2 would
    never run: the hook on p=1 sets the real one on p=1 again. Returns a list that records it ran.
    """
    fired = []

    def second(store):
        change(store)
        fired.append(True)

    store.on_page(1, lambda store: store.on_page(1, second))
    return fired


def test_pages_until_the_list_is_exhausted(sandbox, monkeypatch):
    client = connect(monkeypatch, sandbox.url)
    expected = sorted(o["orderID"] for o in sandbox.store.dump() if o["domainID"] == 3521)
    got = ids(client.iter_orders("3521", None, END))
    assert len(expected) > 150 and sorted(got) == expected and len(got) == len(set(got))
    assert client.http.requests >= len(expected) // 50


def test_changed_window_bounds_are_exact(monkeypatch):
    store = GiftProStore()
    for minute, oid in ((0, 1), (30, 2), (59, 3)):
        store.add_order(orderID=oid, domainID=3521, dateCreated=f"2026-06-01 09:{minute:02d}:00")
    store.update(2, "2026-06-01 10:00:00")  # exactly the lower bound: in
    store.update(3, "2026-06-01 11:00:00")  # exactly the upper bound: out
    with serve_in_thread(store) as server:
        client = connect(monkeypatch, server.url)
        assert sorted(ids(client.iter_orders("3521", "2026-06-01 10:00:00", "2026-06-01 11:00:00"))) == [2]
        assert sorted(ids(client.iter_orders("3521", None, "2026-06-01 11:00:00"))) == [1, 2]


def test_new_orders_while_paging_are_neither_duplicated_nor_lose_others(sandbox, monkeypatch):
    client = connect(monkeypatch, sandbox.url)
    before = sorted(o["orderID"] for o in sandbox.store.dump() if o["domainID"] == 3521)

    def insert(store):
        for _ in range(60):  # more than a page: plain page numbers would repeat a whole page
            store.add_order(domainID=3521, dateCreated="2026-11-20 12:00:00", changed="2026-11-20 12:00:00")

    fired = on_second_request(sandbox.store, insert)
    got = ids(client.iter_orders("3521", None, "2026-11-01 00:00:00"))
    assert fired == [True] and len(got) == len(set(got)) and sorted(got) == before


def test_an_order_leaving_the_window_while_paging_pulls_no_other_out(sandbox, monkeypatch):
    client = connect(monkeypatch, sandbox.url)
    inside = sorted(
        (o for o in sandbox.store.dump() if o["domainID"] == 3521),
        key=lambda o: (o["dateCreated"], o["orderID"]),
        reverse=True,
    )
    newest = inside[0]["orderID"]
    # changed now: out of the window
    fired = on_second_request(sandbox.store, lambda store: store.update(newest, "2026-11-30 12:00:00"))
    got = ids(client.iter_orders("3521", None, "2026-11-01 00:00:00"))
    assert fired == [True] and sorted(got) == sorted(o["orderID"] for o in inside)


def test_a_page_of_one_timestamp_advances_by_page_number(monkeypatch):
    store = GiftProStore()
    for _ in range(120):
        store.add_order(domainID=3521, dateCreated="2026-06-01 09:00:00")
    store.add_order(domainID=3521, dateCreated="2026-05-01 09:00:00")
    with serve_in_thread(store) as server:
        got = ids(connect(monkeypatch, server.url).iter_orders("3521", None, END))
    assert len(got) == len(set(got)) == 121


@pytest.mark.parametrize("kind", ["429", "500", "503", "malformed"])
def test_transient_failures_are_retried(sandbox, monkeypatch, kind):
    client = connect(monkeypatch, sandbox.url)
    sandbox.store.faults.add(kind, count=2, value=0)
    got = ids(client.iter_orders("4101", None, END))
    assert sorted(got) == sorted(o["orderID"] for o in sandbox.store.dump() if o["domainID"] == 4101)
    assert client.http.retries == 2


def test_retry_after_is_honoured(sandbox, monkeypatch):
    sleeps = []
    client = connect(monkeypatch, sandbox.url, sleep=sleeps.append)
    sandbox.store.faults.add("429", count=1, value=3)
    assert list(client.iter_orders("4102", None, END))
    assert sleeps == [3.0]  # the sandbox's Retry-After, read off the wire; asked for, not waited


def test_timeouts_are_retried(sandbox, monkeypatch):
    client = connect(monkeypatch, sandbox.url, timeout=0.3)
    sandbox.store.faults.add("delay", count=1, value=1.0)
    assert list(client.iter_orders("4102", None, END))
    assert client.http.retries == 1


def test_persistent_failure_gives_up_clearly(sandbox, monkeypatch):
    client = connect(monkeypatch, sandbox.url)
    sandbox.store.faults.add("malformed", count=10)
    with pytest.raises(SourceHttpError, match="gave up after 4 attempts.*not JSON"):
        list(client.iter_orders("3521", None, END))


def test_a_wrong_key_fails_at_once_without_showing_it(sandbox, monkeypatch):
    client = connect(monkeypatch, sandbox.url, key="gp_wrong_secret_key")
    with pytest.raises(SourceAuthError) as raised:
        list(client.iter_orders("3521", None, END))
    assert "gp_wrong_secret_key" not in str(raised.value) and client.http.requests == 1


def test_key_in_a_header_and_the_scheme_is_not_sent_as_a_header(sandbox, monkeypatch):
    client = connect(monkeypatch, sandbox.url, auth="header", auth_header="X-API-Key")
    assert "auth" not in client.http.session.headers and "auth_header" not in client.http.session.headers
    assert client.http.session.auth is None
    assert list(client.iter_orders("4101", None, END))


def test_extract_quarantines_bad_records_with_their_reason(sandbox, monkeypatch):
    client = connect(monkeypatch, sandbox.url)
    result = extract_domain(client, "3521", None, END, GiftProSettings(), "GBP")
    reasons = sorted(result.quarantine["reason"].to_pylist())
    assert reasons == [
        "marketingOptedIn: not a yes/no value 'maybe'",
        "missing email address",
        "negative amount '-12.50' in total (refunds are flagged, never negative)",
        "unknown currency 'XYZ'",
        "unparseable amount 'n/a'",
    ]
    assert result.stats["orders"] + result.stats["quarantined"] == sum(
        1 for o in sandbox.store.dump() if o["domainID"] == 3521
    )
    assert set(result.orders["currency"].to_pylist()) == {"GBP"}
