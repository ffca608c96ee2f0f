"""A property's first load in history slices, against the GiftPro sandbox with per-page latency.

The sandbox runs in its own process with one property of `--orders` orders over two years, every
API request delayed by `--latency` seconds (100 ms: a distant API). The first load is planned as
the DAG plans it (`plan_giftpro`: it asks the API how many pages the history fills and where
their quantiles fall, then cuts slices of `--slice-pages` pages), and every slice's extract runs
with the task's own function (`extract_giftpro`), all at once, one thread each — as Airflow runs
the mapped tasks side by side (`--workers process`: one forked process each, as Airflow's task
processes are; on our busy 2-core machine that cost more CPU per page and measured lower, so
threads are the default).

Prints the plan's cost, the extract's pages per second, the latency bound (slices x 1/latency
pages per second: every slice waiting on one request at a time), their ratio (goal >= 0.8), and
checks that every order of the property arrived exactly once.

    .venv/bin/python bench/history_extract.py [--orders 20000] [--slice-pages 50] [--latency 0.1]
                                              [--workers thread|process] [--single]

`--single` also times the same history as one unsliced extract, for comparison.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from include.config import DEFAULT_CONFIG_PATH, FeedConfig, load_config  # noqa: E402
from include.pipeline import extract_giftpro, plan_giftpro, resolve_window  # noqa: E402
from include.staging import read_orders  # noqa: E402
from include.warehouse import Warehouse  # noqa: E402
from scripts.local_stack import PYTHON, ROOT, free_port, giftpro_connection, wait_http  # noqa: E402

DOMAIN = 3522
END = datetime(2026, 11, 2, tzinfo=UTC)


def post(url: str, body) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    urllib.request.urlopen(request, timeout=120).close()


def seed(url: str, count: int) -> None:
    first = datetime(2024, 11, 1, tzinfo=UTC)
    step = (END - timedelta(days=2) - first) / max(count, 1)
    batch = []
    for n in range(count):
        created = (first + step * n).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")  # a naive text is enough here
        batch.append(
            {
                "orderID": 1_000_000 + n,
                "domainID": DOMAIN,
                "dateCreated": created,
                "emailAddress": f"guest{n % (count // 3 + 1)}@example.com",
                "customerName": "Bench Mark",
                "marketingOptedIn": n % 5 != 0,
                "total": 25.0 + n % 7,
            }
        )
        if len(batch) == 2_000 or n == count - 1:
            post(f"{url}/_sandbox/orders", batch)
            batch = []


def config_for(slice_pages: int) -> FeedConfig:
    data = load_config(DEFAULT_CONFIG_PATH).model_dump()
    feed = next(f for f in data["feeds"] if str(DOMAIN) in f["sources"]["giftpro_domains"])
    feed["sources"] = {"giftpro_domains": [str(DOMAIN)], "differentbreed_profiles": []}
    data["feeds"] = [feed]
    data["giftpro"]["history_slice_pages"] = slice_pages
    return FeedConfig.model_validate(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--slice-pages", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", choices=("thread", "process"), default="thread")
    parser.add_argument("--single", action="store_true", help="also time one unsliced extract")
    args = parser.parse_args()

    port = free_port()
    log = open(Path(tempfile.gettempdir()) / f"history-bench-sandbox-{port}.log", "w")
    sandbox = subprocess.Popen(
        [PYTHON, "-m", "sandbox.giftpro", "--port", str(port), "--orders", "0"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/_sandbox/health", proc=sandbox)
        seed(url, args.orders)
        post(f"{url}/_sandbox/latency", {"seconds": args.latency})
        os.environ["AIRFLOW_CONN_GIFTPRO_DEFAULT"] = giftpro_connection(url)
        with tempfile.TemporaryDirectory() as tmp:
            return run(args, Path(tmp), sandbox.pid)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=15)


def extract_slice(job) -> object:
    spec, config, staging = job
    return extract_giftpro(spec, config, staging)


def _started(_) -> int:
    time.sleep(0.2)  # long enough that every worker takes one
    return os.getpid()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run(args, tmp: Path, sandbox_pid: int) -> int:
    config = config_for(args.slice_pages)
    wh = Warehouse(f"sqlite:///{tmp / 'warehouse.db'}")
    wh.create_schema()
    window = resolve_window({}, END - timedelta(hours=1), END, None)
    # Airflow's HTTP hook takes seconds to import; a task process has it already.
    from airflow.providers.http.hooks.http import HttpHook  # noqa: F401

    started = time.perf_counter()
    specs = plan_giftpro(config, wh, window)
    plan_seconds = time.perf_counter() - started
    pages = -(-args.orders // 50)
    print(
        f"history: {args.orders} orders of one property = {pages} pages of 50; {args.latency * 1000:.0f} ms per"
        f" request; plan (probe + quantiles) {plan_seconds:.1f}s -> {len(specs)} slices of ~{args.slice_pages} pages;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    staging = f"file://{tmp / 'staging'}"
    if args.workers == "process":
        # Forked after the imports, as warm as a task process; every worker up before the clock.
        pool = ProcessPoolExecutor(max_workers=len(specs), mp_context=multiprocessing.get_context("fork"))
        assert len(set(pool.map(_started, range(len(specs))))) == len(specs)
    else:
        pool = ThreadPoolExecutor(max_workers=len(specs))
    started, server_cpu = time.perf_counter(), cpu_seconds(sandbox_pid)
    client_cpu = time.process_time() + children_cpu()
    results = list(pool.map(extract_slice, [(s, config, staging) for s in specs]))
    seconds = time.perf_counter() - started
    server_cpu = cpu_seconds(sandbox_pid) - server_cpu
    pool.shutdown()
    client_cpu = time.process_time() + children_cpu() - client_cpu
    requests = sum(r.stats.requests for r in results)
    rate = requests / seconds
    bound = len(specs) / args.latency
    slowest = max(r.stats.seconds for r in results)
    print(
        f"extract: {requests} requests in {seconds:.2f}s = {rate:.1f} pages/s"
        f" ({sum(r.stats.orders for r in results) / seconds:.0f} orders/s);"
        f" bound {len(specs)} slices x {1 / args.latency:.0f} pages/s = {bound:.0f} pages/s;"
        f" ratio {rate / bound:.2f} (goal >= 0.80)"
    )
    print(
        f"slices: {min(r.stats.requests for r in results)}-{max(r.stats.requests for r in results)} requests each,"
        f" {min(r.stats.seconds for r in results):.2f}-{slowest:.2f}s each; CPU per page: extract"
        f" {client_cpu / requests * 1000:.1f} ms, sandbox {server_cpu / requests * 1000:.1f} ms"
        f" ({(client_cpu + server_cpu) / requests * bound:.2f} cores busy at the bound);"
        f" load average now {os.getloadavg()[0]:.1f}"
    )
    ids = read_orders([r.orders_path for r in results])["order_id"].to_pylist()
    quarantined = sum(r.stats.quarantined for r in results)
    ok = len(ids) == len(set(ids)) and len(ids) + quarantined == args.orders
    verdict = "ok" if ok else "WRONG"
    print(f"orders fetched: {len(ids)} distinct of {args.orders} ({quarantined} quarantined): {verdict}")

    if args.single:
        whole = specs[0].model_copy(update={"part": "", "part_index": 0, "parts": 1, "created_to": None})
        started = time.perf_counter()
        single = extract_giftpro(whole, config, f"file://{tmp / 'single'}")
        took = time.perf_counter() - started
        print(
            f"one unsliced extract: {single.stats.requests} requests in {took:.1f}s"
            f" = {single.stats.requests / took:.1f} pages/s; sliced is {took / seconds:.1f}x faster"
        )
    return 0 if ok and rate / bound >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
