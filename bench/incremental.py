"""Incremental cost grows with the changes, not with the history.

For 100k and 1M historical orders: time load + publish of a run of 1k changed orders (half new,
half edits of existing orders: refunds, one in ten with a consent flip), print both, their ratio (goal <= 1.5) and
the full-rebuild publish time for comparison. Warehouse: the embedded SQLite file by default,
`--warehouse postgresql://...` for PostgreSQL.

    .venv/bin/python bench/incremental.py [--warehouse URL] [--sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import orders  # noqa: E402
from include.config import load_config  # noqa: E402
from include.schema import ORDER_SCHEMA  # noqa: E402
from include.warehouse import Warehouse  # noqa: E402
from include.warehouse.order_state import load_orders  # noqa: E402
from include.warehouse.publish import publish_customers  # noqa: E402

CHANGES = 1_000
RUNS = 7  # incremental runs per size; the median is reported (a commit's fsync is noisy)


def changed_run(history: pa.Table, seed: int) -> pa.Table:
    """500 edits of existing orders (each a refund or its reversal; one in ten also flips the
    order's consent, which moves its customer in or out of the feed) + 500 new orders."""
    n = history.num_rows
    picks = pa.array(sorted({(i * 7919 + seed) % n for i in range(CHANGES // 2)}))
    edited = history.take(picks)
    edited = edited.set_column(
        edited.schema.get_field_index("successful"), "successful", pc.invert(edited["successful"])
    )
    flip = pa.array([i % 10 == 0 for i in range(edited.num_rows)])
    consent = pc.if_else(flip, pc.invert(edited["marketing_opt_in"]), edited["marketing_opt_in"])
    edited = edited.set_column(edited.schema.get_field_index("marketing_opt_in"), "marketing_opt_in", consent)
    later = pc.add(edited["changed_at"].cast(pa.int64()), 3600).cast(pa.timestamp("s", tz="UTC"))
    edited = edited.set_column(edited.schema.get_field_index("changed_at"), "changed_at", later)
    new = orders(CHANGES - edited.num_rows, emails=max(n // 3, 1), seed=seed, first_id=n + 10_000_000)
    return pa.concat_tables([edited.cast(ORDER_SCHEMA), new])


def measure(url: str, size: int, config) -> dict:
    wh = Warehouse(url)
    wh.drop_all()
    wh.create_schema()
    history = orders(size, emails=size // 3, seed=size)
    started = time.perf_counter()
    load_orders(wh, history, [], "history")
    publish_customers(wh, config, "history")
    initial = time.perf_counter() - started

    runs = []
    for i in range(RUNS):
        batch = changed_run(history, seed=i + 1)
        started = time.perf_counter()
        load_orders(wh, batch, [], f"incremental-{i}")
        publish_customers(wh, config, f"incremental-{i}")
        runs.append(time.perf_counter() - started)

    started = time.perf_counter()
    publish_customers(wh, config, "rebuild", full=True)
    rebuild = time.perf_counter() - started
    wh.drop_all()
    wh.close()
    return {"size": size, "initial": initial, "incremental": statistics.median(runs), "rebuild": rebuild}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", help="warehouse URL (default: a temporary SQLite file)")
    parser.add_argument("--sizes", type=int, nargs=2, default=[100_000, 1_000_000])
    args = parser.parse_args()
    config = load_config(Path(__file__).resolve().parent.parent / "config" / "feeds.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.warehouse or f"sqlite:///{tmp}/bench.db"
        print(f"warehouse: {url.split('://')[0]}; {CHANGES} changed orders per run (median of {RUNS} runs)")
        results = [measure(url, size, config) for size in args.sizes]
    for r in results:
        print(
            f"history {r['size']:>9,} orders: incremental load+publish {r['incremental']:.3f}s;"
            f" full rebuild publish {r['rebuild']:.3f}s; initial load+publish {r['initial']:.1f}s"
        )
    small, large = results
    print(
        f"incremental ratio {large['size'] // small['size']}x history: "
        f"{large['incremental'] / small['incremental']:.2f} (goal <= 1.5)"
    )
    print(f"rebuild / incremental at {large['size']:,}: {large['rebuild'] / large['incremental']:.1f}x")


if __name__ == "__main__":
    main()
