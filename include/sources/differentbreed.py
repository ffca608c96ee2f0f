"""Different Breed: polling each customer of a profile for its profile and recent orders.

Connection ``differentbreed_default`` (type http): host = API base URL
(``https://api.differentbreed.events/client/api/v1``), password = the profile's admin key. The
profile comes from the feed configuration and travels in the ``profile`` header.

The API allows 250 requests per 10 seconds. Parallel batches share that budget: the DAG's pool
bounds how many run at once and each client takes its share (``share_of_rate_limit``) through a
sliding-window limiter; a 429 that still arrives is waited out by the shared HTTP layer.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from include.config import DifferentBreedSettings
from include.money import normalize_currency
from include.schema import ORDER_SCHEMA, PROFILE_SCHEMA, QUARANTINE_SCHEMA, to_table
from include.sources.http import SourceHttp
from include.sources.normalize import (
    BadRecord,
    clean_text,
    normalize_email,
    parse_amount,
    parse_bool,
    parse_status,
    version_hash,
)

RATE_LIMIT, RATE_PERIOD = 250, 10.0
PAGE_SIZE = 100
#: The ``error`` of the API's own answer for a customer it does not know (deleted at the source):
#: ``404 {"error": "customer_not_found", "message": ...}``. Only that proves a deletion.
CUSTOMER_NOT_FOUND = "customer_not_found"


def customer_not_found(body) -> bool:
    """Whether a 404's body is the API saying it does not know the customer. Any other 404 (an
    HTML error page, an empty body, a router's ``{"detail": "Not Found"}`` from a wrong base path)
    proves nothing: the HTTP layer retries it and then fails, and no customer is deleted."""
    return isinstance(body, dict) and body.get("error") == CUSTOMER_NOT_FOUND


_NOT_FOUND = {404: customer_not_found}


class SlidingWindowLimiter:
    """At most `limit` calls in any `period` seconds (thread-safe; blocks until allowed)."""

    def __init__(self, limit: int, period: float):
        self.limit, self.period = max(1, limit), period
        self.calls: collections.deque[float] = collections.deque()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                while self.calls and now - self.calls[0] >= self.period:
                    self.calls.popleft()
                if len(self.calls) < self.limit:
                    self.calls.append(now)
                    return
                wait = self.period - (now - self.calls[0])
            time.sleep(max(wait, 0.001))


class DifferentBreedClient:
    def __init__(
        self,
        conn_id: str = "differentbreed_default",
        profile: str = "",
        share_of_rate_limit: float = 1.0,
        rate_limit: int = RATE_LIMIT,
        rate_period: float = RATE_PERIOD,
        **http_options,
    ):
        # 90% of the share: the server counts arrivals, not departures, so a limiter at exactly
        # the limit still meets the odd 429 when requests bunch up on the wire.
        self.limiter = SlidingWindowLimiter(int(rate_limit * share_of_rate_limit * 0.9), rate_period)
        self.http = SourceHttp(conn_id, before_request=self.limiter.acquire, **http_options)
        self.http.session.auth = None
        self.http.session.headers.update({"admin-key": self.http.secret, "profile": profile})
        self.profile = profile

    def get_customer(self, cust_id: str) -> dict | None:
        """The customer's profile; None when the API answers that it does not know it (deleted)."""
        status, body = self.http.get_json("/customer", headers={"customer": cust_id}, accept=_NOT_FOUND)
        return None if status == 404 else body["payload"]

    def iter_orders(self, cust_id: str, date_from: datetime | None, date_to: datetime) -> list[dict]:
        """The customer's orders changed in [date_from, date_to) (all of them when date_from is None)."""
        params = {"limit": PAGE_SIZE, "date_to": _iso(date_to)}
        if date_from is not None:
            params["date_from"] = _iso(date_from)
        seen: dict[str, dict] = {}
        skip = 0
        while True:
            status, body = self.http.get_json(
                "/orders", params={**params, "skip": skip}, headers={"customer": cust_id}, accept=_NOT_FOUND
            )
            if status == 404:
                return list(seen.values())
            page = body.get("payload") or []
            for order in page:
                seen.setdefault(str(order.get("order_id")), order)
            skip += len(page)
            if not page or skip >= int(body.get("meta", {}).get("total", 0)):
                return list(seen.values())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(text) -> datetime:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise BadRecord(f"unparseable date {str(text)[:30]!r}") from None


def normalize_profile(raw: dict, profile: str) -> dict:
    row = {
        "source": "differentbreed",
        "domain": profile,
        "customer_ref": str(raw["cust_id"]),
        "email_norm": normalize_email(raw.get("email")),
        "first_name": clean_text(raw.get("forename")),
        "last_name": clean_text(raw.get("surname")),
        "registered_at": _utc(raw["created_at"]) if raw.get("created_at") else None,
        "changed_at": _utc(raw.get("updated_at") or raw.get("created_at")),
    }
    row["version_hash"] = version_hash(row)
    return row


def normalize_order(
    raw: dict, customer: dict, profile: str, settings: DifferentBreedSettings, expected_currency: str
) -> dict:
    if not raw.get("order_id"):
        raise BadRecord("missing order_id")
    currency = normalize_currency(raw.get("currency"))
    if currency != expected_currency:
        raise BadRecord(f"currency {currency} differs from the feed currency {expected_currency}")
    amount = parse_amount(raw.get("total"), currency)
    status, successful = parse_status(raw.get("status"), settings.success_statuses)
    opted_in = parse_bool(raw.get("marketing_opt_in"), "marketing_opt_in")
    row = {
        "source": "differentbreed",
        "domain": profile,
        "order_id": str(raw["order_id"]),
        "email_norm": customer["email_norm"],
        "created_at": _utc(raw.get("created_at")),
        "changed_at": _utc(raw.get("updated_at") or raw.get("created_at")),
        "status": status,
        "successful": successful,
        "total_minor": amount if successful else 0,
        "currency": currency,
        "first_name": None,
        "last_name": None,
        "phone": None,
        "marketing_opt_in": opted_in,
        "customer_ref": customer["customer_ref"],
    }
    row["version_hash"] = version_hash(row)
    return row


@dataclass
class CustomersResult:
    orders: pa.Table
    profiles: pa.Table
    quarantine: pa.Table
    deleted: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def extract_customers(
    client: DifferentBreedClient,
    cust_ids: list[str],
    new_cust_ids: set[str],
    lower: datetime | None,
    upper: datetime,
    settings: DifferentBreedSettings,
    expected_currency: str,
) -> CustomersResult:
    """Poll each customer: its profile (the API's own "customer not found" means deleted at the
    source; any other 404 fails the batch) and its orders changed
    since `lower` — or all of them for a customer the warehouse has never seen."""
    started = time.perf_counter()
    orders, profiles, bad, deleted = [], [], [], []
    for cust_id in cust_ids:
        raw_customer = client.get_customer(cust_id)
        if raw_customer is None:
            deleted.append(cust_id)
            continue
        try:
            customer = normalize_profile(raw_customer, client.profile)
        except (BadRecord, KeyError) as exc:
            bad.append(_quarantine(client.profile, None, cust_id, f"customer: {exc}", raw_customer))
            continue
        profiles.append(customer)
        since = None if cust_id in new_cust_ids else lower
        for raw in client.iter_orders(cust_id, since, upper):
            try:
                orders.append(normalize_order(raw, customer, client.profile, settings, expected_currency))
            except BadRecord as exc:
                bad.append(_quarantine(client.profile, raw.get("order_id"), cust_id, str(exc), raw))
    return CustomersResult(
        orders=to_table(orders, ORDER_SCHEMA),
        profiles=to_table(profiles, PROFILE_SCHEMA),
        quarantine=to_table(bad, QUARANTINE_SCHEMA),
        deleted=deleted,
        stats={
            "orders": len(orders),
            "quarantined": len(bad),
            "customers": len(cust_ids),
            "requests": client.http.requests,
            "retries": client.http.retries,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )


def _quarantine(profile: str, order_id, cust_id: str, reason: str, raw: dict) -> dict:
    return {
        "source": "differentbreed",
        "domain": profile,
        "order_id": None if not order_id else str(order_id),
        "customer_ref": cust_id,
        "reason": reason,
        "raw": json.dumps(raw, ensure_ascii=False, default=str),
    }
