"""GiftPro: the orders list client and the normaliser to the staged order schema.

Connection ``giftpro_default`` (type http): host = API base URL (``https://api.giftpro.co.uk``),
password = API key. Extras the client reads (never sent as headers):

* ``auth``: ``"basic"`` (default: the key as the HTTP Basic user name, empty password, as
  GiftPro's third-party clients do) or ``"header"`` (the key in a header);
* ``auth_header``: the header's name when ``auth`` is ``"header"`` (default ``X-API-Key``).

Other extras keep their HTTP provider meaning (``timeout``, ``verify``, proxies…).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import pyarrow as pa

from include.config import GiftProSettings
from include.money import normalize_currency
from include.schema import ORDER_SCHEMA, QUARANTINE_SCHEMA, to_table
from include.sources.http import SourceHttp
from include.sources.local_time import parse_local
from include.sources.normalize import (
    BadRecord,
    clean_text,
    normalize_email,
    parse_amount,
    parse_bool,
    parse_status,
    split_name,
    version_hash,
)

PAGE_SIZE = 50


class GiftProClient:
    def __init__(self, conn_id: str = "giftpro_default", changed_field: str = "changed", **http_options):
        self.http = SourceHttp(conn_id, client_extras=("auth", "auth_header"), **http_options)
        self.changed_field = changed_field
        scheme = str(self.http.extras.get("auth", "basic")).lower()
        if scheme == "basic":
            self.http.session.auth = (self.http.secret, "")
        elif scheme == "header":
            self.http.session.auth = None
            self.http.session.headers[str(self.http.extras.get("auth_header", "X-API-Key"))] = self.http.secret
        else:
            raise ValueError(f"giftpro connection: unknown auth scheme {scheme!r} (basic or header)")

    def list_page(self, params: dict) -> list[dict]:
        _, orders = self.http.get_json("/orders/", params=params)
        if not isinstance(orders, list):
            raise ValueError(f"GiftPro /orders/ answered {type(orders).__name__}, expected a list")
        return orders

    def iter_orders(
        self,
        domain_id: str,
        changed_from: str | None,
        changed_to: str,
        created_from: str | None = None,
        created_to: str | None = None,
    ) -> Iterator[dict]:
        """Every order of `domain_id` whose `changed` is in [changed_from, changed_to) (and, for a
        slice of the history, whose `dateCreated` is in [created_from, created_to)), each once.

        The list is newest first, and it moves while we read it: new orders push older ones to
        later pages, and an order edited now leaves our window and pulls later ones forward.
        Plain page numbers would then repeat or skip orders. So each request after a full page
        restarts at p=1 below the last ``dateCreated`` seen (inclusive, de-duplicated by
        orderID); only a page made entirely of one ``dateCreated`` advances ``p`` instead.
        """
        base = {"domainID": domain_id, f"{self.changed_field}[lt]": changed_to}
        if changed_from is not None:
            base[f"{self.changed_field}[gte]"] = changed_from
        if created_from is not None:
            base["orders.dateCreated[gte]"] = created_from
        seen: dict[str, dict] = {}
        cursor, page = None, 1
        while True:
            params = dict(base, p=page)
            if cursor is not None:
                # Below the cursor, which is below the slice's upper bound already.
                params["orders.dateCreated[lte]"] = cursor
            elif created_to is not None:
                params["orders.dateCreated[lt]"] = created_to
            orders = self.list_page(params)
            for order in orders:
                key = str(order.get("orderID"))
                if key not in seen:
                    seen[key] = order
                    yield order
            if len(orders) < PAGE_SIZE:
                return
            last = str(orders[-1].get("dateCreated"))
            if all(str(o.get("dateCreated")) == last for o in orders) and cursor == last:
                page += 1
            else:
                cursor, page = last, 1


class GiftProHistory:
    """The history planner's questions (include/history.py), answered with list requests: how
    many pages a domain's orders changed before `changed_to` fill, and when the oldest order of a
    given page was created. Asked in the plan task, never at DAG parse time."""

    def __init__(self, client: GiftProClient, changed_to: str, zone: ZoneInfo):
        self.client, self.changed_to, self.zone = client, changed_to, zone

    def _page(self, domain: str, page: int) -> list[dict]:
        changed_before = f"{self.client.changed_field}[lt]"
        return self.client.list_page({"domainID": domain, changed_before: self.changed_to, "p": page})

    def pages(self, domain: str) -> int:
        """Doubling until a page is not full, then bisecting: about 2·log2(pages) requests."""
        size = len(self._page(domain, 1))
        if size < PAGE_SIZE:
            return 1 if size else 0
        full, probe = 1, 2
        while (size := len(self._page(domain, probe))) == PAGE_SIZE:
            full, probe = probe, probe * 2
        if size:
            return probe
        empty = probe
        while empty - full > 1:
            middle = (full + empty) // 2
            size = len(self._page(domain, middle))
            if size == PAGE_SIZE:
                full = middle
            elif size:
                return middle
            else:
                empty = middle
        return full

    def created_at(self, domain: str, page: int) -> datetime | None:
        orders = self._page(domain, page)
        try:
            return parse_local(str(orders[-1].get("dateCreated")), self.zone) if orders else None
        except ValueError:
            return None  # a malformed date makes no bound; the slices stay exact without it


def normalize_order(raw: dict, settings: GiftProSettings, expected_currency: str) -> dict:
    """A GiftPro order -> a row of ORDER_SCHEMA; raises BadRecord with the reason."""
    if raw.get("orderID") in (None, ""):
        raise BadRecord("missing orderID")
    email = normalize_email(raw.get("emailAddress"))
    zone = ZoneInfo(settings.time_zone)
    try:
        created = parse_local(str(raw.get("dateCreated")), zone)
        changed = parse_local(str(raw.get("changed") or raw.get("dateCreated")), zone)
    except ValueError:
        raise BadRecord("unparseable dateCreated or changed") from None
    currency = normalize_currency(raw.get("currencyCode"))
    if currency != expected_currency:
        raise BadRecord(f"currency {currency} differs from the feed currency {expected_currency}")
    amount = parse_amount(raw.get("total"), currency)
    status, paid = parse_status(raw.get("status"), settings.success_statuses)
    refunded = parse_bool(raw.get("refunded"), "refunded")
    successful = paid and not refunded
    opted_in = parse_bool(raw.get("marketingOptedIn"), "marketingOptedIn")
    first, last = split_name(raw.get("customerName"))
    row = {
        "source": "giftpro",
        "domain": str(raw.get("domainID")),
        "order_id": str(raw["orderID"]),
        "email_norm": email,
        "created_at": created,
        "changed_at": changed,
        "status": status,
        "successful": successful,
        "total_minor": amount if successful else 0,
        "currency": currency,
        "first_name": first,
        "last_name": last,
        "phone": clean_text(raw.get("phoneNumber")),  # not in the documented fields: read if present
        "marketing_opt_in": opted_in,
        "customer_ref": None,
    }
    row["version_hash"] = version_hash(row)
    return row


@dataclass
class ExtractResult:
    orders: pa.Table
    quarantine: pa.Table
    stats: dict = field(default_factory=dict)


def extract_domain(
    client: GiftProClient,
    domain_id: str,
    changed_from: str | None,
    changed_to: str,
    settings: GiftProSettings,
    expected_currency: str,
    created_from: str | None = None,
    created_to: str | None = None,
) -> ExtractResult:
    """Fetch and normalise one domain's changed orders (of one history slice, when given);
    bad records go to quarantine."""
    started = time.perf_counter()
    good, bad = [], []
    for raw in client.iter_orders(domain_id, changed_from, changed_to, created_from, created_to):
        try:
            good.append(normalize_order(raw, settings, expected_currency))
        except BadRecord as exc:
            order_id = raw.get("orderID")
            bad.append(
                {
                    "source": "giftpro",
                    "domain": str(domain_id),
                    "order_id": None if order_id in (None, "") else str(order_id),
                    "customer_ref": None,
                    "reason": str(exc),
                    "raw": json.dumps(raw, ensure_ascii=False, default=str),
                }
            )
    return ExtractResult(
        orders=to_table(good, ORDER_SCHEMA),
        quarantine=to_table(bad, QUARANTINE_SCHEMA),
        stats={
            "orders": len(good),
            "quarantined": len(bad),
            "requests": client.http.requests,
            "retries": client.http.retries,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
