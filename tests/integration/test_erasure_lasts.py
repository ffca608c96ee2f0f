"""Erasure lasts: once erased, a person never re-enters any layer — not with the next hourly
poll, not with a rebuild, not from an old staged file — until explicitly restored, and nothing
stores or logs their address. Real HTTP against both sandboxes, through the pipeline's own steps,
warehouse on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.config import load_config
from include.erasure import erase, restore
from include.pipeline import (
    extract_differentbreed,
    extract_giftpro,
    load_extracts,
    plan_differentbreed,
    plan_giftpro,
    publish,
    resolve_window,
)
from include.schema import ORDER_SCHEMA
from include.sources.differentbreed import SlidingWindowLimiter
from include.suppression import ERASURE_KEY_ENV, ErasureKeyError, email_digest
from include.warehouse.ddl import TABLES
from include.warehouse.feed_reads import feed_page
from include.warehouse.order_state import load_orders
from include.warehouse.suppression import load_suppression
from sandbox import differentbreed, giftpro
from scripts.local_stack import differentbreed_connection, giftpro_connection
from tests.unit.test_erasure import order

KEY = "test-erasure-key-0123456789abcdef"
VICTIM = "victim@example.com"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def hour(n: int) -> tuple[datetime, datetime]:
    return T0 + timedelta(hours=n), T0 + timedelta(hours=n + 1)


@pytest.fixture
def stack(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv(ERASURE_KEY_ENV, KEY)
    monkeypatch.setattr(SlidingWindowLimiter, "acquire", lambda self: None)
    gp = giftpro.GiftProStore()
    for n, (email, fields) in enumerate(
        [
            ("  Victim@Example.com ", {}),
            (VICTIM, {"domainID": 3522}),
            (VICTIM, {"currencyCode": "XYZ"}),  # quarantined: the raw record names them
            ("kept@example.com", {}),
        ]
    ):
        gp.add_order(
            orderID=500 + n, dateCreated="2026-06-01 12:00:00", emailAddress=email, marketingOptedIn=True, **fields
        )
    db = differentbreed.DifferentBreedStore(rate_limit=100_000)
    db.create_customer(" VICTIM@example.com", "Vic", "Tim", "2026-05-01T00:00:00Z", cust_id="c1")
    db.create_customer("fan@example.org", "Fan", "Club", "2026-05-01T00:00:00Z", cust_id="c2")
    db.add_order("c1", "2026-06-02T10:00:00Z", order_id="d1")
    db.add_order("c1", "2026-06-03T10:00:00Z", currency="XYZ", order_id="d-bad")
    db.add_order("c2", "2026-06-02T10:00:00Z", order_id="d2")
    customers = tmp_path / "customers.csv"
    differentbreed.write_customer_list(customers, db.profile, ["c1", "c2"])
    config = load_config()
    config = config.model_copy(
        update={"differentbreed": config.differentbreed.model_copy(update={"customers_file": str(customers)})}
    )
    with giftpro.serve_in_thread(gp) as gp_server, differentbreed.serve_in_thread(db) as db_server:
        monkeypatch.setenv("AIRFLOW_CONN_GIFTPRO_DEFAULT", giftpro_connection(gp_server.url))
        monkeypatch.setenv("AIRFLOW_CONN_DIFFERENTBREED_DEFAULT", differentbreed_connection(db_server.url))
        yield warehouse, config, f"file://{tmp_path / 'staging'}", gp, db


def run(wh, config, root, n: int, rebuild: bool = False) -> dict:
    """One run of the DAG's steps, as the tasks call them."""
    start, end = hour(n)
    window = resolve_window({"rebuild": rebuild}, start, end, None)
    suppression = load_suppression(wh)
    extracts = [extract_giftpro(s, config, root, suppression=suppression) for s in plan_giftpro(config, wh, window)]
    extracts += [
        extract_differentbreed(s, config, root, suppression=suppression)
        for s in plan_differentbreed(config, wh, window)
    ]
    loaded = load_extracts(wh, extracts, f"run-{n}", rebuild, root, config)
    publish(wh, config, f"run-{n}", rebuild)
    return {"loaded": loaded, "staged": sum(e.stats.suppressed for e in extracts)}


def feed_ids(wh) -> dict[str, int]:
    rows, _ = feed_page(wh, "ampress", 1, 100)
    return {r[1]: r[0] for r in rows}


def assert_nowhere(wh, root) -> None:
    """Not in any warehouse table, not in any staged file (orders, profiles, quarantined raw text)."""
    with wh.reader() as cur:
        for table in TABLES:
            cur.execute(f"SELECT * FROM {table}")
            assert VICTIM not in str(cur.fetchall()).lower(), table
    fs, base = fsspec.core.url_to_fs(root)
    for path in fs.glob(f"{base}/**/*.parquet"):
        assert VICTIM not in str(pq.read_table(fs.open(path)).to_pylist()).lower(), path


def test_an_erased_person_never_comes_back_until_restored(stack, caplog):
    wh, config, root, gp, db = stack
    caplog.set_level(logging.DEBUG)
    run(wh, config, root, 0)
    original_id = feed_ids(wh)[VICTIM]
    assert {VICTIM, "kept@example.com", "fan@example.org"} <= set(feed_ids(wh))

    erase(wh, config, " Victim@EXAMPLE.com", root)
    assert_nowhere(wh, root)
    with wh.reader() as cur:
        cur.execute("SELECT feed, email_norm FROM customer_ids WHERE id = ? AND feed = 'ampress'", (original_id,))
        assert cur.fetchone()[1] == "erased:" + email_digest(VICTIM, KEY.encode())

    # The next hourly run: they buy again in both sources (and the source never forgot them).
    gp.add_order(orderID=600, dateCreated="2026-11-01 01:10:00", emailAddress=VICTIM, marketingOptedIn=True)
    db.add_order("c1", "2026-11-01T01:20:00Z", order_id="d3")
    db.update_customer("c1", "2026-11-01T01:25:00Z", forename="Victoria")
    counts = run(wh, config, root, 1)
    assert counts["staged"] >= 4  # their GiftPro order, DB profile, DB orders and DB quarantined record
    assert_nowhere(wh, root)
    assert VICTIM not in feed_ids(wh) and "fan@example.org" in feed_ids(wh)

    # A rebuild from scratch re-extracts every history, theirs included.
    run(wh, config, root, 2, rebuild=True)
    assert_nowhere(wh, root)

    # Even a load that bypasses the extract (an old staged file, a bug) cannot bring them back.
    stray = pa.Table.from_pylist([order("stray", VICTIM)], schema=ORDER_SCHEMA)
    assert load_orders(wh, stray, [], "stray")["suppressed"] == 1
    assert_nowhere(wh, root)
    assert VICTIM not in caplog.text.lower()

    # Restored: the next run re-polls their Different Breed profile in full, a rebuild brings
    # back their GiftPro history, and they have their old id again.
    assert restore(wh, VICTIM) == {"suppressions_lifted": 1, "ids_restored": 1}
    run(wh, config, root, 3)
    assert feed_ids(wh)[VICTIM] == original_id
    run(wh, config, root, 4, rebuild=True)
    with wh.reader() as cur:
        cur.execute("SELECT source, COUNT(*) FROM order_state WHERE email_norm = ? GROUP BY source", (VICTIM,))
        assert dict(cur.fetchall()) == {"giftpro": 3, "differentbreed": 2}
    assert feed_ids(wh)[VICTIM] == original_id


def test_erasure_needs_the_secret_and_the_same_secret(stack, monkeypatch):
    wh, config, root, gp, db = stack
    run(wh, config, root, 0)
    monkeypatch.delenv(ERASURE_KEY_ENV)
    with pytest.raises(ErasureKeyError, match=f"{ERASURE_KEY_ENV} is not set"):
        erase(wh, config, VICTIM, root)
    assert VICTIM in feed_ids(wh)  # nothing was erased half-way
    run(wh, config, root, 1)  # an empty suppression list needs no key

    monkeypatch.setenv(ERASURE_KEY_ENV, KEY)
    erase(wh, config, VICTIM, root)
    monkeypatch.delenv(ERASURE_KEY_ENV)
    with pytest.raises(ErasureKeyError, match="is not set"):  # fails closed: it would bring them back
        run(wh, config, root, 2)
    monkeypatch.setenv(ERASURE_KEY_ENV, "another-key")
    with pytest.raises(ErasureKeyError, match="not the key the suppression list was written with"):
        run(wh, config, root, 2)
    with pytest.raises(ErasureKeyError):
        restore(wh, VICTIM)


def test_the_keyed_hash_is_not_a_bare_digest():
    key = KEY.encode()
    digest = email_digest(VICTIM, key)
    assert digest != hashlib.sha256(VICTIM.encode()).hexdigest()
    assert digest == email_digest(VICTIM, key) != email_digest(VICTIM, b"another key")
    assert len(json.dumps(digest)) == 66
