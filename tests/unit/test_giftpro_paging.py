"""The GiftPro client's paging state and its quarantine, on a fake transport answered by the
sandbox's own store in process (no server, no sleeping): the keyset on ``dateCreated`` carries
on across pages, a page of one timestamp advances ``p``, a short page ends the walk, a list that
moves while read loses and repeats nothing, and odd records become quarantine reasons."""

from __future__ import annotations

import pytest

from include.config import GiftProSettings
from include.sources.giftpro import PAGE_SIZE, GiftProClient, extract_domain
from sandbox.giftpro import GiftProStore
from tests.unit.fake_transport import Reply, connect, wire
from tests.unit.test_giftpro_sandbox import BAD_RECORDS, RAW

WINDOW = ("2026-01-01 00:00:00", "2026-12-01 00:00:00")


def served_by(store: GiftProStore, before_each=None):
    """A handler answering /orders/ from `store` as the sandbox server does."""
    calls = []

    def handle(sent):
        calls.append(sent)
        if before_each:
            before_each(store, len(calls))
        assert sent.path == "/orders/", sent.path
        return Reply(200, store.list_orders(sent.params))

    return handle


@pytest.fixture
def client(monkeypatch):
    connect(monkeypatch, "giftpro_default", host="http://giftpro.test")
    return GiftProClient(sleep=pytest.fail)


def add(store, n, day="2026-06-01", domain=3521):
    """`n` orders one minute apart on `day`, newest last."""
    return [
        store.add_order(domainID=domain, dateCreated=f"{day} {m // 60 % 24:02d}:{m % 60:02d}:00")["orderID"]
        for m in range(n)
    ]


def test_keyset_carries_on_from_the_last_date_created_and_stops_on_a_short_page(client):
    store = GiftProStore()
    ids = add(store, 120)
    add(store, 5, domain=9999)  # another property: never asked for
    transport = wire(client, served_by(store))
    got = [o["orderID"] for o in client.iter_orders("3521", *WINDOW)]
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))
    params = [s.params for s in transport.sent]
    assert [p["p"] for p in params] == ["1", "1", "1"]
    assert "orders.dateCreated[lte]" not in params[0]
    # Each request restarts below the last dateCreated seen: newest first, 50 a page.
    newest_first = sorted(store.dump(), key=lambda o: o["dateCreated"], reverse=True)
    assert params[1]["orders.dateCreated[lte]"] == newest_first[PAGE_SIZE - 1]["dateCreated"]
    assert params[2]["orders.dateCreated[lte]"] == newest_first[2 * PAGE_SIZE - 2]["dateCreated"]
    for p in params:
        assert (p["domainID"], p["changed[gte]"], p["changed[lt]"]) == ("3521", *WINDOW)


def test_a_short_first_page_is_the_only_request(client):
    store = GiftProStore()
    add(store, PAGE_SIZE - 1)
    transport = wire(client, served_by(store))
    assert len(list(client.iter_orders("3521", *WINDOW))) == PAGE_SIZE - 1
    assert len(transport.sent) == 1


def test_exactly_one_full_page_asks_once_more_and_repeats_nothing(client):
    store = GiftProStore()
    add(store, PAGE_SIZE)
    transport = wire(client, served_by(store))
    got = [o["orderID"] for o in client.iter_orders("3521", *WINDOW)]
    assert len(got) == len(set(got)) == PAGE_SIZE
    assert len(transport.sent) == 2  # the second answers the boundary order alone: short, done


def test_no_lower_bound_means_the_whole_history(client):
    store = GiftProStore()
    add(store, 3)
    transport = wire(client, served_by(store))
    assert len(list(client.iter_orders("3521", None, WINDOW[1]))) == 3
    assert "changed[gte]" not in transport.sent[0].params


def test_a_page_of_one_timestamp_advances_by_page_number(client):
    store = GiftProStore()
    same = [store.add_order(domainID=3521, dateCreated="2026-06-01 09:00:00")["orderID"] for _ in range(120)]
    older = store.add_order(domainID=3521, dateCreated="2026-05-01 09:00:00")["orderID"]
    transport = wire(client, served_by(store))
    got = [o["orderID"] for o in client.iter_orders("3521", *WINDOW)]
    assert sorted(got) == sorted([*same, older]) and len(got) == len(set(got))
    steps = [(s.params["p"], s.params.get("orders.dateCreated[lte]")) for s in transport.sent]
    ts = "2026-06-01 09:00:00"
    assert steps == [("1", None), ("1", ts), ("2", ts), ("3", ts)]


def test_the_changed_field_is_the_clients_setting(monkeypatch):
    connect(monkeypatch, "giftpro_default", host="http://giftpro.test")
    client = GiftProClient(changed_field="dateCreated", sleep=pytest.fail)
    transport = wire(client, lambda sent: Reply(200, []))
    list(client.iter_orders("3521", *WINDOW))
    assert {"dateCreated[gte]", "dateCreated[lt]"} <= set(transport.sent[0].params)
    assert "changed[gte]" not in transport.sent[0].params


def test_new_orders_arriving_while_paging_neither_repeat_nor_hide_others(client):
    store = GiftProStore()
    before = add(store, 130, day="2026-06-01")

    def insert_newer(store, call):
        if call == 2:  # between the first and the second page: a whole page and more arrives
            add(store, 60, day="2026-06-02")

    wire(client, served_by(store, insert_newer))
    got = [o["orderID"] for o in client.iter_orders("3521", *WINDOW)]
    assert len(got) == len(set(got))
    assert set(before) <= set(got)


def test_an_order_leaving_the_window_while_paging_pulls_no_other_out(client):
    store = GiftProStore()
    ids = add(store, 130)
    newest = max(store.dump(), key=lambda o: o["dateCreated"])["orderID"]

    def edit_newest(store, call):
        if call == 2:  # changed now: outside the window asked for
            store.update(newest, "2026-12-01 12:00:00")

    wire(client, served_by(store, edit_newest))
    got = [o["orderID"] for o in client.iter_orders("3521", *WINDOW)]
    assert sorted(got) == sorted(ids)  # the newest was read on page 1; nothing else was lost


@pytest.mark.parametrize(
    "extra, header, value",
    [({}, "Authorization", "Basic Z3Ata2V5Og=="), ({"auth": "header", "auth_header": "X-Key"}, "X-Key", "gp-key")],
)
def test_the_key_goes_as_basic_auth_or_in_a_named_header_and_settings_are_not_headers(
    monkeypatch, extra, header, value
):
    connect(monkeypatch, "giftpro_default", host="http://giftpro.test", key="gp-key", **extra)
    client = GiftProClient(sleep=pytest.fail)
    transport = wire(client, lambda sent: Reply(200, []))
    list(client.iter_orders("3521", *WINDOW))
    sent = transport.sent[0].headers
    assert sent[header] == value  # base64("gp-key:"): the key as user name, no password
    assert not ({"auth", "auth_header", "Authorization"} - {header}) & set(sent)


def test_an_unknown_auth_scheme_is_refused(monkeypatch):
    connect(monkeypatch, "giftpro_default", host="http://giftpro.test", auth="oauth")
    with pytest.raises(ValueError, match="unknown auth scheme 'oauth'"):
        GiftProClient()


def test_a_list_that_is_not_a_list_is_an_error(client):
    wire(client, lambda sent: Reply(200, {"result": "maintenance"}))
    with pytest.raises(ValueError, match="answered dict, expected a list"):
        list(client.iter_orders("3521", *WINDOW))


def test_odd_records_are_quarantined_with_their_reason_and_the_rest_kept(client):
    page = [RAW] + [{**RAW, "orderID": 100 + n, **change} for n, (change, _) in enumerate(BAD_RECORDS)]
    wire(client, lambda sent: Reply(200, page))
    result = extract_domain(client, "3521", None, WINDOW[1], GiftProSettings(), "GBP")
    assert result.orders["order_id"].to_pylist() == ["5"]
    assert sorted(result.quarantine["reason"].to_pylist()) == sorted(reason for _, reason in BAD_RECORDS)
    assert result.quarantine["domain"].to_pylist() == ["3521"] * len(BAD_RECORDS)
    assert None in result.quarantine["order_id"].to_pylist()  # the one without an orderID
    assert all('"orderID"' in raw for raw in result.quarantine["raw"].to_pylist())
    assert (result.stats["orders"], result.stats["quarantined"], result.stats["requests"]) == (1, len(BAD_RECORDS), 1)
