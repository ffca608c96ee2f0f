"""History in slices against the GiftPro sandbox over HTTP: the probe's page count and quantiles,
sliced extracts that together fetch every order once, and a sliced first load through the
pipeline's steps (the planner's rules: tests/unit/test_history_slices.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from include.config import DEFAULT_CONFIG_PATH, FeedConfig, load_config
from include.history import plan_slices
from include.pipeline import plan_giftpro, resolve_window
from include.sources.local_time import format_local
from tests.unit.test_history_slices import END, LONDON, local, orders_over


@pytest.fixture
def sandbox(monkeypatch):
    from sandbox.giftpro import GiftProStore, serve_in_thread

    with serve_in_thread(GiftProStore()) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_GIFTPRO_DEFAULT",
            json.dumps({"conn_type": "http", "host": server.url, "password": "gp_sandbox_key"}),
        )
        yield server


def history_probe():
    from include.sources.giftpro import GiftProClient, GiftProHistory

    return GiftProHistory(GiftProClient(backoff=0.01), "2026-12-01 00:00:00", LONDON)


@pytest.mark.parametrize("orders", [0, 1, 50, 51, 149, 150, 1234])
def test_the_probe_counts_pages_in_a_few_requests(sandbox, orders):
    for n, created in enumerate(orders_over(300, orders)):
        sandbox.store.add_order(domainID=3521, dateCreated=created, orderID=10_000 + n)
    sandbox.store.add_order(domainID=3522, dateCreated="2026-06-01 00:00:00")  # another property
    probe = history_probe()
    assert probe.pages("3521") == -(-orders // 50)
    assert probe.client.http.requests <= 2 * max(1, (orders // 50).bit_length()) + 2
    if orders:
        oldest = min(orders_over(300, orders))
        assert probe.created_at("3521", probe.pages("3521")) == local(oldest)
    assert probe.created_at("3521", 99) is None


def test_sliced_extract_fetches_every_order_once(sandbox):
    """Slices planned from the sandbox and extracted as the tasks do: together, every order of
    the property once — orders on a slice bound, in the repeated October hour and in the same
    second included."""
    from include.sources.giftpro import GiftProClient

    texts = orders_over(600, 1_200) + ["2026-10-25 01:30:00"] * 3 + ["2026-10-25 01:10:00", "2026-10-25 02:00:00"]
    for n, created in enumerate(texts):
        sandbox.store.add_order(domainID=3521, dateCreated=created, orderID=10_000 + n)
    plan = plan_slices(["3521"], history_probe(), target_pages=5, budget=10)
    slices = plan["3521"]
    assert len(slices) == 5
    client = GiftProClient(backoff=0.01)
    fetched = []
    for s in slices:
        bounds = [None if m is None else format_local(m, LONDON) for m in (s.created_from, s.created_to)]
        mine = [o["orderID"] for o in client.iter_orders("3521", None, "2026-12-01 00:00:00", *bounds)]
        assert 200 <= len(mine) <= 300  # even slices
        fetched += mine
    assert sorted(fetched) == sorted(o["orderID"] for o in sandbox.store.dump())


def test_first_load_in_slices_loads_every_order_and_moves_watermarks_only_when_complete(
    sandbox, sqlite_warehouse, tmp_path
):
    from include.pipeline import extract_giftpro, load_extracts
    from include.warehouse.order_state import watermarks
    from sandbox.giftpro import seed_store

    seed_store(seed=11, orders=1_500, store=sandbox.store)
    data = load_config(DEFAULT_CONFIG_PATH).model_dump()
    data["giftpro"].update(history_slice_pages=3)
    config = FeedConfig.model_validate(data)
    window = resolve_window({}, END - timedelta(hours=1), END, None)
    specs = plan_giftpro(config, sqlite_warehouse, window)
    assert len(specs) > 2 * len(config.domains("giftpro"))  # the larger properties are sliced
    staging = f"file://{tmp_path / 'staging'}"
    extracts = [extract_giftpro(s, config, staging) for s in specs]
    extracts[1] = extract_giftpro(specs[1], config, staging)  # a retried slice replaces its part

    with pytest.raises(ValueError, match="every part must be extracted"):
        load_extracts(sqlite_warehouse, extracts[:1] + extracts[2:], "run", rebuild=False)
    assert watermarks(sqlite_warehouse, "giftpro") == {}

    loaded = load_extracts(sqlite_warehouse, extracts, "run", rebuild=False)
    covered = {int(d) for d in config.domains("giftpro")}
    expected = [o for o in sandbox.store.dump() if o["domainID"] in covered]
    assert loaded.orders_in + loaded.quarantined == len(expected)
    with sqlite_warehouse.reader() as cur:
        cur.execute("SELECT COUNT(*) FROM order_state")
        assert cur.fetchone()[0] == loaded.orders_in
    assert watermarks(sqlite_warehouse, "giftpro") == {d: int(END.timestamp()) for d in config.domains("giftpro")}
