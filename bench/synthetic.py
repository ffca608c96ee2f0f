"""Synthetic order state at scale for the benchmarks: ORDER_SCHEMA tables built with numpy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from include.schema import ORDER_SCHEMA

DOMAINS = {"3521": "GBP", "3522": "GBP", "3523": "GBP", "4101": "EUR", "4102": "EUR"}
START = 1_704_067_200  # 2024-01-01 UTC


def orders(n: int, emails: int, seed: int, first_id: int = 0, changed_at: int = START + 3 * 365 * 86400) -> pa.Table:
    rng = np.random.default_rng(seed)
    domains = np.array(list(DOMAINS))
    domain = domains[rng.integers(0, len(domains), n)]
    created = START + np.sort(rng.integers(0, 2 * 365 * 86400, n))
    successful = rng.random(n) < 0.9
    email_ids = rng.integers(0, emails, n)
    return pa.table(
        {
            "source": pa.array(["giftpro"] * n),
            "domain": pa.array(domain),
            "order_id": pa.array((np.arange(n) + first_id).astype(str)),
            "email_norm": pa.array(np.char.add(np.char.add("customer", email_ids.astype(str)), "@example.com")),
            "created_at": pa.array(created, pa.timestamp("s", tz="UTC")),
            "changed_at": pa.array(np.full(n, changed_at), pa.timestamp("s", tz="UTC")),
            "status": pa.array(np.where(successful, "Complete", "Cancelled")),
            "successful": pa.array(successful),
            "total_minor": pa.array(np.where(successful, rng.integers(500, 50_000, n), 0)),
            "currency": pa.array(np.vectorize(DOMAINS.get)(domain)),
            "first_name": pa.array(np.where(rng.random(n) < 0.95, "Zoë", None)),
            "last_name": pa.array(np.where(rng.random(n) < 0.9, "Brontë", None)),
            "phone": pa.array(np.where(rng.random(n) < 0.2, "+447700900123", None)),
            "marketing_opt_in": pa.array(rng.random(n) < 0.8),
            "customer_ref": pa.nulls(n, pa.string()),
            "version_hash": pa.array(np.full(n, f"{seed:032x}")),
        },
        schema=ORDER_SCHEMA,
    )


# --------------------------------------------------------------------------- merchant-group scale
#
# Every attribute of order i is a function of i (a counter-based hash), so a benchmark can build
# any slice of a 10M-order history, or the current version of any order it wants to edit,
# without holding the history in memory.

#: 50 GiftPro properties over five feeds (three in GBP, two in EUR), ten properties each.
SCALE_FEEDS = {
    f"group{f}": ("GBP" if f < 3 else "EUR", "Europe/London" if f < 3 else "Europe/Dublin") for f in range(5)
}
SCALE_DOMAINS = {str(5000 + d): f"group{d // 10}" for d in range(50)}


def scale_config():
    """The feed configuration of the 50-property group."""
    from include.config import FeedConfig

    feeds = []
    for name, (currency, zone) in SCALE_FEEDS.items():
        feeds.append(
            {
                "name": name,
                "token_env": f"TOKEN_{name.upper()}",
                "currency": currency,
                "store": {
                    "name": name,
                    "currency": currency,
                    "time_zone": zone,
                    "email": "marketing@example.com",
                    "country": "United Kingdom",
                    "country_code": "GB",
                },
                "sources": {"giftpro_domains": [d for d, f in SCALE_DOMAINS.items() if f == name]},
            }
        )
    return FeedConfig.model_validate({"feeds": feeds})


def _mix(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of (x, salt): uniform 64-bit values, vectorised."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt * 0xBF58476D1CE4E5B9 & (2**64 - 1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def scale_orders(index: np.ndarray, total: int, emails: int, version: int = 0) -> pa.Table:
    """Orders number `index` (of a history of `total` orders over `emails` customers) in version
    `version`: version 0 is the original; each later version flips the order's refund status, and
    one in ten also its consent, stamped an hour later per version."""
    import pyarrow.compute as pc

    index = np.asarray(index, dtype=np.int64)
    n = len(index)
    names = list(SCALE_DOMAINS)
    which = (_mix(index, 1) % np.uint64(len(names))).astype(np.int64)
    domain = pa.array(names).take(pa.array(which))
    currency = pa.array([SCALE_FEEDS[SCALE_DOMAINS[d]][0] for d in names]).take(pa.array(which))
    created = START + index * (2 * 365 * 86400) // max(total, 1)
    successful = (_mix(index, 2) % np.uint64(10)) != 0
    opt_in = (_mix(index, 3) % np.uint64(5)) != 0
    if version % 2:
        successful = ~successful
        opt_in = np.where((_mix(index, 4) % np.uint64(10)) == 0, ~opt_in, opt_in)
    email_ids = pa.array((_mix(index, 5) % np.uint64(max(emails, 1))).astype(np.int64))
    amount = 500 + (_mix(index, 6) % np.uint64(49_500)).astype(np.int64)
    named = pa.array((_mix(index, 7) % np.uint64(20)) != 0)
    phoned = pa.array((_mix(index, 8) % np.uint64(5)) == 0)
    changed = START + 3 * 365 * 86400 + version * 3600
    text = pa.string()
    return pa.table(
        {
            "source": pa.array(["giftpro"], text).take(pa.array(np.zeros(n, np.int64))),
            "domain": domain,
            "order_id": pa.array(index).cast(text),
            "email_norm": pc.binary_join_element_wise("customer", email_ids.cast(text), "@example.com", ""),
            "created_at": pa.array(created, pa.timestamp("s", tz="UTC")),
            "changed_at": pa.array(np.full(n, changed), pa.timestamp("s", tz="UTC")),
            "status": pc.if_else(pa.array(successful), "Complete", "Refunded"),
            "successful": pa.array(successful),
            "total_minor": pa.array(amount),
            "currency": currency,
            "first_name": pc.if_else(named, pa.scalar("Zoë"), pa.scalar(None, text)),
            "last_name": pc.if_else(named, pa.scalar("Brontë"), pa.scalar(None, text)),
            "phone": pc.if_else(phoned, pa.scalar("+447700900123"), pa.scalar(None, text)),
            "marketing_opt_in": pa.array(opt_in),
            "customer_ref": pa.nulls(n, text),
            "version_hash": pa.array([f"{version:032x}"], text).take(pa.array(np.zeros(n, np.int64))),
        },
        schema=ORDER_SCHEMA,
    )
