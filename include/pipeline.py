"""The steps of the customer_feed DAG as plain functions (the DAG file only wires them).

Each step takes and returns the typed records of :mod:`include.specs`; the DAG turns them into
JSON-able dicts for XCom and back, so tests call the steps without Airflow and the DAG stays a
page of wiring.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from include.config import ConfigError, FeedConfig
from include.history import HistoryProbe, plan_slices
from include.registry import DIFFERENTBREED, GIFTPRO, source
from include.schema import ORDER_SCHEMA, PROFILE_SCHEMA, QUARANTINE_SCHEMA
from include.sources.local_time import format_local, local_window
from include.specs import (
    ExtractResult,
    ExtractSpec,
    ExtractStats,
    LoadResult,
    PublishResult,
    Window,
    as_utc,
)
from include.staging import purge_customers, read_table, read_tables, write_extract
from include.suppression import Suppression
from include.warehouse import Warehouse
from include.warehouse.order_state import LoadedWindow, load_orders, source_customer_refs, watermarks
from include.warehouse.publish import publish_customers

log = logging.getLogger(__name__)
DEFAULT_PERIOD = timedelta(hours=1)


def _utc(value) -> datetime | None:
    """A trigger parameter or context value (ISO text or datetime; naive = UTC) -> aware UTC."""
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return as_utc(moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment)


def resolve_window(
    params: dict,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    run_after: datetime | None,
) -> Window:
    """The UTC window ``[start, end)`` this run covers.

    Explicit ``start``/``end`` params win (a manual window); else the data interval; else (a
    trigger without a logical date, or a zero-length interval) the hour before ``run_after``.
    Either way each domain's extract also reaches back to its own watermark, so a run that
    follows an outage still covers everything since the last load.
    """
    start, end = _utc(params.get("start")), _utc(params.get("end"))
    if start or end:
        end = end or _utc(run_after) or datetime.now(UTC)
        start = start or end - DEFAULT_PERIOD
        origin = "params"
    elif data_interval_start and data_interval_end and data_interval_end > data_interval_start:
        start, end, origin = _utc(data_interval_start), _utc(data_interval_end), "data_interval"
    else:
        end = _utc(run_after) or datetime.now(UTC)
        start, origin = end - DEFAULT_PERIOD, "run_after"
    if end <= start:
        raise ConfigError(f"the window is empty: start {start.isoformat()} is not before end {end.isoformat()}")
    return Window(start=start, end=end, origin=origin, rebuild=bool(params.get("rebuild")))


def _lower_bound(mark: int | None, start: datetime, overlap_minutes: int) -> datetime | None:
    """The earlier of the window start and the watermark, less the overlap; None (the whole
    history) for a domain never loaded."""
    if mark is None:
        return None
    return min(start, datetime.fromtimestamp(mark, UTC)) - timedelta(minutes=overlap_minutes)


def _spec(source_name: str, domain: str, config: FeedConfig, window: Window, lower: datetime | None, **part):
    return ExtractSpec(
        source=source_name,
        domain=domain,
        currency=config.feeds_of(source_name, domain)[0].currency,
        lower=lower,
        upper=window.end,
        window=window,
        **part,
    )


def plan_giftpro(
    config: FeedConfig, wh: Warehouse, window: Window, history: HistoryProbe | None = None
) -> list[ExtractSpec]:
    """Extract specs for every configured GiftPro domainID: one per domain that loads changes
    since its watermark; a domain that loads its whole history (never loaded, or a rebuild) is
    cut into slices by ``dateCreated`` (include/history.py), one spec each, all within
    ``max_extract_tasks``. `history` answers the slicing questions (default: the GiftPro API,
    asked here in the plan task).
    """
    settings = config.giftpro
    marks = {} if window.rebuild else watermarks(wh, GIFTPRO.name)
    lowers = {
        d: _lower_bound(marks.get(d), window.start, settings.overlap_minutes) for d in config.domains(GIFTPRO.name)
    }
    whole = [d for d, lower in lowers.items() if lower is None]
    slices = {}
    if whole:
        # One task per domain at the least, as before slicing; slices only within the budget.
        budget = max(settings.max_extract_tasks - (len(lowers) - len(whole)), len(whole))
        probe = history or _giftpro_history(config, window)
        slices = plan_slices(whole, probe, settings.history_slice_pages, budget)
    specs = []
    for domain, lower in lowers.items():
        if lower is not None:
            specs.append(_spec(GIFTPRO.name, domain, config, window, lower))
            continue
        parts = slices[domain]
        for n, part in enumerate(parts):
            specs.append(
                _spec(
                    GIFTPRO.name,
                    domain,
                    config,
                    window,
                    None,
                    part=f"slice-{n:04d}" if len(parts) > 1 else "",
                    part_index=n,
                    parts=len(parts),
                    created_from=part.created_from,
                    created_to=part.created_to,
                )
            )
    return specs


def _giftpro_history(config: FeedConfig, window: Window) -> HistoryProbe:
    from include.sources.giftpro import GiftProClient, GiftProHistory

    zone = ZoneInfo(config.giftpro.time_zone)
    _, changed_to = local_window(None, window.end, zone)
    client = GiftProClient(conn_id=GIFTPRO.conn_id, changed_field=config.giftpro.changed_field)
    return GiftProHistory(client, changed_to, zone)


def plan_differentbreed(config: FeedConfig, wh: Warehouse, window: Window, max_tasks: int = 512) -> list[ExtractSpec]:
    """Specs per Different Breed profile and batch of customers (never one task per customer).

    A customer the warehouse has never seen is polled over its whole history; the others from
    the profile's lower bound. Batches grow past ``batch_size`` when a profile has so many
    customers that the batches would exceed `max_tasks` (Airflow maps at most 1024).
    """
    from include.sources.customer_list import load_customer_ids

    settings = config.differentbreed
    profiles = config.domains(DIFFERENTBREED.name)
    if not profiles:
        return []
    marks = {} if window.rebuild else watermarks(wh, DIFFERENTBREED.name)
    lists = {p: load_customer_ids(settings, p) for p in profiles}
    total = sum(len(ids) for ids in lists.values())
    size = max(settings.batch_size, -(-total // max(max_tasks, 1)))
    specs = []
    for profile, ids in lists.items():
        known = set() if window.rebuild else source_customer_refs(wh, DIFFERENTBREED.name, profile)
        lower = _lower_bound(marks.get(profile), window.start, settings.overlap_minutes)
        starts = range(0, max(len(ids), 1), size)
        for n, first in enumerate(starts):
            batch = ids[first : first + size]
            specs.append(
                _spec(
                    DIFFERENTBREED.name,
                    profile,
                    config,
                    window,
                    lower,
                    part=f"batch-{n:04d}",
                    part_index=n,
                    parts=len(starts),
                    cust_ids=tuple(batch),
                    new_cust_ids=tuple(i for i in batch if i not in known),
                )
            )
    return specs


def extract(
    spec: ExtractSpec, config: FeedConfig, staging_root: str, suppression: Suppression | None = None
) -> ExtractResult:
    """Extract one spec with its source's step (see include/registry.py). Records of erased
    people (`suppression`) are dropped before they are staged, only counted."""
    return source(spec.source).extract_function()(spec, config, staging_root, suppression=suppression)


def extract_giftpro(
    spec: ExtractSpec,
    config: FeedConfig,
    staging_root: str,
    conn_id: str = GIFTPRO.conn_id,
    suppression: Suppression | None = None,
) -> ExtractResult:
    """Fetch one domain's changed orders (or one slice of its history) and stage them; returns
    the staged paths and counts."""
    from include.sources.giftpro import GiftProClient, extract_domain

    settings = config.giftpro
    zone = ZoneInfo(settings.time_zone)
    lo, hi = local_window(spec.lower, spec.upper, zone)
    created = [None if m is None else format_local(m, zone) for m in (spec.created_from, spec.created_to)]
    client = GiftProClient(conn_id=conn_id, changed_field=settings.changed_field)
    result = extract_domain(client, spec.domain, lo, hi, settings, spec.currency, *created)
    orders, quarantine, _, suppressed = (suppression or Suppression()).drop(result.orders, result.quarantine)
    files = write_extract(
        staging_root,
        spec.source,
        spec.domain,
        spec.window.start,
        spec.window.end,
        orders,
        quarantine,
        part=spec.part,
    )
    stats = ExtractStats(**result.stats, suppressed=suppressed)
    log.info(
        "giftpro domain %s%s: %s orders, %s quarantined, changed in [%s, %s) London time%s, %s requests",
        spec.domain,
        f" {spec.part}" if spec.part else "",
        stats.orders,
        stats.quarantined,
        lo or "beginning",
        hi,
        f", created in [{created[0] or 'beginning'}, {created[1] or 'now'})" if spec.parts > 1 else "",
        stats.requests,
    )
    return ExtractResult(spec=spec, orders_path=files.orders, quarantine_path=files.quarantine, stats=stats)


def extract_differentbreed(
    spec: ExtractSpec,
    config: FeedConfig,
    staging_root: str,
    conn_id: str = DIFFERENTBREED.conn_id,
    suppression: Suppression | None = None,
) -> ExtractResult:
    """Poll one batch of a profile's customers and stage their orders and profiles.

    At most ``DIFFERENTBREED.parallel_tasks`` batches run at once (the DAG says so to Airflow);
    each batch's client paces itself to its share of the API's rate limit.
    """
    from include.sources.differentbreed import DifferentBreedClient, extract_customers

    client = DifferentBreedClient(
        conn_id=conn_id, profile=spec.domain, share_of_rate_limit=DIFFERENTBREED.share_of_rate_limit
    )
    result = extract_customers(
        client,
        list(spec.cust_ids),
        set(spec.new_cust_ids),
        spec.lower,
        spec.upper,
        config.differentbreed,
        spec.currency,
    )
    orders, quarantine, profiles, suppressed = (suppression or Suppression()).drop(
        result.orders, result.quarantine, result.profiles
    )
    files = write_extract(
        staging_root,
        spec.source,
        spec.domain,
        spec.window.start,
        spec.window.end,
        orders,
        quarantine,
        profiles=profiles,
        part=spec.part,
    )
    # A 404 is news only for a customer the warehouse holds (or on a full-history poll): one
    # removed by an earlier run stays on the merchant's list and answers 404 every hour after.
    unknown = set(spec.new_cust_ids) if spec.lower is not None else set()
    deleted = [c for c in result.deleted if c not in unknown]
    stats = ExtractStats(
        **result.stats, deleted=len(deleted), absent=len(result.deleted) - len(deleted), suppressed=suppressed
    )
    log.info(
        "differentbreed profile %s %s: %s customers polled in %ss, %s orders, %s quarantined,"
        " %s deleted at the source (%s listed but unknown to it), %s requests",
        spec.domain,
        spec.part,
        len(spec.cust_ids),
        stats.seconds,
        stats.orders,
        stats.quarantined,
        stats.deleted,
        stats.absent,
        stats.requests,
    )
    return ExtractResult(
        spec=spec.without_customers(),
        customers=len(spec.cust_ids),
        orders_path=files.orders,
        quarantine_path=files.quarantine,
        profiles_path=files.profiles,
        deleted=tuple(deleted),
        stats=stats,
    )


def _check_complete(extracts: list[ExtractResult]) -> None:
    """Every part of every domain must be here: a domain's watermark moves only when all of its
    parts are loaded together."""
    parts: dict[tuple[str, str], tuple[set[int], set[int]]] = {}
    for e in extracts:
        seen, counts = parts.setdefault((e.spec.source, e.spec.domain), (set(), set()))
        seen.add(e.spec.part_index)
        counts.add(e.spec.parts)
    for (source_name, domain), (seen, counts) in sorted(parts.items()):
        if len(counts) != 1 or seen != set(range(next(iter(counts)))):
            raise ValueError(
                f"{source_name} {domain}: parts {sorted(seen)} of {sorted(counts)} arrived;"
                " every part must be extracted before the domain loads"
            )


def load_extracts(
    wh: Warehouse,
    extracts: list[ExtractResult],
    run_id: str,
    rebuild: bool,
    staging_root: str | None = None,
    config: FeedConfig | None = None,
    confirm_mass_change: bool = False,
) -> LoadResult:
    """Merge every staged extract of this run into the warehouse, in one transaction; then purge
    the staged records of customers deleted at the source. The mass-change guard (`config`'s
    ``guard``) may stop the load before it commits; `confirm_mass_change` lets it through."""
    started = time.perf_counter()
    _check_complete(extracts)
    # One staged file at a time: a first load of a group's whole history never sits in memory.
    orders = (read_table(e.orders_path, ORDER_SCHEMA) for e in extracts if e.orders_path)
    profiles = read_tables([e.profiles_path for e in extracts], PROFILE_SCHEMA)
    windows = sorted(
        {
            LoadedWindow(
                e.spec.source,
                e.spec.domain,
                int(e.spec.lower.timestamp()) if e.spec.lower else None,
                int(e.spec.upper.timestamp()),
            )
            for e in extracts
        },
        key=lambda w: (w.source, w.domain),
    )
    deleted = sorted({(e.spec.source, e.spec.domain, ref) for e in extracts for ref in e.deleted})
    replace = sorted({(e.spec.source, e.spec.domain) for e in extracts}) if rebuild else []
    result = load_orders(
        wh,
        orders,
        windows,
        run_id,
        replace_domains=replace,
        profiles=profiles,
        deleted=deleted,
        guard=config.guard if config else None,
        confirm_mass_change=confirm_mass_change,
    )
    purged = 0
    if deleted and staging_root:
        for source_name, domain in sorted({(s, d) for s, d, _ in deleted}):
            refs = [r for s, d, r in deleted if (s, d) == (source_name, domain)]
            purged += purge_customers(staging_root, source_name, domain, refs)
    quarantined = sum(read_table(e.quarantine_path, QUARANTINE_SCHEMA).num_rows for e in extracts)
    return LoadResult(
        **result,
        quarantined=quarantined,
        customers_deleted=len(deleted),
        staged_rows_purged=purged,
        seconds=round(time.perf_counter() - started, 3),
    )


def publish(
    wh: Warehouse, config: FeedConfig, run_id: str, rebuild: bool, confirm_mass_change: bool = False
) -> PublishResult:
    return PublishResult.model_validate(
        publish_customers(wh, config, run_id, full=rebuild, confirm_mass_change=confirm_mass_change)
    )


def summarize(extracts: list[ExtractResult], loaded: LoadResult, published: PublishResult) -> list[str]:
    """One line per feed and per source, as the operator wants to read them in the task log."""
    lines = []
    for name, feed in published.feeds.items():
        lines.append(
            f"feed {name}: {feed.customers} customers, {feed.orders} orders,"
            f" {feed.total_spent:.2f} {feed.currency} total"
        )
    for source_name in sorted({e.spec.source for e in extracts}):
        mine = [e for e in extracts if e.spec.source == source_name]
        orders = sum(e.stats.orders for e in mine)
        quarantined = sum(e.stats.quarantined for e in mine)
        requests = sum(e.stats.requests for e in mine)
        line = f"source {source_name}: {orders} orders extracted, {quarantined} quarantined, {requests} requests"
        if source_name == DIFFERENTBREED.name:
            customers = sum(e.customers for e in mine)
            seconds = sum(e.stats.seconds for e in mine)
            line += (
                f"; full poll of {customers} customers in {len(mine)} batches took {seconds:.1f}s of task time"
                f" ({seconds / max(customers, 1) * 1000:.0f} ms per customer); "
                f"{sum(len(e.deleted) for e in mine)} deleted at the source"
            )
        lines.append(line)
    lines.append(
        f"run: {loaded.orders_changed} orders changed, {loaded.orders_deleted} removed with customers"
        f" deleted at the source, {loaded.quarantined} quarantined,"
        f" {loaded.suppressed + sum(e.stats.suppressed for e in extracts)} records of erased people dropped;"
        f" {published.recomputed_emails} customers"
        f" recomputed{' (full rebuild)' if published.full else ''};"
        f" load {loaded.seconds}s, publish {published.seconds}s"
    )
    return lines
