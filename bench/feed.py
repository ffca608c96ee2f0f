"""Feed pages cost the same wherever they are: 3M customers in PostgreSQL, served over HTTP.

Loads N customers (default 3,000,000) into a throwaway PostgreSQL database with COPY (rows/s),
starts the feed service as its own process, then times the first, middle and last page (200
requests each, median and p99) and prints the last/first ratio (goal <= 1.5), and requests per
second under a concurrent client.

    .venv/bin/python bench/feed.py [--pg postgresql://postgres@127.0.0.1:5432/test] [--customers 3000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import psycopg2
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from include.warehouse import Warehouse  # noqa: E402
from include.warehouse.ddl import BLOCK, CUSTOMER_COLUMNS  # noqa: E402
from scripts.local_stack import free_port, wait_http  # noqa: E402

FEED = "ampress"
PER_PAGE = 100
TOKEN = "bench-token"


def load(wh: Warehouse, n: int, chunk: int = 500_000) -> float:
    """COPY n published customers of one feed (and their block counts); returns rows/s."""
    started = time.perf_counter()
    with wh.transaction() as cur:
        for first in range(1, n + 1, chunk):
            ids = np.arange(first, min(first + chunk, n + 1), dtype=np.int64)
            rows = len(ids)
            cur.bulk_insert(
                "customers",
                CUSTOMER_COLUMNS,
                pa.table(
                    {
                        "feed": pa.array([FEED] * rows),
                        "id": ids,
                        "email": pa.array(np.char.add(np.char.add("customer", ids.astype(str)), "@example.com")),
                        "first_name": pa.array(["Zoë"] * rows),
                        "last_name": pa.array(["Brontë"] * rows),
                        "orders_count": pa.array(np.ones(rows, dtype=np.int64)),
                        "total_spent_minor": ids * 7 % 50_000,
                        "currency": pa.array(["GBP"] * rows),
                        "phone": pa.nulls(rows, pa.string()),
                        "registered_at": pa.array(["2026-01-01 10:00:00"] * rows),
                        "gender": pa.array(["unknown"] * rows),
                        "pos": ids,  # dense ids: pos = block * BLOCK + rank = id
                    }
                ),
            )
        loaded = time.perf_counter() - started
        blocks = np.arange(0, n // BLOCK + 1, dtype=np.int64)
        counts = np.array([min((b + 1) * BLOCK, n + 1) - max(b * BLOCK, 1) for b in blocks], dtype=np.int64)
        keep = counts > 0
        blocks, counts = blocks[keep], counts[keep]
        cur.bulk_insert(
            "feed_blocks",
            ["feed", "block", "n", "orders", "spent_minor", "cum_before"],
            pa.table(
                {
                    "feed": pa.array([FEED] * len(blocks)),
                    "block": blocks,
                    "n": counts,
                    "orders": counts,
                    "spent_minor": np.zeros(len(blocks), dtype=np.int64),
                    "cum_before": np.cumsum(counts) - counts,
                }
            ),
        )
        cur.execute(
            "INSERT INTO feed_meta (feed, total, config_fingerprint, published_at, run_id) VALUES (?, ?, ?, ?, ?)",
            (FEED, n, "bench", int(time.time()), "bench"),
        )
    with wh.transaction() as cur:
        cur.execute("ANALYZE customers")
    return n / loaded


def timed_page(url: str, page: int) -> float:
    body = urllib.parse.urlencode({"token": TOKEN, "page": page, "par_page": PER_PAGE}).encode()
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/convertedin/customers", data=body), timeout=30) as r:
        r.read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg", default=os.environ.get("CUSTOMER_FEED_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--customers", type=int, default=3_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    admin = psycopg2.connect(args.pg)
    admin.autocommit = True
    name = f"customer_feed_bench_{uuid.uuid4().hex[:8]}"
    admin.cursor().execute(f"CREATE DATABASE {name}")
    url = f"{args.pg.rsplit('/', 1)[0]}/{name}"
    proc = None
    try:
        wh = Warehouse(url)
        wh.create_schema()
        rate = load(wh, args.customers)
        print(f"COPY load: {args.customers:,} customers at {rate:,.0f} rows/s")

        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config:
            config.write(Path(__file__).resolve().parent.parent.joinpath("config", "feeds.yaml").read_text())
        port = free_port()
        env = {
            **os.environ,
            "CUSTOMER_FEED_DB_URL": url,
            "CONVERTEDIN_TOKEN_AMPRESS": TOKEN,
            "CUSTOMER_FEED_CONFIG": config.name,
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "include.feed_service", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        service = f"http://127.0.0.1:{port}"
        wait_http(f"{service}/healthz", proc=proc)
        last = -(-args.customers // PER_PAGE)
        results = {}
        for label, page in (("first", 1), ("middle", last // 2), ("last", last)):
            for _ in range(10):
                timed_page(service, page)  # warm the pool and caches alike for every page
            times = sorted(timed_page(service, page) for _ in range(args.requests))
            results[label] = (statistics.median(times), times[int(len(times) * 0.99) - 1])
            print(
                f"page {label:>6} ({page:>6,}): median {results[label][0] * 1000:.2f} ms,"
                f" p99 {results[label][1] * 1000:.2f} ms"
            )
        print(f"last/first median ratio: {results['last'][0] / results['first'][0]:.2f} (goal <= 1.5)")

        done, lock = [0], threading.Lock()
        pages = np.random.default_rng(1).integers(1, last + 1, 8 * args.requests)

        def client(slice_):
            for page in slice_:
                timed_page(service, int(page))
                with lock:
                    done[0] += 1

        threads = [threading.Thread(target=client, args=(pages[i::8],)) for i in range(8)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"concurrent: 8 clients, random pages: {done[0] / (time.perf_counter() - started):,.0f} requests/s")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main()
