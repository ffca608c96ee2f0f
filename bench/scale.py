"""Merchant-group scale: 50 properties, up to 10M orders and 3M customers, on either warehouse.

For each size: load the history into the order state (orders/s; the staging rate of the first
and last slice, and the bulk steps after the last: latest versions appended, keys and indexes
built), publish the feed in full (seconds, its read / aggregate / write steps,
customers written per second), the incremental run of 5k changed orders (load + publish, median
of 3), and the peak RSS of the process doing all that (with its children). Beside it, in another
process, DuckDB runs the same rules (the query in include/warehouse/aggregate.py) over the same
rows held in memory: its time, and the ratio of the publish's aggregation step to it. The run
fails unless the published totals per feed (customers, orders, money) equal DuckDB's, after the
full publish and again after the incremental runs.

Emails scale with the orders (30 %, at most 3M: 1M orders -> 300k emails, 10M -> 3M), as a
group's customer base grows with its history. A 100k-order run is added as the baseline of the
incremental goal. `--smoke` runs 200k orders only (CI runs it on both warehouses).

    .venv/bin/python bench/scale.py [--warehouse sqlite | postgresql://postgres@127.0.0.1:5432/test]
                                    [--orders 1M,3M,10M] [--smoke]

On PostgreSQL the benchmark works in a database of its own (created and dropped on the server
of the URL); on SQLite in a temporary file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.synthetic import SCALE_DOMAINS, scale_config, scale_orders  # noqa: E402

SLICE = 1_000_000  # orders per staged slice in the history load
CHANGES = 5_000  # orders per incremental run: half edits of existing orders, half new
INCREMENTAL_RUNS = 3
BASELINE = 100_000

# Goals of the merchant-group scale (2 cores).
GOAL_PUBLISH_S = 30.0
GOAL_AGG_RATIO = 1.5
GOAL_RSS_GIB = 4.0
GOAL_RSS_GROWTH = 1.5
GOAL_LOAD_RATE = 300_000
GOAL_LOAD_KEEP = 0.8
GOAL_WRITE_RATE = 300_000
GOAL_INCREMENTAL_RATIO = 1.5


def emails_for(orders: int) -> int:
    return max(1, min(3_000_000, orders * 3 // 10))


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    for suffix, factor in (("m", 1_000_000), ("k", 1_000)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def history(total: int, emails: int):
    """The history in slices of SLICE orders, as the staged extracts of a first load."""
    for first in range(0, total, SLICE):
        yield scale_orders(np.arange(first, min(first + SLICE, total)), total, emails)


def changes(total: int, emails: int, run: int) -> pa.Table:
    """Run `run` (1-based): version `run` of CHANGES // 2 orders spread over the whole history
    (refunds or their reversal, one in ten with a consent flip), and CHANGES // 2 new orders."""
    half = CHANGES // 2
    edited = (np.arange(half, dtype=np.int64) * 7919 + run * 104_729) % total
    edited = np.unique(edited)
    new = np.arange(total + (run - 1) * half, total + run * half, dtype=np.int64)
    return pa.concat_tables([scale_orders(edited, total, emails, version=run), scale_orders(new, total, emails)])


def peak_rss_bytes() -> int:
    """Peak resident set of this process and of its largest child (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024


# --------------------------------------------------------------------------- the pipeline side


def run_pipeline(url: str, total: int) -> dict:
    from include.warehouse import Warehouse
    from include.warehouse.order_state import load_orders
    from include.warehouse.publish import publish_customers

    config = scale_config()
    emails = emails_for(total)
    wh = Warehouse(url)
    wh.drop_all()
    wh.create_schema()

    # The first load: every staged slice in one load, streamed (one slice in memory at a time).
    # Generating a slice is the benchmark's work, timed apart and taken off.
    generating, yielded, asked = [], [], []

    def slices():
        for first in range(0, total, SLICE):
            asked.append(time.perf_counter())
            part = scale_orders(np.arange(first, min(first + SLICE, total)), total, emails)
            yielded.append(time.perf_counter())
            generating.append(yielded[-1] - asked[-1])
            yield part
        asked.append(time.perf_counter())

    started = time.perf_counter()
    loaded = load_orders(wh, slices(), [], "history")
    ended = time.perf_counter()
    load_seconds = ended - started - sum(generating)
    # Slice k is merged between its yield and the request for the next one; what follows the
    # last (the indexes built again, the commit) is the load's finish.
    slice_seconds = [asked[k + 1] - yielded[k] for k in range(len(yielded))]
    finish_seconds = ended - asked[-1]
    rss_after_load = peak_rss_bytes()

    full = publish_customers(wh, config, "rebuild", full=True)
    after_full = full["feeds"]
    rss_after_publish = peak_rss_bytes()

    runs = []
    for run in range(1, INCREMENTAL_RUNS + 1):
        batch = changes(total, emails, run)
        started = time.perf_counter()
        load_orders(wh, batch, [], f"incremental-{run}")
        inc = publish_customers(wh, config, f"incremental-{run}")
        runs.append(time.perf_counter() - started)
        assert not inc["full"]
    final = inc["feeds"]
    wh.drop_all()
    wh.close()
    sizes = [min(SLICE, total - first) for first in range(0, total, SLICE)]
    first_rate, last_rate = sizes[0] / slice_seconds[0], sizes[-1] / slice_seconds[-1]
    return {
        "orders": total,
        "emails": emails,
        "load_seconds": load_seconds,
        "load_rate": total / load_seconds,
        "load_first_slice_rate": first_rate,
        "load_last_slice_rate": last_rate,
        "load_finish_seconds": finish_seconds,
        "load_timings": loaded["timings"],
        "publish_seconds": full["seconds"],
        "publish_timings": full.get("timings", {}),
        "incremental_seconds": statistics.median(runs),
        "incremental_runs": runs,
        "rss_after_load": rss_after_load,
        "rss_after_publish": rss_after_publish,
        "rss_peak": peak_rss_bytes(),
        "totals_full": after_full,
        "totals_final": final,
        # Other work on the machine shows here: the goals are for 2 otherwise idle cores.
        "load_average": os.getloadavg()[1],
    }


# --------------------------------------------------------------------------- DuckDB on its own


def run_reference(total: int) -> dict:
    """The same rules in DuckDB over the same rows in memory: the time of the query, and the
    totals per feed after the history and after the incremental runs."""
    from include.warehouse.aggregate import CUSTOMERS_SQL, ORDER_FIELDS, connect, register_config
    from include.warehouse.order_state import to_warehouse_rows

    config = scale_config()
    emails = emails_for(total)
    con = connect()
    register_config(con, config)
    con.execute(
        "CREATE TABLE profiles (source VARCHAR, domain VARCHAR, customer_ref VARCHAR, email_norm VARCHAR,"
        " first_name VARCHAR, last_name VARCHAR, registered_at BIGINT, changed_at BIGINT)"
    )
    columns = ORDER_FIELDS + ["changed_at", "version_hash"]
    for n, part in enumerate(history(total, emails)):
        con.register("part", to_warehouse_rows(part).select(columns))
        con.execute("CREATE TABLE orders AS SELECT * FROM part" if n == 0 else "INSERT INTO orders SELECT * FROM part")
        con.unregister("part")
    started = time.perf_counter()
    con.execute(f"CREATE TABLE computed AS {CUSTOMERS_SQL}")
    query_seconds = time.perf_counter() - started
    after_full = _totals(con, config)

    for run in range(1, INCREMENTAL_RUNS + 1):
        con.register("part", to_warehouse_rows(changes(total, emails, run)).select(columns))
        con.execute("INSERT INTO orders SELECT * FROM part")
        con.unregister("part")
    # The order-state rule: the latest version of each order (changed_at, then version_hash).
    con.execute(
        "CREATE TABLE latest AS SELECT * FROM orders QUALIFY row_number() OVER"
        " (PARTITION BY source, domain, order_id ORDER BY changed_at DESC, version_hash DESC) = 1"
    )
    con.execute("DROP TABLE computed")
    con.execute("DROP TABLE orders")
    con.execute("ALTER TABLE latest RENAME TO orders")
    con.execute(f"CREATE TABLE computed AS {CUSTOMERS_SQL}")
    final = _totals(con, config)
    con.close()
    return {"query_seconds": query_seconds, "totals_full": after_full, "totals_final": final}


def _totals(con, config) -> dict:
    from include.money import minor_to_major

    rows = con.execute(
        "SELECT feed, count(*), sum(orders_count), sum(total_spent_minor) FROM computed"
        " WHERE accepts_marketing GROUP BY feed"
    ).fetchall()
    got = {feed: (int(n), int(o), int(s)) for feed, n, o, s in rows}
    return {
        feed.name: {
            "customers": got.get(feed.name, (0, 0, 0))[0],
            "orders": got.get(feed.name, (0, 0, 0))[1],
            "total_spent": minor_to_major(got.get(feed.name, (0, 0, 0))[2], feed.currency),
            "currency": feed.currency,
        }
        for feed in config.feeds
    }


# --------------------------------------------------------------------------- orchestration


def _worker(kind: str, url: str, total: int) -> dict:
    """One measurement in a process of its own, so each peak RSS is its own."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--size", str(total)]
    if url:
        command += ["--warehouse", url]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{kind} worker failed at {total:,} orders")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _pg_database(admin_url: str):
    import psycopg2

    name = f"customer_feed_scale_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    base = admin_url.rsplit("/", 1)[0]

    def drop():
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()

    return f"{base}/{name}", drop


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", default="sqlite", help="'sqlite' (a temporary file) or a PostgreSQL URL")
    parser.add_argument("--orders", default="1M,3M,10M", help="comma-separated sizes, e.g. 1M,3M,10M")
    parser.add_argument("--smoke", action="store_true", help="200k orders only (CI)")
    parser.add_argument("--worker", choices=["pipeline", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        result = run_pipeline(args.warehouse, args.size) if args.worker == "pipeline" else run_reference(args.size)
        print(json.dumps(result))
        return

    sizes = [200_000] if args.smoke else [parse_size(s) for s in args.orders.split(",")]
    postgres = args.warehouse.startswith(("postgresql://", "postgres://"))
    with tempfile.TemporaryDirectory(prefix="customer-feed-scale-") as tmp:
        if postgres:
            url, cleanup = _pg_database(args.warehouse)
        else:
            url, cleanup = f"sqlite:///{tmp}/scale.db", lambda: None
        try:
            print(
                f"warehouse {url.split('://')[0]}; {len(SCALE_DOMAINS)} properties in 5 feeds; emails = 30% of orders"
                f" (at most 3M); {os.cpu_count()} cores",
                flush=True,
            )
            baseline = None
            if not args.smoke and min(sizes) > BASELINE:
                baseline = _worker("pipeline", url, BASELINE)
            results = []
            for total in sizes:
                pipeline = _worker("pipeline", url, total)
                reference = _worker("reference", "", total)
                for stage in ("totals_full", "totals_final"):
                    assert pipeline[stage] == reference[stage], (
                        f"{total:,} orders, {stage}: published {pipeline[stage]} != DuckDB {reference[stage]}"
                    )
                results.append((pipeline, reference))
                _print_row(pipeline, reference)
        finally:
            cleanup()

    first = results[0][0]
    base_inc = (baseline or first)["incremental_seconds"]
    base_size = (baseline or first)["orders"]
    print()
    print("goals:")
    for pipeline, reference in results:
        n = pipeline["orders"]
        t = pipeline["publish_timings"]
        ratio = t.get("aggregate", 0) / reference["query_seconds"]
        write_rate = t.get("customers_written", 0) / max(t.get("write_customers", 0), 1e-9)
        print(
            f"  {n:>10,}: publish {pipeline['publish_seconds']:.1f}s <= {GOAL_PUBLISH_S:.0f}s"
            f" {_verdict(pipeline['publish_seconds'] <= GOAL_PUBLISH_S)};"
            f" aggregate/DuckDB {ratio:.2f} <= {GOAL_AGG_RATIO} {_verdict(ratio <= GOAL_AGG_RATIO)};"
            f" peak RSS {_gib(pipeline['rss_peak'])} GiB <= {GOAL_RSS_GIB:.0f}"
            f" {_verdict(pipeline['rss_peak'] <= GOAL_RSS_GIB * 2**30)};"
            f" load {pipeline['load_rate'] / 1000:.0f}k/s >= {GOAL_LOAD_RATE // 1000}k"
            f" {_verdict(pipeline['load_rate'] >= GOAL_LOAD_RATE)};"
            f" customers written {write_rate / 1000:.0f}k/s >= {GOAL_WRITE_RATE // 1000}k"
            f" {_verdict(write_rate >= GOAL_WRITE_RATE)}"
        )
    if len(results) > 1:
        last = results[-1][0]
        growth = last["rss_peak"] / first["rss_peak"]
        keep = last["load_rate"] / first["load_rate"]
        print(
            f"  peak RSS {last['orders']:,} / {first['orders']:,}: {growth:.2f} <= {GOAL_RSS_GROWTH}"
            f" {_verdict(growth <= GOAL_RSS_GROWTH)}; load rate {last['orders']:,} / {first['orders']:,}:"
            f" {keep:.2f} >= {GOAL_LOAD_KEEP} {_verdict(keep >= GOAL_LOAD_KEEP)}"
        )
    for pipeline, _ in results:
        ratio = pipeline["incremental_seconds"] / base_inc
        print(
            f"  incremental {CHANGES:,} changes at {pipeline['orders']:,} / at {base_size:,}: {ratio:.2f}"
            f" <= {GOAL_INCREMENTAL_RATIO} {_verdict(ratio <= GOAL_INCREMENTAL_RATIO)}"
        )
    print("published totals per feed equal DuckDB's after the full publish and after the incremental runs")


def _print_row(pipeline: dict, reference: dict) -> None:
    t, lt = pipeline["publish_timings"], pipeline.get("load_timings", {})
    write_rate = t.get("customers_written", 0) / max(t.get("write_customers", 0), 1e-9)
    ratio = t.get("aggregate", 0) / reference["query_seconds"]
    print(
        f"{pipeline['orders']:>10,} orders, {pipeline['emails']:,} emails:"
        f" load {pipeline['load_seconds']:.1f}s ({pipeline['load_rate'] / 1000:.0f}k/s;"
        f" staged: first slice {pipeline['load_first_slice_rate'] / 1000:.0f}k/s,"
        f" last {pipeline['load_last_slice_rate'] / 1000:.0f}k/s;"
        f" latest versions appended {lt.get('latest_appended', 0):.1f}s, keys and indexes"
        f" {lt.get('keys_indexes', 0):.1f}s, all after the last slice {pipeline['load_finish_seconds']:.1f}s)"
        f" | full publish {pipeline['publish_seconds']:.1f}s (read {t.get('read', 0):.1f},"
        f" rules in {t.get('partitions', 1)} partition(s),"
        f" aggregate {t.get('aggregate', 0):.2f}, ids {t.get('ids', 0):.2f}, write {t.get('write', 0):.1f}:"
        f" new ids {t.get('write_ids', 0):.1f}, {t.get('customers_written', 0):,} customers"
        f" {t.get('write_customers', 0):.1f} = {write_rate / 1000:.0f}k/s)"
        f" | DuckDB {reference['query_seconds']:.2f}s (aggregate x{ratio:.2f})"
        f" | peak RSS {_gib(pipeline['rss_peak'])} GiB (load {_gib(pipeline['rss_after_load'])})"
        f" | incremental {CHANGES:,}: {pipeline['incremental_seconds']:.2f}s"
        f" | machine load average {pipeline['load_average']:.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
