"""The GiftPro sandbox over real HTTP: filters, order, page size, errors in GiftPro's shape."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox.giftpro import GiftProStore, seed_store, serve_in_thread

KEY = ("gp_sandbox_key", "")


@pytest.fixture(scope="module")
def sandbox():
    with serve_in_thread(seed_store(seed=3, orders=400)) as server:
        yield server


def get(sandbox, params, auth=KEY, path="/orders/"):
    return httpx.get(sandbox.url + path, params=params, auth=auth, timeout=10)


def test_list_is_newest_first_50_a_page_and_filters(sandbox):
    page = get(sandbox, {"domainID": 3521}).json()
    assert len(page) == 50 and all(o["domainID"] == 3521 for o in page)
    assert [o["dateCreated"] for o in page] == sorted((o["dateCreated"] for o in page), reverse=True)
    june = get(
        sandbox,
        {"orders.dateCreated[gte]": "2026-06-01 00:00:00", "orders.dateCreated[lt]": "2026-07-01 00:00:00", "p": 1},
    ).json()
    assert june and all("2026-06" in o["dateCreated"] for o in june)
    assert all(
        o["changed"] < "2026-01-01 00:00:00" for o in get(sandbox, {"changed[lt]": "2026-01-01 00:00:00"}).json()
    )


@pytest.mark.parametrize("params", [{"p": "0"}, {"p": "x"}, {"changed[gte]": "yesterday"}, {"domainID": "abc"}])
def test_bad_parameters_are_400_in_giftpro_shape(sandbox, params):
    response = get(sandbox, params)
    assert response.status_code == 400 and response.json()["result"]["reason"] == "invalid_params"


def test_key_required_and_single_order_endpoints(sandbox):
    assert get(sandbox, {}, auth=None).status_code == 401
    assert get(sandbox, {}, auth=("wrong", "")).json()["result"]["reason"] == "permission_denied"
    one = sandbox.store.dump()[0]
    assert get(sandbox, {}, path=f"/orders/{one['orderID']}/").json() == [one]
    assert get(sandbox, {}, path=f"/orders/{one['orderID']}/rows/").json()[0]["orderID"] == one["orderID"]
    assert get(sandbox, {}, path="/orders/1/").status_code == 404


def test_injected_latency_delays_every_api_request_but_not_the_admin_ones():
    with serve_in_thread(GiftProStore()) as server:
        assert httpx.post(server.url + "/_sandbox/latency", json={"seconds": 0.3}, timeout=10).status_code == 200
        started = time.perf_counter()
        assert get(server, {"domainID": 3521}).json() == []
        slow = time.perf_counter() - started
        started = time.perf_counter()
        httpx.get(server.url + "/_sandbox/health", timeout=10)
        fast = time.perf_counter() - started
        assert slow >= 0.3 > fast
        httpx.post(server.url + "/_sandbox/reset", timeout=10)
        assert server.store.faults.latency == 0
