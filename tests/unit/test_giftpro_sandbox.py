"""The GiftPro sandbox's seed and its ground truth, checked by hand; and the normaliser's rules.
The sandbox over HTTP: tests/integration/test_giftpro_sandbox_http.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.config import GiftProSettings, load_config
from include.sources.giftpro import normalize_order
from include.sources.normalize import BadRecord
from sandbox.giftpro import GiftProStore, expected_customers, seed_store

INDEXED = seed_store(seed=3, orders=400)
FILTER_VALUES = ["2025-06-01 00:00:00", "2026-01-01 12:00:00", "2026-03-29 00:59:59", "2026-10-25 01:30:00"]


@given(
    domain=st.sampled_from([None, 3521, 4101, 7]),
    filters=st.dictionaries(
        st.sampled_from(
            [
                f"{prefix}{field}{op}"
                for prefix in ("", "orders.")
                for field in ("dateCreated", "changed")
                for op in ("", "[gte]", "[gt]", "[lte]", "[lt]")
            ]
        ),
        st.sampled_from(FILTER_VALUES),
        max_size=3,
    ),
    page=st.integers(1, 4),
)
def test_pages_equal_filtering_and_sorting_the_whole_store(domain, filters, page):
    """The store serves pages from a sorted index; the answer is what a scan of every order gives."""
    store = INDEXED
    ops = {"": str.__eq__, "[gte]": str.__ge__, "[gt]": str.__gt__, "[lte]": str.__le__, "[lt]": str.__lt__}
    query = {k: v for k, v in filters.items()}
    expected = [
        o
        for o in store.dump()
        if (domain is None or o["domainID"] == domain)
        and all(
            ops[k[k.find("[") :] if "[" in k else ""](o[k.removeprefix("orders.").split("[")[0]], v)
            for k, v in filters.items()
        )
    ]
    expected.sort(key=lambda o: (o["dateCreated"], o["orderID"]), reverse=True)
    if domain is not None:
        query["domainID"] = str(domain)
    query["p"] = str(page)
    got = store.list_orders(query)
    assert [o["orderID"] for o in got] == [o["orderID"] for o in expected[(page - 1) * 50 : page * 50]]


def test_seed_is_reproducible_and_covers_the_edge_cases():
    a, b = seed_store(seed=11, orders=500).dump(), seed_store(seed=11, orders=500).dump()
    assert a == b
    assert any(o["emailAddress"] != o["emailAddress"].strip() for o in a)
    assert any(o["emailAddress"] != o["emailAddress"].lower() for o in a)
    assert any(o["refunded"] for o in a) and any(o["status"] == "Chargeback" for o in a)
    assert any(o["dateCreated"].startswith("2026-10-25 01:") for o in a)
    assert any(o["domainID"] == 9999 for o in a) and any(not o["customerName"].isascii() for o in a)


def _truth(store):
    return expected_customers(store.dump(), load_config())


def test_ground_truth_by_hand():
    store = GiftProStore()
    store.add_order(
        orderID=1,
        domainID=3521,
        dateCreated="2026-03-01 10:00:00",
        emailAddress=" Ann@Example.com ",
        total=10.10,
        customerName="Ann Lee",
        marketingOptedIn=True,
    )
    store.add_order(
        orderID=2,
        domainID=3522,
        dateCreated="2026-04-01 10:00:00",
        emailAddress="ann@example.com",
        total=20.20,
        customerName="Ann Lee-Smith",
        marketingOptedIn=True,
        phoneNumber="+44 1",
    )
    store.add_order(
        orderID=3, domainID=9999, dateCreated="2026-05-01 10:00:00", emailAddress="ann@example.com", total=99
    )
    truth = _truth(store)
    ann = truth[("ampress", "ann@example.com")]
    assert (ann["orders_count"], ann["total_spent_minor"], ann["last_name"], ann["phone"]) == (
        2,
        3030,
        "Lee-Smith",
        "+44 1",
    )
    assert ann["registered_at"] == "2026-03-01 10:00:00" and ann["accepts_marketing"]
    assert not any(key[0] != "ampress" for key in truth)  # domain 9999 feeds nothing

    store.refund(2, "2026-04-02 10:00:00")
    assert _truth(store)[("ampress", "ann@example.com")]["total_spent_minor"] == 1010
    store.edit_email(1, "ann.new@example.com", "2026-04-03 10:00:00")
    truth = _truth(store)
    assert truth[("ampress", "ann.new@example.com")]["orders_count"] == 1
    assert truth[("ampress", "ann@example.com")]["orders_count"] == 0
    store.set_consent(2, False, "2026-04-04 10:00:00")
    assert not _truth(store)[("ampress", "ann@example.com")]["accepts_marketing"]


RAW = {
    "orderID": 5,
    "domainID": 3521,
    "dateCreated": "2026-10-25 01:30:00",
    "changed": "2026-10-26 09:00:00",
    "emailAddress": "  Zoë.Brontë@Example.COM ",
    "currencyCode": "GBP",
    "total": 29.95,
    "status": "Complete",
    "customerName": "Zoë  Brontë",
    "marketingOptedIn": True,
    "refunded": False,
}


def test_normalize_a_good_order():
    row = normalize_order(RAW, GiftProSettings(), "GBP")
    assert row["email_norm"] == "zoë.brontë@example.com" and row["total_minor"] == 2995 and row["successful"]
    assert row["created_at"] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 01:30, BST
    assert (row["first_name"], row["last_name"], row["phone"]) == ("Zoë", "Brontë", None)
    assert normalize_order({**RAW, "refunded": True}, GiftProSettings(), "GBP")["total_minor"] == 0
    assert not normalize_order({**RAW, "status": "Pending"}, GiftProSettings(), "GBP")["successful"]


# Odd records and the quarantine reason each must get (tests/unit/test_giftpro_paging.py too).
BAD_RECORDS = [
    ({"emailAddress": ""}, "missing email address"),
    ({"emailAddress": "not-an-email"}, "malformed email address"),
    ({"dateCreated": "25/10/2026"}, "unparseable dateCreated or changed"),
    ({"total": "n/a"}, "unparseable amount 'n/a'"),
    ({"currencyCode": "XYZ"}, "unknown currency 'XYZ'"),
    ({"currencyCode": "EUR"}, "currency EUR differs from the feed currency GBP"),
    ({"orderID": None}, "missing orderID"),
]


@pytest.mark.parametrize("change, reason", BAD_RECORDS)
def test_normalize_refuses_bad_records_with_a_reason(change, reason):
    with pytest.raises(BadRecord, match=f"^{re.escape(reason)}$"):
        normalize_order({**RAW, **change}, GiftProSettings(), "GBP")


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_amounts_are_exact_to_the_penny(amount):
    row = normalize_order({**RAW, "total": str(amount)}, GiftProSettings(), "GBP")
    assert row["total_minor"] == int(amount * 100)
