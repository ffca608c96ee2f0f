"""The Different Breed client's paging and normalisation, on a fake transport (no server, no
sleeping): limit/skip until the total, an empty page ends the walk whatever the total says, the
window's dates and the headers it sends, deletions, and odd records to quarantine reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from include.config import DifferentBreedSettings
from include.sources.differentbreed import PAGE_SIZE, DifferentBreedClient, extract_customers
from tests.unit.fake_transport import Reply, connect, wire

SINCE, UPPER = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
SETTINGS = DifferentBreedSettings(success_statuses=("paid",))
ANN = {"cust_id": "c1", "email": " Ann@Example.com", "forename": "Ann", "surname": "Lee"}
ANN |= {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z"}


def order(n, **fields):
    return {
        "order_id": f"o{n:03d}",
        "created_at": "2026-02-01T10:00:00Z",
        "updated_at": "2026-02-01T10:00:00Z",
        "status": "paid",
        "total": 10.0,
        "currency": "GBP",
        "marketing_opt_in": True,
        **fields,
    }


def api(customers: dict[str, dict | None], orders: dict[str, list[dict]], total_claimed: int | None = None):
    """A handler answering /customer and /orders (limit/skip) as the API does."""

    def handle(sent):
        who = sent.headers.get("customer")
        if customers.get(who) is None:
            return Reply(404, {"error": "customer_not_found", "message": "customer not found"})
        if sent.path.endswith("/customer"):
            return Reply(200, {"payload": customers[who]})
        assert sent.path.endswith("/orders"), sent.path
        rows = orders.get(who, [])
        skip, limit = int(sent.params["skip"]), int(sent.params["limit"])
        total = len(rows) if total_claimed is None else total_claimed
        return Reply(200, {"payload": rows[skip : skip + limit], "meta": {"total": total}})

    return handle


@pytest.fixture
def client(monkeypatch):
    connect(monkeypatch, "differentbreed_default", host="http://db.test/client/api/v1", key="db-key")
    return DifferentBreedClient(profile="ampress-events", sleep=pytest.fail)


def test_limit_and_skip_until_the_total(client):
    transport = wire(client, api({"c1": ANN}, {"c1": [order(n) for n in range(250)]}))
    got = client.iter_orders("c1", SINCE, UPPER)
    assert [o["order_id"] for o in got] == [f"o{n:03d}" for n in range(250)]
    assert [(s.params["skip"], s.params["limit"]) for s in transport.sent] == [
        ("0", str(PAGE_SIZE)),
        ("100", str(PAGE_SIZE)),
        ("200", str(PAGE_SIZE)),
    ]
    first = transport.sent[0]
    assert (first.params["date_from"], first.params["date_to"]) == ("2026-05-01T00:00:00Z", "2026-12-01T00:00:00Z")
    assert (first.headers["admin-key"], first.headers["profile"], first.headers["customer"]) == (
        "db-key",
        "ampress-events",
        "c1",
    )
    assert first.path == "/client/api/v1/orders" and "Authorization" not in first.headers


def test_an_exact_multiple_of_the_page_stops_at_the_total(client):
    transport = wire(client, api({"c1": ANN}, {"c1": [order(n) for n in range(200)]}))
    assert len(client.iter_orders("c1", None, UPPER)) == 200
    assert len(transport.sent) == 2
    assert "date_from" not in transport.sent[0].params  # a customer new to the warehouse: everything


def test_an_empty_page_ends_the_walk_whatever_the_total_claims(client):
    transport = wire(client, api({"c1": ANN}, {"c1": [order(n) for n in range(120)]}, total_claimed=10_000))
    assert len(client.iter_orders("c1", None, UPPER)) == 120
    assert [s.params["skip"] for s in transport.sent] == ["0", "100", "120"]


def test_an_order_repeated_across_pages_is_kept_once(client):
    rows = [order(n) for n in range(100)] + [order(99), order(100)]
    wire(client, api({"c1": ANN}, {"c1": rows}))
    assert [o["order_id"] for o in client.iter_orders("c1", None, UPPER)][-2:] == ["o099", "o100"]
    assert len(client.iter_orders("c1", None, UPPER)) == 101


def test_a_customer_the_source_no_longer_knows_is_none_and_has_no_orders(client):
    wire(client, api({"c1": None}, {}))
    assert client.get_customer("c1") is None
    assert client.iter_orders("c1", None, UPPER) == []


def test_odd_records_are_quarantined_with_their_reason_and_the_rest_kept(client):
    odd = [
        (order(1, order_id=""), "missing order_id"),
        (order(2, total="n/a"), "unparseable amount 'n/a'"),
        (order(3, currency="EUR"), "currency EUR differs from the feed currency GBP"),
        (order(4, created_at="yesterday", updated_at=None), "unparseable date 'yesterday'"),
        (order(5, currency="XYZ"), "unknown currency 'XYZ'"),
    ]
    customers = {
        "c1": ANN,
        "c2": {**ANN, "cust_id": "c2", "email": "not-an-email"},
        "c3": {"email": "x@example.com"},  # no cust_id, no dates
        "c4": None,  # deleted at the source
    }
    orders = {"c1": [order(0), order(6, status="refunded")] + [raw for raw, _ in odd]}
    wire(client, api(customers, orders))
    result = extract_customers(client, ["c1", "c2", "c3", "c4"], {"c1"}, SINCE, UPPER, SETTINGS, "GBP")
    assert result.orders["order_id"].to_pylist() == ["o000", "o006"]
    assert result.orders["total_minor"].to_pylist() == [1000, 0]  # refunded: kept, worth nothing
    assert set(result.orders["email_norm"].to_pylist()) == {"ann@example.com"}
    assert sorted(result.quarantine["customer_ref"].to_pylist()) == ["c1"] * len(odd) + ["c2", "c3"]
    quarantined = sorted(result.quarantine["reason"].to_pylist())
    assert quarantined == sorted(
        [reason for _, reason in odd] + ["customer: malformed email address", "customer: 'cust_id'"]
    )
    assert result.deleted == ["c4"]
    assert result.profiles["customer_ref"].to_pylist() == ["c1"]
    assert (result.stats["orders"], result.stats["quarantined"], result.stats["customers"]) == (2, 7, 4)
