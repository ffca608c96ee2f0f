"""The mass-change guard (on SQLite here; on PostgreSQL in
tests/integration/test_mass_change_guard_postgres.py): a run that would remove more than
`guard.max_drop_share` of a feed (customers leaving it, orders lost) or of a source domain
(deletions at the source, a rebuild whose extract comes back empty) stops before its commit with a
clear error; the served feed and the order state stay as they were; a confirmation (the param or
the environment) lets a real mass change through; a small normal change is never stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from include.config import GuardSettings, load_config
from include.guard import CONFIRM_ENV, MassChangeError
from include.schema import ORDER_SCHEMA, PROFILE_SCHEMA
from include.warehouse.feed_reads import feed_page
from include.warehouse.order_state import load_orders
from include.warehouse.publish import publish_customers

T = datetime(2026, 6, 1, tzinfo=UTC)
CUSTOMERS = 200


def order(n: int, opt_in: bool = True, successful: bool = True, later: int = 0) -> dict:
    at = T + timedelta(minutes=later)
    return {
        "source": "giftpro",
        "domain": "3521",
        "order_id": str(n),
        "email_norm": f"guest{n}@example.com",
        "created_at": T,
        "changed_at": at,
        "status": "Complete" if successful else "Refunded",
        "successful": successful,
        "total_minor": 1000 if successful else 0,
        "currency": "GBP",
        "first_name": "Ann",
        "last_name": "Lee",
        "phone": None,
        "marketing_opt_in": opt_in,
        "customer_ref": None,
        "version_hash": f"{n}-{opt_in}-{successful}-{later}",
    }


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ORDER_SCHEMA)


def served(wh) -> tuple[list[tuple], int]:
    return feed_page(wh, "ampress", 1, 1000)


def state(wh) -> list[tuple]:
    with wh.reader() as cur:
        cur.execute("SELECT order_id, changed_at, marketing_opt_in FROM order_state ORDER BY order_id")
        return cur.fetchall()


@pytest.fixture
def published(warehouse, monkeypatch):
    """A feed of 200 customers, one order each."""
    monkeypatch.delenv(CONFIRM_ENV, raising=False)
    config = load_config()
    load_orders(warehouse, table([order(n) for n in range(CUSTOMERS)]), [], "r1")
    publish_customers(warehouse, config, "r1")
    assert served(warehouse)[1] == CUSTOMERS
    return warehouse, config


def test_a_mass_opt_out_is_stopped_and_the_feed_kept_until_confirmed(published):
    wh, config = published
    before = served(wh)
    load_orders(wh, table([order(n, opt_in=False, later=5) for n in range(50)]), [], "r2")
    with pytest.raises(MassChangeError) as stopped:
        publish_customers(wh, config, "r2")
    message = str(stopped.value)
    assert "feed 'ampress'" in message and "50 of 200 customers" in message and "200 -> 150" in message
    assert "confirm_mass_change" in message and CONFIRM_ENV in message
    assert "@" not in message  # no address in the error
    assert served(wh) == before  # nothing committed: the previous feed is still served

    result = publish_customers(wh, config, "r3", confirm_mass_change=True)
    assert result["feeds"]["ampress"]["customers"] == 150 and served(wh)[1] == 150


def test_the_environment_confirms_too(published, monkeypatch):
    wh, config = published
    load_orders(wh, table([order(n, successful=False, later=5) for n in range(40)]), [], "r2")
    with pytest.raises(MassChangeError, match="40 of 200 orders"):
        publish_customers(wh, config, "r2")
    monkeypatch.setenv(CONFIRM_ENV, "1")
    assert publish_customers(wh, config, "r3")["feeds"]["ampress"]["orders"] == 160


def test_a_small_normal_change_is_not_stopped(published):
    wh, config = published
    changes = [order(n, opt_in=False, later=5) for n in range(10)] + [order(n) for n in range(1000, 1030)]
    load_orders(wh, table(changes), [], "r2")
    assert publish_customers(wh, config, "r2")["feeds"]["ampress"]["customers"] == CUSTOMERS - 10 + 30


def test_a_rebuild_whose_extract_comes_back_empty_is_stopped_in_the_load(published):
    wh, config = published
    kept, feed = state(wh), served(wh)
    with pytest.raises(MassChangeError, match="rebuild of giftpro domain 3521.*200 of 200 customers"):
        load_orders(wh, table([]), [], "rebuild", replace_domains=[("giftpro", "3521")])
    assert state(wh) == kept and served(wh) == feed
    # Far smaller is stopped too; the same size goes through.
    with pytest.raises(MassChangeError, match="150 of 200"):
        load_orders(wh, table([order(n) for n in range(50)]), [], "rebuild", replace_domains=[("giftpro", "3521")])
    load_orders(wh, table([order(n) for n in range(CUSTOMERS)]), [], "rebuild", replace_domains=[("giftpro", "3521")])
    assert publish_customers(wh, config, "rebuild", full=True)["feeds"]["ampress"]["customers"] == CUSTOMERS


def test_a_full_publish_that_loses_customers_is_stopped(published):
    """The guard of the publish itself, for a rebuild whose load was confirmed (or a config change)."""
    wh, config = published
    feed = served(wh)
    load_orders(
        wh,
        table([order(n) for n in range(100)]),
        [],
        "rebuild",
        replace_domains=[("giftpro", "3521")],
        confirm_mass_change=True,
    )
    with pytest.raises(MassChangeError, match="100 of 200 customers"):
        publish_customers(wh, config, "rebuild", full=True)
    assert served(wh) == feed
    assert (
        publish_customers(wh, config, "rebuild", full=True, confirm_mass_change=True)["feeds"]["ampress"]["customers"]
        == 100
    )


def profiles(refs: range) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "source": "differentbreed",
                "domain": "ampress-events",
                "customer_ref": f"c{n}",
                "email_norm": f"fan{n}@example.org",
                "first_name": "A",
                "last_name": "B",
                "registered_at": T,
                "changed_at": T,
                "version_hash": str(n),
            }
            for n in refs
        ],
        schema=PROFILE_SCHEMA,
    )


def test_deletions_at_the_source_beyond_the_share_are_stopped(warehouse, monkeypatch):
    monkeypatch.delenv(CONFIRM_ENV, raising=False)
    load_orders(warehouse, table([]), [], "r1", profiles=profiles(range(150)))
    many = [("differentbreed", "ampress-events", f"c{n}") for n in range(30)]
    with pytest.raises(MassChangeError, match="differentbreed domain ampress-events.*30 of 150 customers"):
        load_orders(warehouse, table([]), [], "r2", deleted=many)
    with warehouse.reader() as cur:
        cur.execute("SELECT COUNT(*) FROM source_customers")
        assert cur.fetchone()[0] == 150
    # Ids the warehouse never held are not deletions of anything; a handful is normal.
    few = many[:5] + [("differentbreed", "ampress-events", f"unknown{n}") for n in range(50)]
    load_orders(warehouse, table([]), [], "r3", deleted=few)
    load_orders(warehouse, table([]), [], "r4", deleted=many, confirm_mass_change=True)
    with warehouse.reader() as cur:
        cur.execute("SELECT COUNT(*) FROM source_customers")
        assert cur.fetchone()[0] == 120


def test_small_feeds_are_not_guarded_and_the_settings_are_read(warehouse, monkeypatch):
    monkeypatch.delenv(CONFIRM_ENV, raising=False)
    load_orders(warehouse, table([]), [], "r1", profiles=profiles(range(20)))
    gone = [("differentbreed", "ampress-events", f"c{n}") for n in range(10)]
    strict = GuardSettings(max_drop_share=0.1, min_customers_for_guard=10)
    with pytest.raises(MassChangeError, match="limit of 10%"):
        load_orders(warehouse, table([]), [], "r2", deleted=gone, guard=strict)
    load_orders(warehouse, table([]), [], "r2", deleted=gone)  # default: 20 customers is below the minimum
    assert load_config().guard == GuardSettings(max_drop_share=0.1, min_customers_for_guard=100)
