"""The sandboxes' own ground truth: the customers every feed should hold, computed plainly from
the raw source records. It is the yardstick the pipeline is measured against, so it shares none
of the pipeline's code: it reads emails, currencies, amounts, flags, statuses and times itself
(only the feed definitions come from include.config). A record the pipeline should quarantine is
one this module cannot read by its own rules, and it leaves it out.

Its reading of raw values, written independently of include/sources:

* an email is trimmed and lower-cased; it needs one ``@`` with text before it and a dot after
  it, and no space;
* a currency is an ISO 4217 code (any case); an order in another currency than its feed's is
  left out;
* an amount is a JSON number or a plain decimal text, never negative;
* a flag is a JSON boolean, 0 or 1, or one of true/false/yes/no/y/n/1/0 in any case; a flag that
  is absent or anything else leaves the order out;
* a status is paid when it equals a configured success status ignoring case and spaces;
* GiftPro times are naive wall-clock ``Y-m-d H:i:s`` in GiftPro's zone (the first of a repeated
  hour); Different Breed times are ISO 8601.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision, list_currencies

from include.config import FeedConfig

WALL_CLOCK = "%Y-%m-%d %H:%M:%S"
_CURRENCIES = frozenset(list_currencies())
_NUMBER = re.compile(r"^\s*[+-]?\d+(\.\d+)?\s*$")
_YES = ("true", "yes", "y", "1")
_NO = ("false", "no", "n", "0")


class Unreadable(Exception):
    """A raw value the ground truth cannot read: the record is one the pipeline must quarantine."""


def _email(raw) -> str:
    if not isinstance(raw, str):
        raise Unreadable("email")
    email = raw.strip().lower()
    local, _, domain = email.rpartition("@")
    if not local or "." not in domain or any(ch.isspace() for ch in email):
        raise Unreadable("email")
    return email


def _currency(raw) -> str:
    if not isinstance(raw, str) or raw.strip().upper() not in _CURRENCIES:
        raise Unreadable("currency")
    return raw.strip().upper()


def _amount(raw, currency: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise Unreadable("amount")
    if isinstance(raw, str) and not _NUMBER.match(raw):
        raise Unreadable("amount")
    if isinstance(raw, float) and raw != raw or raw in (float("inf"), float("-inf")):
        raise Unreadable("amount")
    value = Decimal(str(raw).strip())
    if value < 0:
        raise Unreadable("negative amount")
    places = get_currency_precision(currency)
    return int((value * Decimal(10) ** places).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _flag(raw) -> bool:
    if raw is True or raw is False:
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return raw == 1
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
    raise Unreadable("flag")


def _paid(raw, statuses) -> bool:
    if not isinstance(raw, str) or not raw.strip():
        raise Unreadable("status")
    return raw.strip().lower() in {s.strip().lower() for s in statuses}


def _wall_clock(raw, zone: ZoneInfo) -> datetime:
    try:
        return datetime.strptime(str(raw).strip(), WALL_CLOCK).replace(tzinfo=zone).astimezone(UTC)
    except ValueError:
        raise Unreadable("time") from None


def _iso(raw) -> datetime:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise Unreadable("time") from None


def _giftpro_record(o: dict, config: FeedConfig, currency: str, zone: ZoneInfo):
    """(email, created, paid, amount, consent, phone, name) of a readable GiftPro order, or None."""
    if o.get("orderID") in (None, ""):
        return None
    try:
        email = _email(o.get("emailAddress"))
        created = _wall_clock(o.get("dateCreated"), zone)
        _wall_clock(o.get("changed") or o.get("dateCreated"), zone)
        if _currency(o.get("currencyCode")) != currency:
            return None
        amount = _amount(o.get("total"), currency)
        paid = _paid(o.get("status"), config.giftpro.success_statuses)
        refunded = _flag(o.get("refunded"))
        consent = _flag(o.get("marketingOptedIn"))
    except Unreadable:
        return None
    phone = str(o.get("phoneNumber") or "").strip() or None
    return email, created, paid and not refunded, amount, consent, phone, str(o.get("customerName") or "").split()


def expected_customers(
    config: FeedConfig,
    giftpro_orders: list[dict] = (),
    db_customers: list[dict] = (),
    db_orders: list[dict] = (),
    db_profile: str = "",
    orders_out: dict | None = None,
) -> dict[tuple[str, str], dict]:
    """{(feed, email): customer} for every customer with at least one valid order in a feed.

    `orders_out`, when given, receives every readable order: ``{(feed, source, domain, order_id):
    (email, successful, amount_minor, consent)}`` (the fault matrix counts lost orders with it)."""
    london = ZoneInfo(config.giftpro.time_zone)
    profiles = {}
    for c in db_customers:
        try:
            profiles[c["cust_id"]] = (
                _email(c.get("email")),
                _iso(c["created_at"]) if c.get("created_at") else None,
                _iso(c.get("updated_at") or c.get("created_at")),
            )
        except (Unreadable, KeyError):
            continue
    out: dict[tuple[str, str], dict] = {}
    for feed in config.feeds:
        # (rank, successful, amount, consent, phone) per email; rank orders "latest"
        records: dict[str, list[tuple]] = {}
        names: dict[str, list[tuple]] = {}
        registered: dict[str, list[datetime]] = {}
        for o in giftpro_orders:
            if str(o.get("domainID")) not in feed.sources.giftpro_domains:
                continue
            read = _giftpro_record(o, config, feed.currency, london)
            if read is None:
                continue
            email, created, ok, amount, consent, phone, words = read
            rank = (created, "giftpro", str(o["domainID"]), str(o["orderID"]))
            records.setdefault(email, []).append((rank, ok, amount, consent, phone))
            if orders_out is not None:
                orders_out[(feed.name, *rank[1:])] = (email, ok, amount, consent)
            if words:
                names.setdefault(email, []).append(
                    ((created, 0, "giftpro", str(o["domainID"]), str(o["orderID"])), words[0], " ".join(words[1:]))
                )
        if db_profile in feed.sources.differentbreed_profiles:
            for o in db_orders:
                profile = profiles.get(o.get("cust_id"))
                if profile is None or not o.get("order_id"):
                    continue
                try:
                    created = _iso(o.get("created_at"))
                    _iso(o.get("updated_at") or o.get("created_at"))
                    if _currency(o.get("currency")) != feed.currency:
                        continue
                    amount = _amount(o.get("total"), feed.currency)
                    ok = _paid(o.get("status"), config.differentbreed.success_statuses)
                    consent = _flag(o.get("marketing_opt_in"))
                except Unreadable:
                    continue
                rank = (created, "differentbreed", db_profile, str(o["order_id"]))
                records.setdefault(profile[0], []).append((rank, ok, amount, consent, None))
                if orders_out is not None:
                    orders_out[(feed.name, *rank[1:])] = (profile[0], ok, amount, consent)
            for c in db_customers:
                if c.get("cust_id") not in profiles:
                    continue
                email, joined, updated = profiles[c["cust_id"]]
                if joined is not None:
                    registered.setdefault(email, []).append(joined)
                forename = str(c.get("forename") or "").strip()
                if forename:
                    names.setdefault(email, []).append(
                        (
                            (updated, 1, "differentbreed", db_profile, c["cust_id"]),
                            forename,
                            str(c.get("surname") or "").strip(),
                        )
                    )
        for email, items in records.items():
            items.sort(key=lambda r: r[0])
            first_seen = min([items[0][0][0], *registered.get(email, [])])
            named = sorted(names.get(email, []), key=lambda n: n[0])
            phones = [r[4] for r in items if r[4]]
            out[(feed.name, email)] = {
                "email": email,
                "first_name": named[-1][1] if named else "",
                "last_name": named[-1][2] if named else "",
                "orders_count": sum(1 for r in items if r[1]),
                "total_spent_minor": sum(r[2] for r in items if r[1]),
                "currency": feed.currency,
                "phone": phones[-1] if phones else None,
                "registered_at": first_seen.astimezone(ZoneInfo(feed.store.time_zone)).strftime(WALL_CLOCK),
                "gender": "unknown",
                "accepts_marketing": items[-1][3],
            }
    return out
