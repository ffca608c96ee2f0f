"""`make demo`: the whole pipeline once, on the GiftPro sandbox and the embedded SQLite warehouse.

Starts the sandbox, runs the customer_feed DAG with `airflow dags test`, starts the feed service,
prints page 1 of each feed as converted.in receives it and one summary line per feed, checks the
feed against the sandbox's own ground truth, and stops everything it started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.local_stack import (  # noqa: E402
    DEMO_TOKENS,
    PYTHON,
    ROOT,
    LocalStack,
    airflow_env,
    differentbreed_connection,
    free_port,
    giftpro_connection,
    prepare_airflow,
)

DEMO_DIR = ROOT / "data" / "demo"
DEMO_HOME = ROOT / ".airflow-demo"


def post(url: str, fields: dict) -> dict:
    body = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=30) as resp:
        return json.loads(resp.read())


def all_customers(feed_url: str, token: str) -> list[dict]:
    rows, page = [], 1
    while True:
        answer = post(f"{feed_url}/convertedin/customers", {"token": token, "page": page, "par_page": 1000})
        rows += answer["data"]
        if page >= answer["last_page"]:
            return rows
        page += 1


def main() -> int:
    from include.config import load_config
    from sandbox.compare import feed_differences
    from sandbox.truth import expected_customers

    config = load_config()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    with LocalStack(DEMO_DIR / "logs") as stack:
        sandbox_url = stack.sandbox(free_port(int(os.environ.get("SANDBOX_PORT", 8801))))
        db_url = stack.differentbreed_sandbox(free_port(int(os.environ.get("DB_SANDBOX_PORT", 8802))))
        env = airflow_env(
            {
                # Its own Airflow home: the demo's `dags test` runs never show in (or collide with
                # the scheduled runs of) `make up`, which keeps .airflow/.
                "AIRFLOW_HOME": str(DEMO_HOME),
                "AIRFLOW_CONN_GIFTPRO_DEFAULT": giftpro_connection(sandbox_url),
                "AIRFLOW_CONN_DIFFERENTBREED_DEFAULT": differentbreed_connection(db_url),
                "AIRFLOW_CONN_CUSTOMER_FEED_DB": json.dumps(
                    {"conn_type": "sqlite", "host": str(DEMO_DIR / "warehouse.db")}
                ),
                "CUSTOMER_FEED_STAGING_URL": f"file://{DEMO_DIR / 'staging'}",
                **DEMO_TOKENS,
            }
        )
        print(
            f"GiftPro sandbox at {sandbox_url}, Different Breed sandbox at {db_url};"
            f" warehouse {DEMO_DIR / 'warehouse.db'}"
        )
        prepare_airflow(env)
        logical_date = datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
        started = time.perf_counter()
        run = subprocess.run(
            [str(Path(PYTHON).parent / "airflow"), "dags", "test", "customer_feed", logical_date],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        run_seconds = time.perf_counter() - started
        (DEMO_DIR / "logs" / "dags-test.log").write_text(run.stdout + run.stderr)
        if run.returncode != 0:
            print(run.stdout[-4000:], run.stderr[-4000:], sep="\n")
            print(f"the DAG run failed (exit {run.returncode}); full log in {DEMO_DIR / 'logs' / 'dags-test.log'}")
            return 1
        # The run's own summary, as the publish task logged it.
        run_lines = [
            m.group(1)
            for m in re.finditer(r"\] ((?:feed|source|run):? .*?) \[customer_feed\]", run.stdout + run.stderr)
        ]

        feed_url = stack.feed_service(free_port(int(os.environ.get("FEED_PORT", 8810))), env)
        with urllib.request.urlopen(f"{sandbox_url}/_sandbox/orders", timeout=60) as resp:
            giftpro_orders = json.loads(resp.read())
        with urllib.request.urlopen(f"{db_url}/_sandbox/dump", timeout=60) as resp:
            db = json.loads(resp.read())
        truth = expected_customers(config, giftpro_orders, db["customers"], db["orders"], "ampress-events")

        summaries, mismatches = [], 0
        for feed in config.feeds:
            token = env[feed.token_env]
            print(f"\n=== POST {feed_url}/convertedin/storeinfo  (feed {feed.name})")
            print(json.dumps(post(f"{feed_url}/convertedin/storeinfo", {"token": token}), ensure_ascii=False, indent=2))
            print(f"\n=== POST {feed_url}/convertedin/customers page=1 par_page=5  (feed {feed.name})")
            print(
                json.dumps(
                    post(f"{feed_url}/convertedin/customers", {"token": token, "page": 1, "par_page": 5}),
                    ensure_ascii=False,
                    indent=2,
                )
            )
            served = all_customers(feed_url, token)
            bad = feed_differences(served, truth, config, feed.name)
            for problem in bad:
                print(f"  MISMATCH {problem}")
            mismatches += len(bad)
            total = sum(c["total_spent"] for c in served)
            summaries.append(
                f"{feed.name}: {len(served)} customers, {sum(c['orders_count'] for c in served)} orders,"
                f" {total:,.2f} {feed.currency} spent, DAG run {run_seconds:.1f}s;"
                f" {'matches' if not bad else 'DIFFERS FROM'} the sandbox's ground truth"
            )
        print("\n=== Summary")
        for line in run_lines:
            print(f"  {line.strip()}")
        for line in summaries:
            print(f"  {line}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
