"""The aggregation rules of `aggregate_customers`, on plain pandas frames shaped like the
warehouse's order_state rows (epoch-second timestamps, 0/1 flags, integer minor units)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from include.config import FeedConfig
from include.schema import ORDER_COLUMNS
from include.warehouse.aggregate import CUSTOMER_FRAME_COLUMNS, aggregate_customers

T0 = int(datetime(2025, 6, 1, 12, 0, tzinfo=UTC).timestamp())
DAY = 86400


def _feed(name: str, currency: str = "GBP", tz: str = "Europe/London", giftpro=(), differentbreed=()) -> dict:
    return {
        "name": name,
        "token_env": f"TOKEN_{name.upper().replace('-', '_')}",
        "currency": currency,
        "store": {
            "name": name,
            "currency": currency,
            "time_zone": tz,
            "email": "shop@example.com",
            "country": "United Kingdom",
            "country_code": "GB",
        },
        "sources": {"giftpro_domains": list(giftpro), "differentbreed_profiles": list(differentbreed)},
    }


def make_config(*feeds: dict) -> FeedConfig:
    return FeedConfig.model_validate({"feeds": list(feeds)})


# One GBP feed over GiftPro domains 1 and 2 and a Different Breed profile; domain 9 is in no feed.
CONFIG = make_config(_feed("shop", giftpro=["1", "2"], differentbreed=["events"]))

_seq = iter(range(1, 10**9))


def order(**fields) -> dict:
    """One order_state row with sensible defaults (a successful 10.00 GBP order, opted in)."""
    n = next(_seq)
    row = {
        "source": "giftpro",
        "domain": "1",
        "order_id": f"o{n}",
        "email_norm": "ann@example.com",
        "created_at": T0 + n,
        "changed_at": T0 + n,
        "status": "Complete",
        "successful": 1,
        "total_minor": 1000,
        "currency": "GBP",
        "first_name": "Ann",
        "last_name": "Lee",
        "phone": None,
        "marketing_opt_in": 1,
        "customer_ref": None,
        "version_hash": f"{n:032x}",
    }
    row.update(fields)
    return row


def frame(*orders: dict) -> pd.DataFrame:
    return pd.DataFrame(list(orders), columns=ORDER_COLUMNS)


def one(customers: pd.DataFrame, email: str = "ann@example.com", feed: str = "shop") -> dict:
    rows = customers[(customers["feed"] == feed) & (customers["email_norm"] == email)]
    assert len(rows) == 1, f"expected one row for ({feed}, {email}), got {len(rows)}"
    return rows.iloc[0].to_dict()


def test_columns_and_one_row_per_feed_and_email():
    out = aggregate_customers(frame(order(), order(), order(email_norm="bob@example.com")), CONFIG)
    assert list(out.columns) == CUSTOMER_FRAME_COLUMNS
    assert sorted(zip(out["feed"], out["email_norm"])) == [("shop", "ann@example.com"), ("shop", "bob@example.com")]
    assert set(out["gender"]) == {"unknown"}
    assert set(out["currency"]) == {"GBP"}


def test_orders_count_counts_successful_orders_only():
    out = aggregate_customers(
        frame(
            order(successful=1),
            order(successful=1, domain="2"),
            order(successful=0, status="Refunded"),
            order(successful=0, status="Cancelled", total_minor=0),
            order(successful=1, source="differentbreed", domain="events"),
        ),
        CONFIG,
    )
    assert one(out)["orders_count"] == 3


def test_total_spent_nets_out_refunded_and_unsuccessful_orders():
    # A refunded order may still carry its original amount: it must contribute nothing.
    out = aggregate_customers(
        frame(
            order(total_minor=2995),
            order(total_minor=1005),
            order(successful=0, status="Refunded", total_minor=5000),
            order(successful=0, status="Chargeback", total_minor=700),
            order(successful=0, status="Void", total_minor=0),
        ),
        CONFIG,
    )
    row = one(out)
    assert row["total_spent_minor"] == 4000
    assert row["orders_count"] == 2


def test_customer_with_only_unsuccessful_orders_has_zero_count_and_spend():
    out = aggregate_customers(frame(order(successful=0, status="Refunded", total_minor=1234)), CONFIG)
    row = one(out)
    assert (row["orders_count"], row["total_spent_minor"]) == (0, 0)


def test_registered_at_is_first_order_of_any_status():
    first = T0 - 30 * DAY  # 2025-05-02 12:00:00 UTC = 13:00:00 BST
    out = aggregate_customers(
        frame(
            order(created_at=T0),
            order(created_at=first, successful=0, status="Refunded"),
            order(created_at=T0 + DAY),
        ),
        CONFIG,
    )
    assert one(out)["registered_at"] == "2025-05-02 13:00:00"


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        # March 2026: clocks go forward at 01:00 UTC (01:00 GMT -> 02:00 IST/BST).
        ("2026-03-29T00:59:59", "2026-03-29 00:59:59"),
        ("2026-03-29T01:00:00", "2026-03-29 02:00:00"),
        # October 2026: clocks go back at 01:00 UTC; 01:30 local happens twice.
        ("2026-10-25T00:30:00", "2026-10-25 01:30:00"),
        ("2026-10-25T01:30:00", "2026-10-25 01:30:00"),
        ("2026-10-25T00:59:59", "2026-10-25 01:59:59"),
        ("2026-10-25T01:00:00", "2026-10-25 01:00:00"),
        ("2026-01-15T09:00:00", "2026-01-15 09:00:00"),
        ("2026-07-15T09:00:00", "2026-07-15 10:00:00"),
        # Midnight crossing in summer time.
        ("2026-07-15T23:30:00", "2026-07-16 00:30:00"),
    ],
)
def test_registered_at_in_each_feeds_time_zone_across_dst(utc, local):
    """Europe/Dublin (whose tz database entry uses 'negative' DST) and Europe/London read the same
    UTC moment as the same wall-clock time, on both sides of each change."""
    config = make_config(
        _feed("london", tz="Europe/London", giftpro=["1"]),
        _feed("dublin", tz="Europe/Dublin", giftpro=["1"]),
    )
    moment = int(datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp())
    out = aggregate_customers(frame(order(created_at=moment)), config)
    assert one(out, feed="london")["registered_at"] == local
    assert one(out, feed="dublin")["registered_at"] == local


def test_registered_at_uses_the_feeds_own_zone():
    config = make_config(
        _feed("london", tz="Europe/London", giftpro=["1"]),
        _feed("utc", tz="UTC", giftpro=["1"]),
        _feed("ny", tz="America/New_York", giftpro=["1"]),
    )
    moment = int(datetime(2026, 7, 1, 3, 0, tzinfo=UTC).timestamp())
    out = aggregate_customers(frame(order(created_at=moment)), config)
    assert one(out, feed="london")["registered_at"] == "2026-07-01 04:00:00"
    assert one(out, feed="utc")["registered_at"] == "2026-07-01 03:00:00"
    assert one(out, feed="ny")["registered_at"] == "2026-06-30 23:00:00"


class TestConsent:
    def test_from_latest_order_by_created_at(self):
        out = aggregate_customers(
            frame(
                order(created_at=T0 + 2 * DAY, marketing_opt_in=0, changed_at=T0),
                # changed later, but created earlier: not the latest order
                order(created_at=T0 + DAY, marketing_opt_in=1, changed_at=T0 + 10 * DAY),
            ),
            CONFIG,
        )
        assert bool(one(out)["accepts_marketing"]) is False

    def test_later_opt_in_restores_consent(self):
        out = aggregate_customers(
            frame(order(created_at=T0, marketing_opt_in=0), order(created_at=T0 + DAY, marketing_opt_in=1)),
            CONFIG,
        )
        assert bool(one(out)["accepts_marketing"]) is True

    def test_latest_order_counts_whatever_its_status(self):
        out = aggregate_customers(
            frame(
                order(created_at=T0, marketing_opt_in=1),
                order(created_at=T0 + DAY, marketing_opt_in=0, successful=0, status="Refunded"),
            ),
            CONFIG,
        )
        assert bool(one(out)["accepts_marketing"]) is False

    @pytest.mark.parametrize(
        ("a", "b", "winner"),
        [
            # Same created_at: ties broken by source, then domain, then order_id (greatest wins).
            ({"source": "giftpro", "domain": "1"}, {"source": "differentbreed", "domain": "events"}, "a"),
            ({"domain": "2", "order_id": "a"}, {"domain": "1", "order_id": "z"}, "a"),
            ({"domain": "1", "order_id": "b"}, {"domain": "1", "order_id": "a"}, "a"),
        ],
    )
    @pytest.mark.parametrize("flip_input_order", [False, True])
    def test_ties_on_created_at(self, a, b, winner, flip_input_order):
        oa = order(created_at=T0, marketing_opt_in=1, first_name="Winner", **a)
        ob = order(created_at=T0, marketing_opt_in=0, first_name="Loser", **b)
        rows = [ob, oa] if flip_input_order else [oa, ob]
        row = one(aggregate_customers(frame(*rows), CONFIG))
        assert bool(row["accepts_marketing"]) is True
        assert row["first_name"] == "Winner"


class TestNamesAndPhone:
    def test_names_from_latest_named_order(self):
        out = aggregate_customers(
            frame(
                order(created_at=T0, first_name="Old", last_name="Name"),
                order(created_at=T0 + DAY, first_name="New", last_name="Surname"),
                order(created_at=T0 + 2 * DAY, first_name=None, last_name=None),
                order(created_at=T0 + 3 * DAY, first_name="", last_name=""),
            ),
            CONFIG,
        )
        row = one(out)
        assert (row["first_name"], row["last_name"]) == ("New", "Surname")

    def test_first_name_only_does_not_borrow_older_last_name(self):
        out = aggregate_customers(
            frame(
                order(created_at=T0, first_name="Mary", last_name="Owen"),
                order(created_at=T0 + DAY, first_name="Mo", last_name=None),
            ),
            CONFIG,
        )
        row = one(out)
        assert (row["first_name"], row["last_name"]) == ("Mo", "")

    def test_no_name_anywhere_gives_empty_strings(self):
        row = one(aggregate_customers(frame(order(first_name=None, last_name=None)), CONFIG))
        assert (row["first_name"], row["last_name"]) == ("", "")

    def test_non_ascii_names_kept(self):
        row = one(aggregate_customers(frame(order(first_name="Zoë", last_name="Ó Briain")), CONFIG))
        assert (row["first_name"], row["last_name"]) == ("Zoë", "Ó Briain")

    def test_phone_from_latest_order_that_has_one(self):
        out = aggregate_customers(
            frame(
                order(created_at=T0, phone="+441111"),
                order(created_at=T0 + DAY, phone="+442222"),
                order(created_at=T0 + 2 * DAY, phone=None),
                order(created_at=T0 + 3 * DAY, phone=""),
            ),
            CONFIG,
        )
        assert one(out)["phone"] == "+442222"

    def test_phone_is_none_when_no_order_has_one(self):
        assert one(aggregate_customers(frame(order(phone=None)), CONFIG))["phone"] is None

    def test_phone_and_names_may_come_from_different_orders(self):
        out = aggregate_customers(
            frame(
                order(created_at=T0, phone="+441111", first_name="A", last_name="B"),
                order(created_at=T0 + DAY, phone=None, first_name="C", last_name="D"),
            ),
            CONFIG,
        )
        row = one(out)
        assert (row["first_name"], row["last_name"], row["phone"]) == ("C", "D", "+441111")


class TestFeedMembership:
    def test_domain_in_two_feeds_counts_in_both(self):
        config = make_config(_feed("a", giftpro=["1", "2"]), _feed("b", giftpro=["2", "3"]))
        out = aggregate_customers(
            frame(
                order(domain="1", total_minor=100),
                order(domain="2", total_minor=200),
                order(domain="3", total_minor=400),
            ),
            config,
        )
        a, b = one(out, feed="a"), one(out, feed="b")
        assert (a["orders_count"], a["total_spent_minor"]) == (2, 300)
        assert (b["orders_count"], b["total_spent_minor"]) == (2, 600)

    def test_domain_in_no_feed_is_in_none(self):
        out = aggregate_customers(
            frame(
                order(domain="1", total_minor=100, created_at=T0),
                order(
                    domain="9",
                    total_minor=5000,
                    created_at=T0 - DAY,
                    marketing_opt_in=0,
                    first_name="Other",
                    phone="+449",
                ),
                order(domain="9", email_norm="ghost@example.com"),
            ),
            CONFIG,
        )
        assert list(out["email_norm"]) == ["ann@example.com"]
        row = one(out)
        assert (row["orders_count"], row["total_spent_minor"]) == (1, 100)
        # The unconfigured domain's order influences nothing: not the first order, not the name.
        assert row["registered_at"] == datetime.fromtimestamp(T0, UTC).astimezone(
            CONFIG.feed("shop").time_zone
        ).strftime("%Y-%m-%d %H:%M:%S")
        assert row["phone"] is None

    def test_source_matters_not_only_domain(self):
        # "1" is a GiftPro domain of the feed; a Different Breed profile called "1" is not.
        out = aggregate_customers(frame(order(source="differentbreed", domain="1")), CONFIG)
        assert out.empty

    def test_other_feed_orders_do_not_leak(self):
        config = make_config(_feed("a", giftpro=["1"]), _feed("b", giftpro=["2"]))
        out = aggregate_customers(
            frame(
                order(domain="1", created_at=T0, marketing_opt_in=1, first_name="A"),
                order(domain="2", created_at=T0 + DAY, marketing_opt_in=0, first_name="B"),
            ),
            config,
        )
        assert bool(one(out, feed="a")["accepts_marketing"]) is True
        assert one(out, feed="a")["first_name"] == "A"
        assert bool(one(out, feed="b")["accepts_marketing"]) is False


def test_currency_mismatch_is_never_summed():
    # The configuration refuses a domain in feeds of two currencies; the aggregation keeps the
    # currencies apart even so (built unchecked, as a configuration from before the rule).
    gbp, eur = (
        make_config(_feed("gbp", "GBP", giftpro=["1"])),
        make_config(_feed("eur", "EUR", tz="Europe/Dublin", giftpro=["1"])),
    )
    config = FeedConfig.model_construct(feeds=(*gbp.feeds, *eur.feeds), giftpro=gbp.giftpro)
    out = aggregate_customers(
        frame(
            order(currency="GBP", total_minor=1000),
            order(currency="GBP", total_minor=500),
            order(currency="EUR", total_minor=7000),
            order(currency="USD", total_minor=90000),
        ),
        config,
    )
    gbp, eur = one(out, feed="gbp"), one(out, feed="eur")
    assert (gbp["currency"], gbp["total_spent_minor"]) == ("GBP", 1500)
    assert (eur["currency"], eur["total_spent_minor"]) == ("EUR", 7000)
    assert gbp["orders_count"] == 2 and eur["orders_count"] == 1


def test_only_foreign_currency_orders_make_no_customer():
    out = aggregate_customers(frame(order(currency="USD", total_minor=90000)), CONFIG)
    assert out.empty  # not a customer worth 0: no order of the feed's currency, no row


def test_empty_input():
    out = aggregate_customers(frame(), CONFIG)
    assert out.empty
    assert list(out.columns) == CUSTOMER_FRAME_COLUMNS


def test_input_order_does_not_matter():
    rows = [
        order(
            created_at=T0 + i * DAY,
            email_norm=f"c{i % 3}@example.com",
            marketing_opt_in=i % 2,
            successful=int(i % 4 != 0),
            total_minor=100 * i,
            phone=None if i % 3 else f"+44{i}",
            first_name=f"F{i}",
            last_name=None if i % 5 == 0 else f"L{i}",
            domain=str(1 + i % 2),
        )
        for i in range(12)
    ]
    expected = aggregate_customers(frame(*rows), CONFIG)
    for shuffled in (rows[::-1], rows[5:] + rows[:5]):
        pd.testing.assert_frame_equal(aggregate_customers(frame(*shuffled), CONFIG), expected)


def test_types_are_plain():
    out = aggregate_customers(frame(order(), order(successful=0)), CONFIG)
    assert str(out["orders_count"].dtype) == "int64"
    assert str(out["total_spent_minor"].dtype) == "int64"
    assert out["accepts_marketing"].dtype == bool


# --------------------------------------------------------------------------- source profiles (Different Breed)


def _profile(ref: str, email: str = "ann@example.com", registered=None, changed=T0, first=None, last=None) -> dict:
    return {
        "source": "differentbreed",
        "domain": "events",
        "customer_ref": ref,
        "email_norm": email,
        "first_name": first,
        "last_name": last,
        "registered_at": registered,
        "changed_at": changed,
        "version_hash": f"{ref}-{changed}",
    }


def profiles_frame(*rows: dict) -> pd.DataFrame:
    from include.schema import PROFILE_COLUMNS

    return pd.DataFrame(list(rows), columns=PROFILE_COLUMNS)


@pytest.mark.parametrize("registered", [[None], [None, None], [None, T0 - 5 * DAY]])
def test_profiles_without_registration_date(registered):
    """A profile may have no registration date (NULL in the warehouse): the customer's
    registered_at is then the first order, or the earliest registration that is known."""
    profiles = profiles_frame(*[_profile(f"c{i}", registered=r) for i, r in enumerate(registered)])
    out = aggregate_customers(frame(order(created_at=T0)), CONFIG, profiles)
    known = [r for r in registered if r is not None]
    expected = min([T0, *known])
    assert one(out)["registered_at"] == datetime.fromtimestamp(expected, UTC).astimezone(
        CONFIG.feed("shop").time_zone
    ).strftime("%Y-%m-%d %H:%M:%S")


def test_profile_registration_earlier_than_first_order():
    profiles = profiles_frame(_profile("c1", registered=T0 - 10 * DAY))
    out = aggregate_customers(frame(order(created_at=T0)), CONFIG, profiles)
    assert one(out)["registered_at"] == "2025-05-22 13:00:00"
