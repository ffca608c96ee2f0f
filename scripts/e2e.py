"""`make e2e`: a real distributed run on this machine, as separate processes.

Airflow on a fresh PostgreSQL metadata database with the CeleryExecutor over Redis — api-server,
scheduler, dag-processor and a Celery worker — plus both sandboxes; the warehouse on PostgreSQL,
staging on S3 (a moto server over HTTP).
It triggers customer_feed through the REST API and waits for success, runs
`airflow backfill create` through the scheduler, then starts the feed service on the PostgreSQL
warehouse and compares every served customer with the sandboxes' ground truth. It stops every
process it started and drops the databases it created, whatever happens.

PostgreSQL from CUSTOMER_FEED_TEST_PG, Redis from CUSTOMER_FEED_TEST_REDIS (database 5 is used
and flushed). E2E_BACKFILL_HOURS sets the backfill's length (default 72 hourly runs: three days),
E2E_BACKFILL_MAX_ACTIVE how many of its runs may be active at once (default 8) and
E2E_WORKER_CONCURRENCY the Celery worker's slots (default 8).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.local_stack import (  # noqa: E402
    DEMO_TOKENS,
    PYTHON,
    ROOT,
    LocalStack,
    differentbreed_connection,
    free_port,
    giftpro_connection,
    wait_http,
)

E2E = ROOT / "data" / "e2e"
AIRFLOW = str(Path(PYTHON).parent / "airflow")
PG = os.environ.get("CUSTOMER_FEED_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("CUSTOMER_FEED_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_DB = 5
API_PAGE_LIMIT = 100  # Airflow's [api] maximum_page_limit: a list call answers no more
STAGING_URL = "s3://customer-feed-e2e/staging"


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Api:
    def __init__(self, url: str):
        self.url = url
        with urllib.request.urlopen(f"{url}/auth/token", timeout=30) as resp:  # all-admins mode
            self.token = json.loads(resp.read())["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/api/v2{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")


def wait_for(what: str, check, seconds: float, every: float = 2.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(f"{what}: not within {seconds:.0f}s")


def report_failures(run_id: str = "*") -> None:
    """Print each failed task's last exception from its log, and where the logs are."""
    logs = E2E / "airflow" / "logs"
    for path in sorted(logs.glob(f"dag_id=customer_feed/run_id={run_id}/task_id=*/**/attempt=*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if '"Task failed with exception"' not in line:
                continue
            try:
                error = json.loads(line)["error_detail"][0]
            except (ValueError, KeyError, IndexError):
                continue
            log(f"{path.relative_to(logs)}: {error.get('exc_type')}: {error.get('exc_value')}")
    log(f"task logs in {logs}")


def list_runs(api: Api, query: str, page_size: int = API_PAGE_LIMIT) -> list[dict]:
    """Every DAG run the query matches, page by page: the API answers at most
    ``[api] maximum_page_limit`` (100) runs a call, whatever ``limit`` asks for."""
    runs: list[dict] = []
    while True:
        body = api.call("GET", f"/dags/customer_feed/dagRuns?{query}&limit={page_size}&offset={len(runs)}")
        runs += body["dag_runs"]
        if not body["dag_runs"] or len(runs) >= body["total_entries"]:
            return runs


def backfill_finished(api: Api, hours: int) -> list[str] | None:
    """The states of the backfill's runs once all `hours` of them exist and have finished."""
    states = [r["state"] for r in list_runs(api, "run_type=backfill")]
    if len(states) >= hours and all(s in ("success", "failed") for s in states):
        return states
    return None


def run_state(api: Api, run_id: str) -> str:
    return api.call("GET", f"/dags/customer_feed/dagRuns/{urllib.parse.quote(run_id, safe='')}")["state"]


def main() -> int:
    import psycopg2
    import redis

    shutil.rmtree(E2E, ignore_errors=True)
    (E2E / "logs").mkdir(parents=True)
    suffix = uuid.uuid4().hex[:8]
    meta_db, wh_db = f"customer_feed_e2e_af_{suffix}", f"customer_feed_e2e_wh_{suffix}"
    admin = psycopg2.connect(PG, connect_timeout=5)
    admin.autocommit = True
    base = PG.rsplit("/", 1)[0]
    for name in (meta_db, wh_db):
        admin.cursor().execute(f"CREATE DATABASE {name}")
    broker = redis.Redis.from_url(f"{REDIS}/{REDIS_DB}")
    broker.flushdb()
    stack = LocalStack(E2E / "logs")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(stack, base, meta_db, wh_db)
    finally:
        stack.close()
        broker.flushdb()
        for name in (meta_db, wh_db):
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
        log("stopped every process and dropped the e2e databases")


def run(stack: LocalStack, base: str, meta_db: str, wh_db: str) -> int:
    from include.config import load_config
    from sandbox import differentbreed
    from sandbox.compare import feed_differences
    from sandbox.truth import expected_customers

    api_port, s3_port = free_port(), free_port()
    customer_list = E2E / "differentbreed_customers.csv"
    config_path = E2E / "feeds.yaml"
    config_path.write_text(
        (ROOT / "config" / "feeds.yaml").read_text().replace("config/differentbreed_customers.csv", str(customer_list))
    )
    meta = f"{base}/{meta_db}".replace("postgresql://", "postgresql+psycopg2://", 1)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATH": f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(E2E / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta,
        "AIRFLOW__CELERY__BROKER_URL": f"{REDIS}/{REDIS_DB}",
        # A queue of its own: a stray worker of another run on the same Redis takes none of these tasks.
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"customer_feed_e2e_{meta_db.rsplit('_', 1)[-1]}",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + f"{base}/{meta_db}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW_CONN_CUSTOMER_FEED_DB": json.dumps(
            {
                "conn_type": "postgres",
                "host": base.split("@")[-1].split(":")[0],
                "port": int(base.rsplit(":", 1)[-1]) if base.count(":") > 1 else 5432,
                "login": base.split("//")[1].split("@")[0].split(":")[0],
                "schema": wh_db,
            }
        ),
        # Staging on object storage (an S3 endpoint of its own, over HTTP): no task reads a
        # worker's local disk.
        "CUSTOMER_FEED_STAGING_URL": STAGING_URL,
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{s3_port}",
        "AWS_ACCESS_KEY_ID": "e2e",
        "AWS_SECRET_ACCESS_KEY": "e2e",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CUSTOMER_FEED_CONFIG": str(config_path),
        **DEMO_TOKENS,
    }
    started = time.monotonic()
    log("airflow db migrate (PostgreSQL metadata database)")
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    s3_proc = stack.start("s3", [str(Path(PYTHON).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)], env)
    wait_http(f"{env['AWS_ENDPOINT_URL_S3']}/moto-api/", proc=s3_proc)
    # This process's own view of the bucket (the Airflow processes find it through their env).
    staging, staging_path = fsspec.core.url_to_fs(
        STAGING_URL,
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        skip_instance_cache=True,
    )
    staging.mkdir(staging_path.split("/")[0])

    gp_port, db_port = free_port(), free_port()
    stack.start("giftpro-sandbox", [PYTHON, "-m", "sandbox.giftpro", "--port", str(gp_port), "--orders", "800"], env)
    stack.start(
        "differentbreed-sandbox",
        [
            PYTHON,
            "-m",
            "sandbox.differentbreed",
            "--port",
            str(db_port),
            "--customers",
            "40",
            "--write-customer-list",
            str(customer_list),
        ],
        env,
    )
    gp_url, db_url = f"http://127.0.0.1:{gp_port}", f"http://127.0.0.1:{db_port}"
    wait_http(f"{gp_url}/_sandbox/health")
    wait_http(f"{db_url}/_sandbox/health")
    env["AIRFLOW_CONN_GIFTPRO_DEFAULT"] = giftpro_connection(gp_url)
    env["AIRFLOW_CONN_DIFFERENTBREED_DEFAULT"] = differentbreed_connection(db_url)

    log("starting api-server, scheduler, dag-processor and a celery worker")
    api_proc = stack.start("api-server", [AIRFLOW, "api-server", "--port", str(api_port)], env)
    stack.start("scheduler", [AIRFLOW, "scheduler"], env)
    stack.start("dag-processor", [AIRFLOW, "dag-processor"], env)
    stack.start(
        "celery-worker",
        [
            AIRFLOW,
            "celery",
            "worker",
            "--concurrency",
            os.environ.get("E2E_WORKER_CONCURRENCY", "8"),
            "--queues",
            env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"],
        ],
        env,
    )
    wait_http(f"http://127.0.0.1:{api_port}/api/v2/version", seconds=120, proc=api_proc)
    api = Api(f"http://127.0.0.1:{api_port}")

    def dag_parsed():
        try:
            return api.call("GET", "/dags/customer_feed")
        except urllib.error.HTTPError:
            return None

    wait_for("customer_feed parsed by the dag-processor", dag_parsed, 180)
    api.call("PATCH", "/dags/customer_feed", {"is_paused": False})
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # No logical date, as the UI's trigger may send it: the scheduler's own run for the latest hour
    # (created on unpause) holds that hour's logical date, and a second run for it would be a 409.
    run = api.call(
        "POST", "/dags/customer_feed/dagRuns", {"dag_run_id": f"e2e__{uuid.uuid4().hex[:12]}", "logical_date": None}
    )
    log(f"triggered {run['dag_run_id']} through the REST API")
    state = wait_for(
        "the triggered run to finish",
        lambda: (s := run_state(api, run["dag_run_id"])) in ("success", "failed") and s,
        600,
    )
    if state != "success":
        log(f"triggered run {state}")
        report_failures(run["dag_run_id"])
        return 1
    log(f"triggered run succeeded ({time.monotonic() - started:.0f}s since start)")

    hours = int(os.environ.get("E2E_BACKFILL_HOURS", "72"))
    start = hour - timedelta(days=3)
    end = start + timedelta(hours=hours - 1)
    log(f"airflow backfill create: {hours} hourly runs from {start:%Y-%m-%d %H:%M}")
    subprocess.run(
        [
            AIRFLOW,
            "backfill",
            "create",
            "--dag-id",
            "customer_feed",
            "--from-date",
            start.isoformat(),
            "--to-date",
            end.isoformat(),
            "--reprocess-behavior",
            "completed",
            "--max-active-runs",
            os.environ.get("E2E_BACKFILL_MAX_ACTIVE", "8"),
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )

    states = wait_for("the backfill runs", lambda: backfill_finished(api, hours), 1800, every=5)
    if any(s != "success" for s in states):
        log(f"backfill runs: {states}")
        report_failures()
        return 1
    log(f"{len(states)} backfill runs succeeded ({time.monotonic() - started:.0f}s since start)")

    staged = staging.glob(f"{staging_path}/**/*.parquet")
    if not staged:
        log(f"nothing staged under {STAGING_URL}")
        return 1
    log(f"{len(staged)} Parquet files staged under {STAGING_URL}")

    feed_port = free_port()
    service = stack.feed_service(feed_port, env)
    config = load_config(config_path)
    giftpro_orders = json.loads(urllib.request.urlopen(f"{gp_url}/_sandbox/orders", timeout=60).read())
    db = json.loads(urllib.request.urlopen(f"{db_url}/_sandbox/dump", timeout=60).read())
    truth = expected_customers(config, giftpro_orders, db["customers"], db["orders"], differentbreed.PROFILE)
    problems = []
    for feed in config.feeds:
        served, page = [], 1
        while True:
            body = urllib.parse.urlencode({"token": env[feed.token_env], "page": page, "par_page": 500}).encode()
            answer = json.loads(
                urllib.request.urlopen(
                    urllib.request.Request(f"{service}/convertedin/customers", data=body), timeout=30
                ).read()
            )
            served += answer["data"]
            if page >= answer["last_page"]:
                break
            page += 1
        problems += feed_differences(served, truth, config, feed.name)
        log(f"feed {feed.name}: {len(served)} customers served from PostgreSQL")
    for problem in problems:
        log(f"MISMATCH {problem}")
    log(
        f"{'FAILED' if problems else 'passed'}: the served feeds {'differ from' if problems else 'equal'} the"
        f" sandboxes' ground truth; {time.monotonic() - started:.0f}s in all"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
