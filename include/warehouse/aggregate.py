"""Aggregation of order state into one customer per (feed, normalised email).

Pure pandas, no I/O: the publish step hands it every order of the emails it must recompute (a
few thousand on an incremental run, all of them on a rebuild) and gets back their customer rows.
Because each customer is always computed from *all* of its orders, an incremental publish and a
full rebuild give the same answer by construction.

Rules (the brief's contracts):

* an order belongs to every feed that covers its (source, domain);
* ``orders_count`` counts successful orders (paid, not refunded, voided or charged back);
  ``total_spent`` is the money kept from them, in the feed's currency;
* ``registered_at`` is the earliest of the customer's first order anywhere in the feed and the
  registration of any source profile (Different Breed) with the same email;
* the *latest* order is the greatest (created_at, source, domain, order_id); consent is that
  order's ``marketing_opt_in``; the phone comes from the latest order that has one; names from
  the most recent named order (by created_at) or profile (by its changed_at), a profile winning
  a tie;
* a customer exists once it has an order in the feed; a profile alone (no order, so no consent)
  publishes nothing.
"""

from __future__ import annotations

import pandas as pd

from include.config import FeedConfig

CUSTOMER_FRAME_COLUMNS = [
    "feed",
    "email_norm",
    "first_name",
    "last_name",
    "orders_count",
    "total_spent_minor",
    "currency",
    "phone",
    "registered_at",
    "gender",
    "accepts_marketing",
]

_LATEST_ORDER = ["feed", "email_norm", "created_at", "source", "domain", "order_id"]


def feed_domains(config: FeedConfig) -> pd.DataFrame:
    """(source, domain) -> feed, one row per pair a feed covers."""
    rows = [
        (source, domain, feed.name, feed.currency, feed.store.time_zone) for source, domain, feed in config.coverage()
    ]
    return pd.DataFrame(rows, columns=["source", "domain", "feed", "feed_currency", "time_zone"])


def aggregate_customers(orders: pd.DataFrame, config: FeedConfig, profiles: pd.DataFrame | None = None) -> pd.DataFrame:
    """Orders and profiles (warehouse columns: epoch-second timestamps, 0/1 flags) -> customer rows."""
    if orders.empty:
        return pd.DataFrame(columns=CUSTOMER_FRAME_COLUMNS)
    frame = orders.merge(feed_domains(config), on=["source", "domain"], how="inner")
    # An order in another currency than its feed's never reaches here (the extract quarantines
    # it); dropping any that did keeps amounts of different currencies apart regardless.
    frame = frame[frame["currency"] == frame["feed_currency"]]
    if frame.empty:
        return pd.DataFrame(columns=CUSTOMER_FRAME_COLUMNS)
    frame = frame.sort_values(_LATEST_ORDER, kind="stable")
    keys = ["feed", "email_norm"]
    successful = frame["successful"].astype(bool)
    frame = frame.assign(kept=frame["total_minor"].where(successful, 0), ok=successful.astype("int64"))

    grouped = frame.groupby(keys, sort=False)
    customers = grouped.agg(
        orders_count=("ok", "sum"),
        total_spent_minor=("kept", "sum"),
        registered_epoch=("created_at", "min"),
        currency=("feed_currency", "first"),
        time_zone=("time_zone", "first"),
        accepts_marketing=("marketing_opt_in", "last"),
    ).reset_index()

    named = frame[frame["first_name"].notna() & (frame["first_name"] != "")]
    candidates = [
        named.assign(at=named["created_at"], kind=0, ref=named["order_id"])[
            keys + ["at", "kind", "source", "domain", "ref", "first_name", "last_name"]
        ]
    ]
    if profiles is not None and not profiles.empty:
        profiles = profiles.merge(
            feed_domains(config)[["source", "domain", "feed"]], on=["source", "domain"], how="inner"
        )
        registered = (
            profiles.dropna(subset=["registered_at"]).groupby(keys)["registered_at"].min().rename("profile_registered")
        )
        customers = customers.merge(registered.reset_index(), on=keys, how="left")
        # Numeric whatever the column came as (all-NULL registrations arrive as an object column,
        # which pandas refuses to assign into the int64 epochs, even an empty selection of it).
        profile_registered = pd.to_numeric(customers["profile_registered"], errors="coerce")
        earlier = profile_registered.notna() & (profile_registered < customers["registered_epoch"])
        customers["registered_epoch"] = (
            customers["registered_epoch"].where(~earlier, profile_registered).astype("int64")
        )
        named_profiles = profiles[profiles["first_name"].notna() & (profiles["first_name"] != "")]
        candidates.append(
            named_profiles.assign(at=named_profiles["changed_at"], kind=1, ref=named_profiles["customer_ref"])[
                keys + ["at", "kind", "source", "domain", "ref", "first_name", "last_name"]
            ]
        )
    # Both names from one and the same record (`groupby.last()` would mix records column-wise).
    names = (
        pd.concat(candidates, ignore_index=True)
        .sort_values(keys + ["at", "kind", "source", "domain", "ref"], kind="stable")
        .drop_duplicates(keys, keep="last")[keys + ["first_name", "last_name"]]
    )
    phones = frame[frame["phone"].notna() & (frame["phone"] != "")].drop_duplicates(keys, keep="last")[keys + ["phone"]]

    customers = customers.merge(names, on=keys, how="left").merge(phones, on=keys, how="left")
    customers["first_name"] = customers["first_name"].fillna("").astype(str)
    customers["last_name"] = customers["last_name"].fillna("").astype(str)
    customers["phone"] = customers["phone"].astype(object).where(customers["phone"].notna(), None)
    customers["accepts_marketing"] = customers["accepts_marketing"].astype(bool)
    customers["orders_count"] = customers["orders_count"].astype("int64")
    customers["total_spent_minor"] = customers["total_spent_minor"].astype("int64")
    customers["gender"] = "unknown"
    customers["registered_at"] = _format_local(customers["registered_epoch"], customers["time_zone"])
    return customers[CUSTOMER_FRAME_COLUMNS].sort_values(keys, kind="stable").reset_index(drop=True)


def _format_local(epochs: pd.Series, zones: pd.Series) -> pd.Series:
    """Epoch seconds -> 'Y-m-d H:i:s' in each row's feed time zone."""
    moments = pd.to_datetime(epochs.astype("int64"), unit="s", utc=True)
    out = pd.Series("", index=epochs.index, dtype=object)
    for zone in zones.unique():
        mask = zones == zone
        out[mask] = moments[mask].dt.tz_convert(zone).dt.strftime("%Y-%m-%d %H:%M:%S")
    return out
