"""The staged record schemas, declared once and used by the extracts, the load, the tests and
the sandboxes.

An order is staged in one normalised shape whatever its source, so that the load, the order
state and the aggregation never need to know where it came from. Money is held in integer minor
units (pence, cents) so that no sum ever drifts by a fraction of a penny; timestamps are UTC.
"""

from __future__ import annotations

import pyarrow as pa

#: Bump when a column is added, removed or changes meaning; it is written into every file's
#: metadata and into the staging path, so old and new files never mix silently.
SCHEMA_VERSION = "1"

UTC_TS = pa.timestamp("s", tz="UTC")

ORDER_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),  # "giftpro" | "differentbreed"
        pa.field("domain", pa.string(), nullable=False),  # GiftPro domainID / Different Breed profile
        pa.field("order_id", pa.string(), nullable=False),
        pa.field("email_norm", pa.string(), nullable=False),  # trimmed, lower-cased
        pa.field("created_at", UTC_TS, nullable=False),
        pa.field("changed_at", UTC_TS, nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("successful", pa.bool_(), nullable=False),  # paid, not refunded/void/charged back
        pa.field("total_minor", pa.int64(), nullable=False),  # money kept, minor units
        pa.field("currency", pa.string(), nullable=False),  # ISO 4217
        pa.field("first_name", pa.string()),
        pa.field("last_name", pa.string()),
        pa.field("phone", pa.string()),
        pa.field("marketing_opt_in", pa.bool_(), nullable=False),
        pa.field("customer_ref", pa.string()),  # the source's own customer id, where it has one
        # Deterministic digest of the fields above: breaks ties between two versions that share
        # `changed_at`, the same way whichever arrives first.
        pa.field("version_hash", pa.string(), nullable=False),
    ],
    metadata={"customer_feed.schema": "orders", "customer_feed.schema_version": SCHEMA_VERSION},
)

#: A customer as a source with customer accounts (Different Breed) knows it: the profile's names
#: and registration date count towards the merged customer, next to the orders.
PROFILE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),  # Different Breed profile
        pa.field("customer_ref", pa.string(), nullable=False),  # cust_id
        pa.field("email_norm", pa.string(), nullable=False),
        pa.field("first_name", pa.string()),
        pa.field("last_name", pa.string()),
        pa.field("registered_at", UTC_TS),
        pa.field("changed_at", UTC_TS, nullable=False),
        pa.field("version_hash", pa.string(), nullable=False),
    ],
    metadata={"customer_feed.schema": "profiles", "customer_feed.schema_version": SCHEMA_VERSION},
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("order_id", pa.string()),  # None when the record had none
        pa.field("customer_ref", pa.string()),  # the source's customer id, where it has one
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),  # the record as received, JSON
    ],
    metadata={"customer_feed.schema": "quarantine", "customer_feed.schema_version": SCHEMA_VERSION},
)

#: Columns as the warehouse stores them (timestamps as epoch seconds, booleans as 0/1).
ORDER_COLUMNS = [f.name for f in ORDER_SCHEMA]
PROFILE_COLUMNS = [f.name for f in PROFILE_SCHEMA]

#: The converted.in customer record, key for key, in the order the feed answers them.
FEED_CUSTOMER_KEYS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "orders_count",
    "total_spent",
    "currency",
    "phone",
    "registered_at",
    "gender",
)

#: The converted.in list envelope.
FEED_ENVELOPE_KEYS = ("current_page", "data", "from", "last_page", "per_page", "to", "total")


def to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Records -> a table of exactly `schema`, column-wise (one Arrow conversion per column)."""
    return pa.table({f.name: pa.array([r[f.name] for r in rows], f.type) for f in schema}, schema=schema)
