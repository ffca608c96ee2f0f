"""Merging Different Breed with GiftPro: one customer per (feed, email) across sources, profile
names and registration, and deletion at the source through every warehouse table."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from include.config import FeedConfig
from include.schema import ORDER_SCHEMA, PROFILE_SCHEMA
from include.warehouse.aggregate import aggregate_customers
from include.warehouse.feed_reads import feed_page
from include.warehouse.order_state import load_orders
from include.warehouse.publish import publish_customers

T0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
DAY = 86400
CONFIG = FeedConfig.model_validate(
    {
        "feeds": [
            {
                "name": "ampress",
                "token_env": "T_AMPRESS",
                "currency": "GBP",
                "store": {
                    "name": "A",
                    "currency": "GBP",
                    "time_zone": "Europe/London",
                    "email": "a@example.com",
                    "country": "United Kingdom",
                    "country_code": "GB",
                },
                "sources": {"giftpro_domains": ["3521"], "differentbreed_profiles": ["events"]},
            }
        ]
    }
)


def order(
    order_id,
    email,
    created,
    *,
    source="giftpro",
    domain="3521",
    ref=None,
    total=1000,
    ok=True,
    first="Ann",
    last="Lee",
    consent=True,
):
    return {
        "source": source,
        "domain": domain,
        "order_id": str(order_id),
        "email_norm": email,
        "created_at": created,
        "changed_at": created,
        "status": "Complete" if ok else "refunded",
        "successful": ok,
        "total_minor": total if ok else 0,
        "currency": "GBP",
        "first_name": first,
        "last_name": last,
        "phone": None,
        "marketing_opt_in": consent,
        "customer_ref": ref,
        "version_hash": f"{source}{order_id}",
    }


def profile(ref, email, registered, changed, first="Profile", last="Name"):
    return {
        "source": "differentbreed",
        "domain": "events",
        "customer_ref": ref,
        "email_norm": email,
        "first_name": first,
        "last_name": last,
        "registered_at": registered,
        "changed_at": changed,
        "version_hash": f"p{ref}{changed}",
    }


def frame(rows, int_flags=("successful", "marketing_opt_in")):
    df = pd.DataFrame(rows)
    for c in int_flags:
        if c in df:
            df[c] = df[c].astype(int)
    return df


def arrow(rows, schema):
    ts = {"created_at", "changed_at", "registered_at"}
    return pa.Table.from_pylist(
        [{k: (datetime.fromtimestamp(v, UTC) if k in ts and v is not None else v) for k, v in r.items()} for r in rows],
        schema=schema,
    )


def test_counts_and_totals_add_up_across_sources():
    orders = frame(
        [
            order(1, "ann@example.com", T0, total=1000),
            order("db-1", "ann@example.com", T0 + DAY, source="differentbreed", domain="events", ref="c1", total=2550),
            order(
                "db-2", "ann@example.com", T0 + 2 * DAY, source="differentbreed", domain="events", ref="c1", ok=False
            ),
        ]
    )
    (row,) = aggregate_customers(orders, CONFIG).to_dict("records")
    assert (row["orders_count"], row["total_spent_minor"]) == (2, 3550)


def test_registered_at_is_the_earliest_of_profile_and_first_order():
    orders = frame([order(1, "ann@example.com", T0)])
    early = frame([profile("c1", "ann@example.com", T0 - 10 * DAY, T0 - 10 * DAY)], ())
    late = frame([profile("c1", "ann@example.com", T0 + DAY, T0 + DAY)], ())
    assert aggregate_customers(orders, CONFIG, early)["registered_at"][0] == "2026-02-19 00:00:00"
    assert aggregate_customers(orders, CONFIG, late)["registered_at"][0] == "2026-03-01 00:00:00"


def test_names_from_the_most_recent_order_or_profile():
    orders = frame([order(1, "ann@example.com", T0, first="Order", last="Name")])
    newer_profile = frame([profile("c1", "ann@example.com", T0, T0 + DAY, first="Zoë", last="Brontë")], ())
    older_profile = frame([profile("c1", "ann@example.com", T0, T0 - DAY, first="Old", last="Profile")], ())
    row = aggregate_customers(orders, CONFIG, newer_profile).iloc[0]
    assert (row["first_name"], row["last_name"]) == ("Zoë", "Brontë")
    row = aggregate_customers(orders, CONFIG, older_profile).iloc[0]
    assert (row["first_name"], row["last_name"]) == ("Order", "Name")


def test_a_profile_without_orders_publishes_nothing():
    orders = frame([order(1, "ann@example.com", T0)])
    profiles = frame([profile("c9", "bob@example.com", T0, T0)], ())
    assert aggregate_customers(orders, CONFIG, profiles)["email_norm"].tolist() == ["ann@example.com"]


def test_deletion_at_the_source_removes_its_orders_and_profile_in_every_table(warehouse):
    orders = [
        order(1, "ann@example.com", T0, total=1000),
        order("db-1", "ann@example.com", T0 + DAY, source="differentbreed", domain="events", ref="c1", total=2000),
        order("db-2", "bob@example.com", T0 + DAY, source="differentbreed", domain="events", ref="c2", total=500),
    ]
    profiles = [profile("c1", "ann@example.com", T0 - DAY, T0), profile("c2", "bob@example.com", T0, T0)]
    load_orders(warehouse, arrow(orders, ORDER_SCHEMA), [], "r1", profiles=arrow(profiles, PROFILE_SCHEMA))
    publish_customers(warehouse, CONFIG, "r1")
    rows, total = feed_page(warehouse, "ampress", 1, 10)
    assert total == 2 and {r[1]: (r[4], r[5]) for r in rows}["ann@example.com"] == (2, 3000)

    result = load_orders(
        warehouse,
        ORDER_SCHEMA.empty_table(),
        [],
        "r2",
        deleted=[("differentbreed", "events", "c1"), ("differentbreed", "events", "c2")],
    )
    assert result["orders_deleted"] == 2
    publish_customers(warehouse, CONFIG, "r2")
    rows, total = feed_page(warehouse, "ampress", 1, 10)
    # Ann's GiftPro order still counts; Bob only bought through Different Breed and is gone.
    assert total == 1 and [(r[1], r[4], r[5], r[8]) for r in rows] == [
        ("ann@example.com", 1, 1000, "2026-03-01 00:00:00")
    ]
    with warehouse.reader() as cur:
        cur.execute("SELECT COUNT(*) FROM order_state WHERE source = 'differentbreed'")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT COUNT(*) FROM source_customers")
        assert cur.fetchone()[0] == 0
