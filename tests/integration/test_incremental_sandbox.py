"""Incremental runs equal a full rebuild and the sandbox's ground truth — through the real
client, real HTTP and naive London time, across both daylight-saving changes of 2026.

Hypothesis draws source events (new orders, refunds, chargebacks, edited emails, consent flips,
placed around the DST changes) and a schedule of runs (hour windows of several sizes, re-runs,
overlapping and out-of-order backfills). Each run sees the source as it is when it runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.config import load_config
from include.pipeline import extract_giftpro, load_extracts, plan_giftpro, publish, resolve_window
from include.schema import FEED_CUSTOMER_KEYS
from include.warehouse import Warehouse
from include.warehouse.feed_reads import feed_page
from sandbox.compare import COMPARED, feed_differences
from sandbox.giftpro import GiftProStore, expected_customers, serve_in_thread

UTC = UTC
CONFIG = load_config()
EMAILS = [
    "ann@example.com",
    " Ann@Example.com",
    "bob@example.com",
    "BOB@example.com ",
    "cat@example.ie",
    "dan@example.ie",
]
DOMAINS = [3521, 3522, 4101]
# Two days around each change: the repeated hour (2026-10-25 00:00-02:00 UTC is 01:00-02:00 London
# twice) and the skipped one (2026-03-29 01:00 UTC: London jumps from 01:00 to 03:00).
EPOCHS = [datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 3, 28, 12, tzinfo=UTC)]
SPAN_HOURS = 24


def events():
    minute = st.integers(0, SPAN_HOURS * 60 - 1)
    return st.lists(
        st.one_of(
            st.tuples(
                st.just("order"),
                minute,
                st.sampled_from(DOMAINS),
                st.sampled_from(EMAILS),
                st.booleans(),
                st.sampled_from([10, 25.5, 99.99]),
            ),
            st.tuples(
                st.sampled_from(["refund", "chargeback", "consent", "email"]),
                minute,
                st.integers(0, 50),
                st.sampled_from(EMAILS),
                st.booleans(),
                st.just(0),
            ),
        ),
        min_size=3,
        max_size=25,
    )


def schedule():
    window = st.tuples(st.integers(0, SPAN_HOURS - 1), st.sampled_from([1, 1, 2, 3, 6]))
    return st.lists(window, min_size=2, max_size=8)


def customers_table(wh: Warehouse) -> dict:
    with wh.reader() as cur:
        cur.execute(
            "SELECT feed, email, first_name, last_name, orders_count, total_spent_minor, currency, phone,"
            " registered_at, gender FROM customers"
        )
        return {(r[0], r[1]): r[2:] for r in cur.fetchall()}


def run(wh, staging, window_start: datetime, window_end: datetime, rebuild: bool = False):
    window = resolve_window(
        {"start": window_start.isoformat(), "end": window_end.isoformat(), "rebuild": rebuild}, None, None, None
    )
    extracts = [extract_giftpro(spec, CONFIG, staging) for spec in plan_giftpro(CONFIG, wh, window)]
    loaded = load_extracts(wh, extracts, "run", rebuild)
    publish(wh, CONFIG, "run", rebuild)
    return loaded


def apply(store: GiftProStore, event, at: datetime) -> None:
    kind, _, a, email, flag, total = event
    if kind == "order":
        created = at.astimezone(UTC)
        store.add_order(
            domainID=a,
            dateCreated=created,
            emailAddress=email,
            marketingOptedIn=flag,
            total=total,
            customerName=f"Name {a}",
            currency=None or ("EUR" if a == 4101 else "GBP"),
            currencyCode="EUR" if a == 4101 else "GBP",
        )
        return
    ids = sorted(store.orders)
    if not ids:
        return
    order_id = ids[a % len(ids)]
    if kind == "refund":
        store.refund(order_id, at)
    elif kind == "chargeback":
        store.chargeback(order_id, at)
    elif kind == "consent":
        store.set_consent(order_id, flag, at)
    else:
        store.edit_email(order_id, email, at)


@pytest.fixture(scope="module")
def sandbox():
    with serve_in_thread(GiftProStore()) as server:
        yield server


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(epoch=st.sampled_from(EPOCHS), history=events(), runs=schedule())
def test_incremental_runs_equal_a_rebuild_and_the_ground_truth(
    sandbox, monkeypatch, tmp_path_factory, epoch, history, runs
):
    tmp = tmp_path_factory.mktemp("inc")
    monkeypatch.setenv(
        "AIRFLOW_CONN_GIFTPRO_DEFAULT",
        json.dumps({"conn_type": "http", "host": sandbox.url, "password": "gp_sandbox_key"}),
    )
    store = sandbox.store
    store.reset()
    # Events happen at their minute; a run executes once its window has ended, and sees every
    # event up to then — an out-of-order backfill runs late and sees later versions.
    timeline = sorted(
        ((epoch + timedelta(minutes=e[1]), i, e) for i, e in enumerate(history)), key=lambda t: (t[0], t[1])
    )
    wh = Warehouse(f"sqlite:///{tmp / 'incremental.db'}")
    wh.create_schema()
    now = epoch
    applied = 0
    for first_hour, hours in runs:
        start = epoch + timedelta(hours=first_hour)
        end = start + timedelta(hours=hours)
        now = max(now, end)
        while applied < len(timeline) and timeline[applied][0] < now:
            apply(store, timeline[applied][2], timeline[applied][0])
            applied += 1
        run(wh, f"file://{tmp / 'staging'}", start, end)
    for moment, _, event in timeline[applied:]:
        apply(store, event, moment)
    final_end = epoch + timedelta(hours=SPAN_HOURS + 1)
    run(wh, f"file://{tmp / 'staging'}", final_end - timedelta(hours=1), final_end)

    rebuilt = Warehouse(f"sqlite:///{tmp / 'rebuild.db'}")
    rebuilt.create_schema()
    run(rebuilt, f"file://{tmp / 'staging-rebuild'}", final_end - timedelta(hours=1), final_end, rebuild=True)
    assert customers_table(wh) == customers_table(rebuilt)

    truth = expected_customers(store.dump(), CONFIG)
    for feed in CONFIG.feeds:
        served = []
        rows, _ = feed_page(wh, feed.name, 1, 1000)
        for r in rows:
            served.append(dict(zip(FEED_CUSTOMER_KEYS, (*r[:5], r[5] / 100, *r[6:]))))
        assert feed_differences(served, truth, CONFIG, feed.name) == []


@pytest.mark.parametrize("day, hours", [("2026-10-25", range(-2, 5)), ("2026-03-29", range(-2, 5))])
def test_orders_around_a_dst_change_are_each_counted_once(sandbox, monkeypatch, tmp_path, day, hours):
    """Hourly runs across the change; orders created and changed in every local minute that
    exists (the repeated October hour twice over: BST first, then GMT)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_GIFTPRO_DEFAULT",
        json.dumps({"conn_type": "http", "host": sandbox.url, "password": "gp_sandbox_key"}),
    )
    store = sandbox.store
    store.reset()
    midnight = datetime.fromisoformat(f"{day}T00:00:00+00:00")
    wh = Warehouse(f"sqlite:///{tmp_path / 'wh.db'}")
    wh.create_schema()
    placed = 0
    for hour in hours:
        start = midnight + timedelta(hours=hour)
        for minute in range(0, 60, 7):
            at = start + timedelta(minutes=minute)
            store.add_order(
                domainID=3521,
                dateCreated=at,
                changed=at,
                emailAddress=f"c{placed % 5}@example.com",
                marketingOptedIn=True,
                total=1,
                customerName="Dee Ess",
            )
            placed += 1
        run(wh, f"file://{tmp_path / 'staging'}", start, start + timedelta(hours=1))
    with wh.reader() as cur:
        cur.execute("SELECT COUNT(*), COUNT(DISTINCT order_id) FROM order_state")
        assert cur.fetchone() == (placed, placed)
    rows, total = feed_page(wh, "ampress", 1, 100)
    assert total == 5 and sum(r[4] for r in rows) == placed
    truth = expected_customers(store.dump(), CONFIG)
    assert {r[1]: r[4] for r in rows} == {e: t["orders_count"] for (f, e), t in truth.items() if f == "ampress"}
    assert set(COMPARED) >= {"orders_count", "registered_at"}
