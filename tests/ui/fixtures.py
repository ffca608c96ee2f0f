"""Small staged tables for the monitoring tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from include.schema import ORDER_SCHEMA

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def order_rows(n: int, start: int = 0, domain: str = "3521") -> pa.Table:
    """`n` paid, consenting GiftPro orders of 12.50 GBP, one customer each."""
    return pa.Table.from_pylist(
        [
            {
                "source": "giftpro",
                "domain": domain,
                "order_id": str(i),
                "email_norm": f"customer{i}@example.com",
                "created_at": T0,
                "changed_at": T0,
                "status": "Complete",
                "successful": True,
                "total_minor": 1250,
                "currency": "GBP",
                "first_name": "Ann",
                "last_name": "Lee",
                "phone": None,
                "marketing_opt_in": True,
                "customer_ref": None,
                "version_hash": f"v{i}",
            }
            for i in range(start, start + n)
        ],
        schema=ORDER_SCHEMA,
    )
