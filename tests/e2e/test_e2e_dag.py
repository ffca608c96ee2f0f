"""End to end: `airflow dags test customer_feed` over three consecutive hours against the GiftPro
and Different Breed sandboxes, with refunds, edited emails, consent changes, new orders and a
customer deleted at the source between the runs; after each run the served feed equals the
sandboxes' combined ground truth, field by field, and the deleted customer is gone from every
layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from include.config import DEFAULT_CONFIG_PATH, load_config
from include.feed_service import create_app
from include.staging import read_orders
from include.warehouse import Warehouse
from include.warehouse.order_state import watermarks
from sandbox import differentbreed
from sandbox.compare import feed_differences
from sandbox.giftpro import seed_store, serve_in_thread
from sandbox.truth import expected_customers
from scripts.local_stack import DEMO_TOKENS, airflow_env, differentbreed_connection, giftpro_connection, prepare_airflow

pytestmark = pytest.mark.e2e
AIRFLOW = str(Path(sys.executable).parent / "airflow")


@pytest.fixture
def stack(tmp_path, monkeypatch):
    for name, value in DEMO_TOKENS.items():
        monkeypatch.setenv(name, value)
    store = seed_store(seed=5, orders=500)
    db_store, listed = differentbreed.seed_store(seed=42, customers=40)
    customer_list = tmp_path / "customers.csv"
    differentbreed.write_customer_list(customer_list, db_store.profile, listed)
    config = tmp_path / "feeds.yaml"
    # Slices of one page: every property's first load runs as several mapped slices.
    config.write_text(
        DEFAULT_CONFIG_PATH.read_text()
        .replace("config/differentbreed_customers.csv", str(customer_list))
        .replace("giftpro:\n", "giftpro:\n  history_slice_pages: 1\n", 1)
    )
    monkeypatch.setenv("CUSTOMER_FEED_CONFIG", str(config))
    with serve_in_thread(store) as sandbox, differentbreed.serve_in_thread(db_store) as db_sandbox:
        env = airflow_env(
            {
                "AIRFLOW_CONN_GIFTPRO_DEFAULT": giftpro_connection(sandbox.url),
                "AIRFLOW_CONN_DIFFERENTBREED_DEFAULT": differentbreed_connection(db_sandbox.url),
                "CUSTOMER_FEED_CONFIG": str(config),
                "AIRFLOW_CONN_CUSTOMER_FEED_DB": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "wh.db")}),
                "CUSTOMER_FEED_STAGING_URL": f"file://{tmp_path / 'staging'}",
                **DEMO_TOKENS,
            }
        )
        prepare_airflow(env)
        yield store, db_store, env, Warehouse(f"sqlite:///{tmp_path / 'wh.db'}"), tmp_path / "staging"


def run_hour_ending(env: dict, end: str) -> None:
    done = subprocess.run(
        [AIRFLOW, "dags", "test", "customer_feed", end], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and "state=success" in done.stdout + done.stderr, (done.stdout + done.stderr)[-5000:]


def assert_feed_matches_sandbox(store, db_store, wh) -> None:
    config = load_config()
    client = TestClient(create_app(config, wh))
    db = db_store.dump()
    truth = expected_customers(config, store.dump(), db["customers"], db["orders"], db_store.profile)
    for feed in config.feeds:
        served, page = [], 1
        while True:
            body = client.post(
                "/convertedin/customers", data={"token": os.environ[feed.token_env], "page": page, "par_page": 200}
            ).json()
            served += body["data"]
            if page >= body["last_page"]:
                break
            page += 1
        assert served, f"feed {feed.name} is empty"
        assert feed_differences(served, truth, config, feed.name) == []


def test_three_consecutive_hours_equal_the_ground_truth(stack):
    store, db_store, env, wh, staging = stack
    run_hour_ending(env, "2026-11-02T00:00:00+00:00")  # first run: the whole history, in slices
    assert_feed_matches_sandbox(store, db_store, wh)
    slices = {p.parent.parent.name for p in staging.rglob("orders-slice-*.parquet")}
    assert slices == {f"domain={d}" for d in load_config().domains("giftpro")}, slices

    orders = [
        o for o in store.dump() if o["domainID"] in (3521, 3522) and o["status"] == "Complete" and not o["refunded"]
    ]
    refunded, moved, withdrawn = orders[0]["orderID"], orders[1]["orderID"], orders[2]["orderID"]
    store.refund(refunded, "2026-11-02 00:10:00")
    store.edit_email(moved, "  Moved.Customer@Example.com", "2026-11-02 00:20:00")
    store.add_order(
        domainID=3523,
        dateCreated="2026-11-02 00:30:00",
        emailAddress=orders[2]["emailAddress"],
        customerName="Latest Name",
        marketingOptedIn=False,
        total=12.34,
    )  # latest order opts out
    store.add_order(
        domainID=4101,
        dateCreated="2026-11-02 00:40:00",
        emailAddress="new.customer@example.ie",
        customerName="Siobhán Ó Briain",
        marketingOptedIn=True,
        total=99.99,
    )
    # Different Breed: a refund, a new order, and a customer deleted at the source.
    db_orders = db_store.dump()["orders"]
    paid = next(o for o in db_orders if o["status"] == "paid")
    db_store.update_order(paid["order_id"], "2026-11-02T00:15:00Z", status="refunded")
    gone = next(o["cust_id"] for o in db_orders if o["cust_id"] != paid["cust_id"] and o["status"] == "paid")
    db_store.delete_customer(gone)
    run_hour_ending(env, "2026-11-02T01:00:00+00:00")
    assert_feed_matches_sandbox(store, db_store, wh)
    with wh.reader() as cur:
        cur.execute("SELECT COUNT(*) FROM order_state WHERE customer_ref = ?", (gone,))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT COUNT(*) FROM source_customers WHERE customer_ref = ?", (gone,))
        assert cur.fetchone()[0] == 0
    staged = read_orders([str(p) for p in staging.rglob("orders*.parquet")])
    assert staged.num_rows and gone not in staged["customer_ref"].to_pylist()

    store.chargeback(orders[3]["orderID"], "2026-11-02 01:15:00")
    store.set_consent(withdrawn, True, "2026-11-02 01:20:00")
    store.add_order(
        domainID=3521,
        dateCreated="2026-11-02 01:30:00",
        emailAddress=orders[2]["emailAddress"],
        customerName="Opted Back",
        marketingOptedIn=True,
        total=5,
    )
    run_hour_ending(env, "2026-11-02T02:00:00+00:00")
    assert_feed_matches_sandbox(store, db_store, wh)
    ended = int(datetime(2026, 11, 2, 2, tzinfo=UTC).timestamp())
    assert watermarks(wh, "giftpro") == {d: ended for d in load_config().domains("giftpro")}
