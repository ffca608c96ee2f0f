"""What a person monitoring the feeds reads: the run summary (the customer asset event's
``extra`` and the run's note), the publish history, freshness, and quarantined records with
their email addresses masked.

Plain functions on the warehouse and the staged files: the DAG's publish task writes through
:func:`record_publish`, the Airflow UI page (``plugins/customer_feeds``) only renders
:func:`overview`, and the tests call both without Airflow.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the DAG file imports this module at parse time
    from include.config import FeedConfig
    from include.warehouse import Warehouse

#: The DAG's schedule: one run per hour (dags/customer_feed.py, CronDataIntervalTimetable).
SCHEDULE_INTERVAL = timedelta(hours=1)
#: A feed not published within this many schedule intervals is late: the page says so and the
#: run's deadline alert fires (``CUSTOMER_FEED_FRESHNESS_INTERVALS``).
FRESHNESS_INTERVALS = int(os.environ.get("CUSTOMER_FEED_FRESHNESS_INTERVALS", "3"))

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def mask_email(value: str) -> str:
    """``alice@example.com`` -> ``a***@example.com``; a value without a usable ``@`` -> ``***``."""
    local, at, domain = str(value).strip().rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_text(text: str) -> str:
    """Every email address in free text masked."""
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def _mask(value, key: str = ""):
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, key) for v in value]
    if isinstance(value, str):
        # A field named like an email is masked whatever it holds: a malformed address is
        # quarantined precisely because it does not look like one.
        return mask_email(value) if "email" in key.lower() and value else mask_text(value)
    return value


def mask_record(raw: str) -> str:
    """A quarantined record (JSON as received) with every email address masked."""
    try:
        return json.dumps(_mask(json.loads(raw)), ensure_ascii=False, sort_keys=True)
    except ValueError:
        return mask_text(raw)


# -- the run summary


def _when(value) -> str:
    moment = datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_ORIGINS = {
    "params": "explicit window (trigger params)",
    "data_interval": "data interval",
    "run_after": "the hour before the trigger",
}


def run_summary(window: dict, extracts: list[dict], loaded: dict, published: dict) -> dict:
    """The counts per feed and per source of one run, JSON-able: the customer asset event's
    ``extra``, and what the run's note is written from."""
    sources: dict[str, dict] = {}
    for e in extracts:
        s = sources.setdefault(
            e["source"], {"orders": 0, "quarantined": 0, "requests": 0, "extracts": 0, "deleted_at_source": 0}
        )
        s["orders"] += int(e["stats"].get("orders", 0))
        s["quarantined"] += int(e["stats"].get("quarantined", 0))
        s["requests"] += int(e["stats"].get("requests", 0))
        s["extracts"] += 1
        s["deleted_at_source"] += len(e.get("deleted", ()))
        if e["source"] == "differentbreed":
            s["customers_polled"] = s.get("customers_polled", 0) + int(e.get("customers", 0))
    return {
        "window": {"start": window["start"], "end": window["end"], "origin": window["origin"]},
        "rebuild": bool(published.get("full")),
        "feeds": {
            name: {k: feed[k] for k in ("customers", "orders", "total_spent", "currency")}
            for name, feed in sorted(published["feeds"].items())
        },
        "sources": dict(sorted(sources.items())),
        "orders_changed": int(loaded.get("orders_changed", 0)),
        "recomputed": int(published.get("recomputed_emails", 0)),
        "quarantined": int(loaded.get("quarantined", 0)),
    }


def run_note(summary: dict) -> str:
    """The run's note (Markdown, as the Airflow UI shows notes): the window loaded first."""
    w = summary["window"]
    lines = [
        f"**Window loaded:** {_when(w['start'])} → {_when(w['end'])} ({_ORIGINS.get(w['origin'], w['origin'])})"
        + (" — full rebuild" if summary["rebuild"] else ""),
        "",
        "| feed | customers | orders | total |",
        "|---|---:|---:|---:|",
    ]
    for name, f in summary["feeds"].items():
        lines.append(f"| {name} | {f['customers']:,} | {f['orders']:,} | {f['total_spent']:,.2f} {f['currency']} |")
    lines.append("")
    for name, s in summary["sources"].items():
        line = (
            f"- **{name}**: {s['orders']:,} orders extracted, {s['quarantined']} quarantined, {s['requests']} requests"
        )
        if "customers_polled" in s:
            line += f", {s['customers_polled']} customers polled, {s['deleted_at_source']} newly deleted at the source"
        lines.append(line)
    lines.append(
        f"- {summary['orders_changed']:,} orders changed, {summary['recomputed']:,} customers recomputed,"
        f" {summary['quarantined']} records quarantined"
    )
    return "\n".join(lines)


def record_publish(
    wh: Warehouse, config: FeedConfig, run_id: str, window: dict, extracts: list[dict], loaded: dict, published: dict
) -> dict:
    """Write the run's rows of the publish history (with its quarantine files) and return the
    run summary (see :func:`run_summary`)."""
    from include.warehouse import run_log

    summary = run_summary(window, extracts, loaded, published)
    files = [
        (e["source"], e["domain"], e["quarantine_path"], int(e["stats"].get("quarantined", 0)))
        for e in extracts
        if e.get("quarantine_path")
    ]
    run_log.record_run(
        wh,
        run_id,
        {f.name: f.currency for f in config.feeds},
        {
            "start": int(datetime.fromisoformat(window["start"]).timestamp()),
            "end": int(datetime.fromisoformat(window["end"]).timestamp()),
            "origin": window["origin"],
        },
        summary["orders_changed"],
        summary["recomputed"],
        files,
        full_rebuild=summary["rebuild"],
    )
    return summary


# -- freshness


def freshness(published_at: int | None, now: datetime, interval: timedelta = SCHEDULE_INTERVAL) -> dict:
    """How old a feed's last publish is, in schedule intervals: ``ok`` within one interval (plus
    a quarter for the run itself), ``due`` up to :data:`FRESHNESS_INTERVALS`, ``late`` beyond."""
    if published_at is None:
        return {"age_seconds": None, "intervals": None, "status": "never published"}
    age = max(0.0, now.timestamp() - published_at)
    intervals = age / interval.total_seconds()
    status = "ok" if intervals <= 1.25 else "due" if intervals <= FRESHNESS_INTERVALS else "late"
    return {"age_seconds": int(age), "intervals": round(intervals, 2), "status": status}


def stale_feeds(wh: Warehouse, now: datetime | None = None) -> list[str]:
    """Feeds whose last publish is older than :data:`FRESHNESS_INTERVALS` intervals."""
    from include.warehouse import run_log

    now = now or datetime.now(UTC)
    return [
        f for f, *_, published_at, _ in run_log.current_feeds(wh) if freshness(published_at, now)["status"] == "late"
    ]


# -- the page


def _quarantine(path: str, limit: int) -> tuple[Counter, list[dict], str | None]:
    from include.schema import QUARANTINE_SCHEMA
    from include.staging import read_table

    try:
        table = read_table(path, QUARANTINE_SCHEMA)
    except FileNotFoundError:
        return Counter(), [], "file no longer staged (the interval was re-run or erased)"
    rows = table.select(["source", "domain", "order_id", "customer_ref", "reason", "raw"]).to_pylist()
    for r in rows:
        r["reason"] = mask_text(r["reason"])
    reasons = Counter(r["reason"] for r in rows)
    records = [{**r, "raw": mask_record(r["raw"])} for r in rows[:limit]]
    return reasons, records, None


def overview(
    wh: Warehouse, now: datetime | None = None, runs: int = 10, quarantine_runs: int = 5, records_per_run: int = 50
) -> dict:
    """Everything the monitoring page shows, read from the warehouse and the staged quarantine
    files; email addresses are masked here, before anything leaves."""
    from include.money import minor_to_major
    from include.warehouse import run_log

    now = now or datetime.now(UTC)
    recent = run_log.recent_runs(wh, runs)
    currencies = {r.feed: r.currency for r in reversed(recent)}
    feeds = []
    for feed, customers, orders, spent, published_at, run_id in run_log.current_feeds(wh):
        currency = currencies.get(feed) or next((h.currency for h in run_log.history(wh, feed, 1)), None)
        feeds.append(
            {
                "feed": feed,
                "customers": customers,
                "orders": orders,
                "spent_minor": spent,
                "total_spent": minor_to_major(spent, currency) if currency else None,
                "currency": currency,
                "published_at": published_at,
                "run_id": run_id,
                "freshness": freshness(published_at, now),
                "history": [(h.published_at, h.customers) for h in run_log.history(wh, feed)],
            }
        )
    by_run: dict[str, dict] = {}
    for r in recent:
        entry = by_run.setdefault(
            r.run_id,
            {
                "run_id": r.run_id,
                "published_at": r.published_at,
                "window_start": r.window_start,
                "window_end": r.window_end,
                "window_origin": r.window_origin,
                "orders_changed": r.orders_changed,
                "recomputed": r.recomputed,
                "quarantined": r.quarantined,
                "full_rebuild": r.full_rebuild,
                "feeds": {},
            },
        )
        entry["feeds"][r.feed] = {"customers": r.customers, "orders": r.orders}
    run_list = list(by_run.values())
    quarantine = []
    wanted = [r["run_id"] for r in run_list[:quarantine_runs]]
    files = run_log.quarantine_files(wh, wanted)
    for run_id in wanted:
        reasons: Counter = Counter()
        records, notes = [], []
        for _, source, domain, path, count in (f for f in files if f[0] == run_id):
            if not count:
                continue
            found, rows, problem = _quarantine(path, records_per_run - len(records))
            reasons.update(found)
            records += rows
            if problem:
                notes.append(f"{source} {domain}: {count} records; {problem}")
        quarantine.append(
            {"run_id": run_id, "reasons": dict(reasons.most_common()), "records": records, "notes": notes}
        )
    return {
        "generated_at": int(now.timestamp()),
        "schedule_interval_seconds": int(SCHEDULE_INTERVAL.total_seconds()),
        "freshness_intervals": FRESHNESS_INTERVALS,
        "feeds": feeds,
        "runs": run_list,
        "quarantine": quarantine,
    }
