"""The steps of the customer_feed DAG as plain functions (the DAG file only wires them).

Each step takes plain values and returns a small JSON-able dict (it travels through XCom), so
tests call them without Airflow and the DAG stays a page of wiring.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from include.config import ConfigError, FeedConfig
from include.schema import ORDER_SCHEMA, PROFILE_SCHEMA, QUARANTINE_SCHEMA
from include.sources.local_time import local_window
from include.staging import purge_customers, read_table, read_tables, write_extract
from include.warehouse import Warehouse
from include.warehouse.order_state import LoadedWindow, load_orders, source_customer_refs, watermarks
from include.warehouse.publish import publish_customers

log = logging.getLogger(__name__)
UTC = UTC
DEFAULT_PERIOD = timedelta(hours=1)


def _parse(value) -> datetime | None:
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def resolve_window(
    params: dict,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    run_after: datetime | None,
) -> dict:
    """The UTC window ``[start, end)`` this run covers.

    Explicit ``start``/``end`` params win (a manual window); else the data interval; else (a
    trigger without a logical date, or a zero-length interval) the hour before ``run_after``.
    Either way each domain's extract also reaches back to its own watermark, so a run that
    follows an outage still covers everything since the last load.
    """
    start, end = _parse(params.get("start")), _parse(params.get("end"))
    if start or end:
        end = end or _parse(run_after) or datetime.now(UTC)
        start = start or end - DEFAULT_PERIOD
        origin = "params"
    elif data_interval_start and data_interval_end and data_interval_end > data_interval_start:
        start, end, origin = _parse(data_interval_start), _parse(data_interval_end), "data_interval"
    else:
        end = _parse(run_after) or datetime.now(UTC)
        start, origin = end - DEFAULT_PERIOD, "run_after"
    if end <= start:
        raise ConfigError(f"the window is empty: start {start.isoformat()} is not before end {end.isoformat()}")
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "origin": origin,
        "rebuild": bool(params.get("rebuild")),
    }


def _lower_bound(mark: int | None, start: datetime, overlap_minutes: int) -> str | None:
    """The earlier of the window start and the watermark, less the overlap; None (the whole
    history) for a domain never loaded."""
    if mark is None:
        return None
    return (min(start, datetime.fromtimestamp(mark, UTC)) - timedelta(minutes=overlap_minutes)).isoformat()


def _spec(source: str, domain: str, config: FeedConfig, window: dict, lower: str | None) -> dict:
    return {
        "source": source,
        "domain": domain,
        "currency": config.feeds_of(source, domain)[0].currency,
        "lower": lower,
        "upper": window["end"],
        "window_start": window["start"],
        "window_end": window["end"],
    }


def plan_giftpro(config: FeedConfig, wh: Warehouse, window: dict) -> list[dict]:
    """One extract spec per configured GiftPro domainID."""
    start = _parse(window["start"])
    marks = {} if window["rebuild"] else watermarks(wh, "giftpro")
    return [
        _spec("giftpro", domain, config, window, _lower_bound(marks.get(domain), start, config.giftpro.overlap_minutes))
        for domain in config.domains("giftpro")
    ]


def plan_differentbreed(config: FeedConfig, wh: Warehouse, window: dict, max_tasks: int = 512) -> list[dict]:
    """Specs per Different Breed profile and batch of customers (never one task per customer).

    A customer the warehouse has never seen is polled over its whole history; the others from
    the profile's lower bound. Batches grow past ``batch_size`` when a profile has so many
    customers that the batches would exceed `max_tasks` (Airflow maps at most 1024).
    """
    from include.sources.customer_list import load_customer_ids

    settings = config.differentbreed
    profiles = config.domains("differentbreed")
    if not profiles:
        return []
    start = _parse(window["start"])
    marks = {} if window["rebuild"] else watermarks(wh, "differentbreed")
    lists = {p: load_customer_ids(settings, p) for p in profiles}
    total = sum(len(ids) for ids in lists.values())
    size = max(settings.batch_size, -(-total // max(max_tasks, 1)))
    specs = []
    for profile, ids in lists.items():
        known = set() if window["rebuild"] else source_customer_refs(wh, "differentbreed", profile)
        lower = _lower_bound(marks.get(profile), start, settings.overlap_minutes)
        for n, first in enumerate(range(0, max(len(ids), 1), size)):
            batch = ids[first : first + size]
            specs.append(
                {
                    **_spec("differentbreed", profile, config, window, lower),
                    "part": f"batch-{n:04d}",
                    "cust_ids": batch,
                    "new_cust_ids": [i for i in batch if i not in known],
                }
            )
    return specs


def extract_giftpro(spec: dict, config: FeedConfig, staging_root: str, conn_id: str = "giftpro_default") -> dict:
    """Fetch one domain's changed orders and stage them; returns the staged paths and counts."""
    from include.sources.giftpro import GiftProClient, extract_domain

    settings = config.giftpro
    lo, hi = local_window(_parse(spec["lower"]), _parse(spec["upper"]), ZoneInfo(settings.time_zone))
    client = GiftProClient(conn_id=conn_id)
    result = extract_domain(client, spec["domain"], lo, hi, settings, spec["currency"])
    files = write_extract(
        staging_root,
        "giftpro",
        spec["domain"],
        _parse(spec["window_start"]),
        _parse(spec["window_end"]),
        result.orders,
        result.quarantine,
    )
    stats = dict(result.stats)
    log.info(
        "giftpro domain %s: %s orders, %s quarantined, changed in [%s, %s) London time, %s requests",
        spec["domain"],
        stats.get("orders"),
        stats.get("quarantined"),
        lo or "beginning",
        hi,
        stats.get("requests"),
    )
    return {**spec, "orders_path": files.orders, "quarantine_path": files.quarantine, "stats": stats}


def extract_differentbreed(
    spec: dict,
    config: FeedConfig,
    staging_root: str,
    conn_id: str = "differentbreed_default",
    parallel_tasks: int = 1,
) -> dict:
    """Poll one batch of a profile's customers and stage their orders and profiles."""
    from include.sources.differentbreed import DifferentBreedClient, extract_customers

    client = DifferentBreedClient(
        conn_id=conn_id, profile=spec["domain"], share_of_rate_limit=1 / max(parallel_tasks, 1)
    )
    result = extract_customers(
        client,
        spec["cust_ids"],
        set(spec["new_cust_ids"]),
        _parse(spec["lower"]),
        _parse(spec["upper"]),
        config.differentbreed,
        spec["currency"],
    )
    files = write_extract(
        staging_root,
        "differentbreed",
        spec["domain"],
        _parse(spec["window_start"]),
        _parse(spec["window_end"]),
        result.orders,
        result.quarantine,
        profiles=result.profiles,
        part=spec["part"],
    )
    stats = {**result.stats, "deleted": len(result.deleted)}
    log.info(
        "differentbreed profile %s %s: %s customers polled in %ss, %s orders, %s quarantined,"
        " %s deleted at the source, %s requests",
        spec["domain"],
        spec["part"],
        len(spec["cust_ids"]),
        stats.get("seconds"),
        stats.get("orders"),
        stats.get("quarantined"),
        len(result.deleted),
        stats.get("requests"),
    )
    slim = {k: v for k, v in spec.items() if k not in ("cust_ids", "new_cust_ids")}
    return {
        **slim,
        "customers": len(spec["cust_ids"]),
        "orders_path": files.orders,
        "quarantine_path": files.quarantine,
        "profiles_path": files.profiles,
        "deleted": list(result.deleted),
        "stats": stats,
    }


def load_extracts(
    wh: Warehouse, extracts: list[dict], run_id: str, rebuild: bool, staging_root: str | None = None
) -> dict:
    """Merge every staged extract of this run into the warehouse, in one transaction; then purge
    the staged records of customers deleted at the source."""
    started = time.perf_counter()
    # One staged file at a time: a first load of a group's whole history never sits in memory.
    orders = (read_table(e["orders_path"], ORDER_SCHEMA) for e in extracts)
    profiles = read_tables([e.get("profiles_path") for e in extracts], PROFILE_SCHEMA)
    windows = sorted(
        {
            LoadedWindow(
                e["source"],
                e["domain"],
                int(_parse(e["lower"]).timestamp()) if e["lower"] else None,
                int(_parse(e["upper"]).timestamp()),
            )
            for e in extracts
        },
        key=lambda w: (w.source, w.domain),
    )
    deleted = sorted({(e["source"], e["domain"], ref) for e in extracts for ref in e.get("deleted", ())})
    replace = sorted({(e["source"], e["domain"]) for e in extracts}) if rebuild else []
    result = load_orders(wh, orders, windows, run_id, replace_domains=replace, profiles=profiles, deleted=deleted)
    purged = 0
    if deleted and staging_root:
        for source, domain in sorted({(s, d) for s, d, _ in deleted}):
            refs = [r for s, d, r in deleted if (s, d) == (source, domain)]
            purged += purge_customers(staging_root, source, domain, refs)
    quarantined = sum(read_table(e["quarantine_path"], QUARANTINE_SCHEMA).num_rows for e in extracts)
    return {
        **result,
        "quarantined": quarantined,
        "customers_deleted": len(deleted),
        "staged_rows_purged": purged,
        "seconds": round(time.perf_counter() - started, 3),
    }


def publish(wh: Warehouse, config: FeedConfig, run_id: str, rebuild: bool) -> dict:
    return publish_customers(wh, config, run_id, full=rebuild)


def summarize(extracts: list[dict], loaded: dict, published: dict) -> list[str]:
    """One line per feed and per source, as the operator wants to read them in the task log."""
    lines = []
    for name, feed in published["feeds"].items():
        lines.append(
            f"feed {name}: {feed['customers']} customers, {feed['orders']} orders,"
            f" {feed['total_spent']:.2f} {feed['currency']} total"
        )
    for source in sorted({e["source"] for e in extracts}):
        mine = [e for e in extracts if e["source"] == source]
        orders = sum(int(e["stats"].get("orders", 0)) for e in mine)
        quarantined = sum(int(e["stats"].get("quarantined", 0)) for e in mine)
        requests = sum(int(e["stats"].get("requests", 0)) for e in mine)
        line = f"source {source}: {orders} orders extracted, {quarantined} quarantined, {requests} requests"
        if source == "differentbreed":
            customers = sum(int(e.get("customers", 0)) for e in mine)
            seconds = sum(float(e["stats"].get("seconds", 0)) for e in mine)
            line += (
                f"; full poll of {customers} customers in {len(mine)} batches took {seconds:.1f}s of task time"
                f" ({seconds / max(customers, 1) * 1000:.0f} ms per customer); "
                f"{sum(len(e.get('deleted', ())) for e in mine)} deleted at the source"
            )
        lines.append(line)
    lines.append(
        f"run: {loaded['orders_changed']} orders changed, {loaded.get('orders_deleted', 0)} removed with customers"
        f" deleted at the source, {loaded['quarantined']} quarantined; {published['recomputed_emails']} customers"
        f" recomputed{' (full rebuild)' if published['full'] else ''};"
        f" load {loaded['seconds']}s, publish {published['seconds']}s"
    )
    return lines
