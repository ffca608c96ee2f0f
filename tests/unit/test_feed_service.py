"""The converted.in contract: envelope, keys and types, paging arithmetic, tokens, bad input."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from include.config import FeedConfig
from include.feed_service import create_app, envelope
from include.schema import FEED_CUSTOMER_KEYS, FEED_ENVELOPE_KEYS, ORDER_SCHEMA
from include.warehouse.order_state import load_orders
from include.warehouse.publish import publish_customers

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
CONFIG = FeedConfig.model_validate(
    {
        "feeds": [
            {
                "name": "gb",
                "token_env": "TEST_TOKEN_GB",
                "currency": "GBP",
                "store": {
                    "name": "GB shop",
                    "currency": "GBP",
                    "time_zone": "Europe/London",
                    "email": "gb@example.com",
                    "country": "United Kingdom",
                    "country_code": "GB",
                    "description": "vouchers",
                },
                "sources": {"giftpro_domains": ["1"]},
            },
            {
                "name": "ie",
                "token_env": "TEST_TOKEN_IE",
                "currency": "EUR",
                "store": {
                    "name": "IE shop",
                    "currency": "EUR",
                    "time_zone": "Europe/Dublin",
                    "email": "ie@example.com",
                    "country": "Ireland",
                    "country_code": "IE",
                },
                "sources": {"giftpro_domains": ["2"]},
            },
        ]
    }
)
GB_CUSTOMERS = 237
IE_CUSTOMERS = 12


def order(n, domain, email, total_minor, *, consent=True, name="Zoë Brontë", phone=None):
    first, _, last = name.partition(" ")
    return {
        "source": "giftpro",
        "domain": domain,
        "order_id": str(n),
        "email_norm": email,
        "created_at": T0 + timedelta(minutes=n),
        "changed_at": T0 + timedelta(minutes=n),
        "status": "Complete",
        "successful": True,
        "total_minor": total_minor,
        "currency": "GBP" if domain == "1" else "EUR",
        "first_name": first or None,
        "last_name": last or None,
        "phone": phone,
        "marketing_opt_in": consent,
        "customer_ref": None,
        "version_hash": str(n),
    }


@pytest.fixture
def client(warehouse, monkeypatch):
    monkeypatch.setenv("TEST_TOKEN_GB", "token-gb")
    monkeypatch.setenv("TEST_TOKEN_IE", "token-ie")
    rows = [
        order(i, "1", f"gb{i:04d}@example.com", 100 * i + 5, phone="+447700900123" if i % 3 else None)
        for i in range(GB_CUSTOMERS)
    ]
    rows += [order(1000, "1", "gb0001@example.com", 10), order(1001, "1", "gb0001@example.com", 20)]
    rows += [order(2000, "1", "noconsent@example.com", 999, consent=False)]
    rows += [order(3000 + i, "2", f"ie{i}@example.com", 1_234_567_891, name="صالح عادل") for i in range(IE_CUSTOMERS)]
    load_orders(warehouse, pa.Table.from_pylist(rows, schema=ORDER_SCHEMA), [], "r1")
    publish_customers(warehouse, CONFIG, "r1")
    return TestClient(create_app(CONFIG, warehouse))


def customers(client, **form):
    return client.post("/convertedin/customers", data=form)


def test_every_key_type_and_order(client):
    body = customers(client, token="token-gb", page=1, par_page=50).json()
    assert tuple(body) == FEED_ENVELOPE_KEYS  # these keys, in Laravel's order
    for row in body["data"]:
        assert tuple(row) == FEED_CUSTOMER_KEYS
        assert isinstance(row["id"], int) and isinstance(row["orders_count"], int)
        assert isinstance(row["total_spent"], (int, float)) and not isinstance(row["total_spent"], bool)
        assert all(isinstance(row[k], str) for k in ("email", "first_name", "last_name", "currency", "registered_at"))
        assert row["phone"] is None or isinstance(row["phone"], str)
        assert datetime.strptime(row["registered_at"], "%Y-%m-%d %H:%M:%S")
        assert row["gender"] in ("male", "female", "unknown")


@pytest.mark.parametrize("per_page", [1, 7, 50, 79, 100, 237, 1000])
def test_envelope_arithmetic_and_a_full_walk(client, per_page):
    last_page = math.ceil(GB_CUSTOMERS / per_page)
    seen = []
    for page in range(1, last_page + 2):
        body = customers(client, token="token-gb", page=page, par_page=per_page).json()
        expected_rows = max(0, min(per_page, GB_CUSTOMERS - (page - 1) * per_page))
        assert len(body["data"]) == expected_rows
        assert (body["current_page"], body["per_page"], body["total"], body["last_page"]) == (
            page,
            per_page,
            GB_CUSTOMERS,
            last_page,
        )
        if expected_rows:
            assert body["from"] == (page - 1) * per_page + 1 and body["to"] == body["from"] + expected_rows - 1
        else:
            assert body["from"] is None and body["to"] is None  # past the last page
        seen += [r["id"] for r in body["data"]]
    assert seen == sorted(seen) and len(set(seen)) == GB_CUSTOMERS


def test_per_page_spellings_and_defaults(client):
    assert customers(client, token="token-gb", per_page=5).json()["per_page"] == 5
    assert customers(client, token="token-gb", par_page=6, per_page=5).json()["per_page"] == 6
    body = customers(client, token="token-gb").json()
    assert (body["current_page"], body["per_page"], len(body["data"])) == (1, 100, 100)


def test_penny_exact_totals_and_non_ascii(client):
    gb = {r["email"]: r for r in customers(client, token="token-gb", par_page=1000).json()["data"]}
    # 105 + 10 + 20 pence: 1.35 exactly, not 1.3499999.
    assert gb["gb0001@example.com"]["total_spent"] == 1.35 and gb["gb0001@example.com"]["orders_count"] == 3
    assert "noconsent@example.com" not in gb
    ie = customers(client, token="token-ie", par_page=1000).json()["data"]
    assert {r["total_spent"] for r in ie} == {12345678.91}
    assert {(r["first_name"], r["last_name"], r["currency"]) for r in ie} == {("صالح", "عادل", "EUR")}
    assert ie[0]["registered_at"].startswith("2026-03-03")  # Europe/Dublin, GMT in March


def test_tokens_select_and_isolate_feeds(client, monkeypatch):
    ie = customers(client, token="token-ie", par_page=1000).json()
    assert ie["total"] == IE_CUSTOMERS and all(r["email"].startswith("ie") for r in ie["data"])
    monkeypatch.delenv("TEST_TOKEN_IE")
    response = customers(client, token="token-ie")
    assert response.status_code == 401 and "data" not in response.json()


@pytest.mark.parametrize(
    "form, status, word",
    [
        ({}, 401, "token"),
        ({"token": ""}, 401, "token"),
        ({"token": "wrong"}, 401, "token"),
        ({"token": "token-gb", "page": "abc"}, 400, "page"),
        ({"token": "token-gb", "page": "0"}, 400, "page"),
        ({"token": "token-gb", "page": "-1"}, 400, "page"),
        ({"token": "token-gb", "page": str(10**7)}, 400, "page"),
        ({"token": "token-gb", "page": "1.5"}, 400, "page"),
        ({"token": "token-gb", "par_page": "0"}, 400, "par_page"),
        ({"token": "token-gb", "par_page": "-5"}, 400, "par_page"),
        ({"token": "token-gb", "par_page": "x"}, 400, "par_page"),
        ({"token": "token-gb", "par_page": str(10**6)}, 400, "par_page"),
        ({"token": "token-gb", "per_page": "1001"}, 400, "per_page"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_no_data(client, form, status, word):
    response = customers(client, **form)
    assert response.status_code == status
    body = response.json()
    assert "data" not in body and body["code"] == status and word in body["message"]


def test_storeinfo(client):
    body = client.post("/convertedin/storeinfo", data={"token": "token-ie"}).json()
    assert body == {
        "code": 200,
        "data": {
            "name": "IE shop",
            "currency": "EUR",
            "time_zone": "Europe/Dublin",
            "email": "ie@example.com",
            "description": "",
            "country": "Ireland",
            "country_code": "IE",
        },
    }
    assert client.post("/convertedin/storeinfo", data={"token": "nope"}).status_code == 401


def test_health_names_no_feed_without_its_token(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    body = client.get("/healthz", headers={"Authorization": "Bearer token-ie"}).json()
    assert body == {"status": "ok", "feed": {"name": "ie", "total": IE_CUSTOMERS}}


@given(total=st.integers(0, 2500), per_page=st.integers(1, 1000), data=st.data())
def test_envelope_follows_laravel(total, per_page, data):
    last = max(1, math.ceil(total / per_page))
    page = data.draw(st.integers(1, last + 2))
    n = max(0, min(per_page, total - (page - 1) * per_page))
    body = envelope(page, per_page, total, [{}] * n)
    assert body["last_page"] == last and body["total"] == total
    if n:
        assert body["from"] == (page - 1) * per_page + 1 <= body["to"] == min(total, page * per_page)
    else:
        assert body["from"] is None and body["to"] is None and page > math.ceil(total / per_page)
