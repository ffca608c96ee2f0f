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
