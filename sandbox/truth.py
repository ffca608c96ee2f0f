"""The sandboxes' own ground truth: the customers every feed should hold, computed plainly from
the raw source records. It is the yardstick the pipeline is measured against, so it shares none
of the pipeline's normalisation-to-rows, order state or aggregation code."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from include.config import FeedConfig
from include.money import normalize_currency, to_minor_units
from include.sources.local_time import SOURCE_FORMAT, parse_local
from include.sources.normalize import BadRecord, normalize_email


def _iso(text) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)


def expected_customers(
    config: FeedConfig,
    giftpro_orders: list[dict] = (),
    db_customers: list[dict] = (),
    db_orders: list[dict] = (),
    db_profile: str = "",
) -> dict[tuple[str, str], dict]:
    """{(feed, email): customer} for every customer with at least one valid order in a feed."""
    london = ZoneInfo(config.giftpro.time_zone)
    profiles = {c["cust_id"]: c for c in db_customers}
    out: dict[tuple[str, str], dict] = {}
    for feed in config.feeds:
        # (when, source, domain, id, order, successful, amount, name, phone, consent) per email
        records: dict[str, list[tuple]] = {}
        names: dict[str, list[tuple]] = {}
        registered: dict[str, list[datetime]] = {}
        for o in giftpro_orders:
            if str(o.get("domainID")) not in feed.sources.giftpro_domains or o.get("orderID") in (None, ""):
                continue
            try:
                email = normalize_email(o.get("emailAddress"))
                created = parse_local(str(o["dateCreated"]), london)
                if normalize_currency(o.get("currencyCode")) != feed.currency:
                    continue
                amount = to_minor_units(o.get("total"), feed.currency)
            except (BadRecord, ValueError, KeyError):
                continue
            ok = o.get("status") in config.giftpro.success_statuses and not o.get("refunded")
            rank = (created, "giftpro", str(o["domainID"]), str(o["orderID"]))
            records.setdefault(email, []).append(
                (rank, ok, amount, bool(o.get("marketingOptedIn")), str(o.get("phoneNumber") or "").strip() or None)
            )
            words = str(o.get("customerName") or "").split()
            if words:
                names.setdefault(email, []).append(
                    ((created, 0, "giftpro", str(o["domainID"]), str(o["orderID"])), words[0], " ".join(words[1:]))
                )
        if db_profile in feed.sources.differentbreed_profiles:
            for o in db_orders:
                customer = profiles.get(o.get("cust_id"))
                if customer is None:
                    continue
                try:
                    email = normalize_email(customer.get("email"))
                    created = _iso(o["created_at"])
                    if normalize_currency(o.get("currency")) != feed.currency:
                        continue
                    amount = to_minor_units(o.get("total"), feed.currency)
                except (BadRecord, ValueError, KeyError):
                    continue
                ok = o.get("status") in config.differentbreed.success_statuses
                rank = (created, "differentbreed", db_profile, str(o["order_id"]))
                records.setdefault(email, []).append((rank, ok, amount, bool(o.get("marketing_opt_in")), None))
            for c in db_customers:
                try:
                    email = normalize_email(c.get("email"))
                except BadRecord:
                    continue
                if c.get("created_at"):
                    registered.setdefault(email, []).append(_iso(c["created_at"]))
                if str(c.get("forename") or "").strip():
                    names.setdefault(email, []).append(
                        (
                            (_iso(c["updated_at"]), 1, "differentbreed", db_profile, c["cust_id"]),
                            c["forename"].strip(),
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
                "registered_at": first_seen.astimezone(feed.time_zone).strftime(SOURCE_FORMAT),
                "gender": "unknown",
                "accepts_marketing": items[-1][3],
            }
    return out
