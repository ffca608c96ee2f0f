"""`registered_at` on the store's wall clock, as the rules compute it (an equality join on each
zone's offsets by day, not a conversion per row), against Python's zoneinfo for instants around
every kind of clock change."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from include.config import FeedConfig
from include.warehouse.aggregate import ORDER_FIELDS, aggregate_arrow, zone_days

ZONES = [
    "Europe/London",
    "Europe/Dublin",  # "negative" daylight saving in the tz database
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour daylight saving
    "Asia/Kathmandu",  # +05:45, changed in 1986
    "America/Sao_Paulo",  # daylight saving abolished in 2019
    "UTC",
]


def _config(zones: list[str]) -> FeedConfig:
    return FeedConfig.model_validate(
        {
            "feeds": [
                {
                    "name": f"f{i}",
                    "token_env": f"TOKEN_F{i}",
                    "currency": "GBP",
                    "store": {
                        "name": zone,
                        "currency": "GBP",
                        "time_zone": zone,
                        "email": "shop@example.com",
                        "country": "X",
                        "country_code": "XX",
                    },
                    "sources": {"giftpro_domains": ["1"]},
                }
                for i, zone in enumerate(zones)
            ]
        }
    )


def _instants() -> list[int]:
    """Random instants 1950-2090, and every second-exact clock change of 2026 with a second
    either side."""
    rng = random.Random(20261201)
    out = [rng.randrange(-631_152_000, 3_786_912_000) for _ in range(300)]
    for zone in ZONES:
        transitions = [t for t, _ in _transitions_2026(zone)]
        out += [t + d for t in transitions for d in (-1, 0, 1)]
    return out


def _transitions_2026(zone: str):
    from include.warehouse.aggregate import _transitions

    return [(t, o) for t, o in _transitions(zone) if 1_767_225_600 <= t < 1_798_761_600]


@pytest.mark.parametrize("zone", ZONES)
def test_registered_at_matches_zoneinfo(zone):
    instants = _instants()
    orders = pa.table(
        {
            "source": ["giftpro"] * len(instants),
            "domain": ["1"] * len(instants),
            "order_id": [str(i) for i in range(len(instants))],
            "email_norm": [f"c{i}@example.com" for i in range(len(instants))],
            "created_at": pa.array(instants, pa.int64()),
            "successful": pa.array([1] * len(instants), pa.int8()),
            "total_minor": pa.array([100] * len(instants), pa.int64()),
            "currency": ["GBP"] * len(instants),
            "first_name": pa.nulls(len(instants), pa.string()),
            "last_name": pa.nulls(len(instants), pa.string()),
            "phone": pa.nulls(len(instants), pa.string()),
            "marketing_opt_in": pa.array([1] * len(instants), pa.int8()),
        }
    ).select(ORDER_FIELDS)
    out = aggregate_arrow(orders, _config([zone]))
    got = dict(zip(out["email_norm"].to_pylist(), out["registered_at"].to_pylist()))
    tz = ZoneInfo(zone)
    for i, t in enumerate(instants):
        expected = datetime.fromtimestamp(t, UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        assert got[f"c{i}@example.com"] == expected, (zone, t)


def test_zone_days_has_a_row_per_day_and_zone():
    table = zone_days(("Europe/London", "UTC"))
    days = (4_102_444_800 + 2_208_988_800) // 86_400
    assert table.num_rows == 2 * days
    changes = table.filter(pa.compute.not_equal(table["offset_s"], table["offset_after"]))
    # London changes its clocks twice a year in most years; UTC never.
    assert set(changes["zone"].to_pylist()) == {"Europe/London"}
    assert changes.num_rows > 2 * 100
