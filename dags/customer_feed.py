"""
### customer_feed — GiftPro and Different Breed orders into the converted.in customer feeds

Every hour, for each GiftPro property (`domainID`) named in the feed configuration, fetch the
orders that **changed** during the data interval (UTC, converted to GiftPro's Europe/London time);
for each Different Breed profile, poll the merchant's customers in batches for their recent
orders and profiles. Stage everything as Parquet, merge it into the order state, recompute the
customers it touches (one per feed and email, across both sources) and publish the customer
table atomically. converted.in reads it from the feed service.

* **Scheduled runs** cover their hourly data interval; each property's extract also reaches back
  to its own watermark, so nothing is missed after an outage. A property never loaded before
  loads its full history.
* **Re-run a window**: clear the run in the UI (or `airflow tasks clear customer_feed -s … -e …`);
  re-running replaces that interval's staged files and changes nothing it already loaded.
* **Backfill a date range**: `airflow backfill create --dag-id customer_feed --from-date 2026-11-01
  --to-date 2026-11-03 --reprocess-behavior completed`, or Trigger → Backfill in the UI.
* **One explicit window**: Trigger with params `start` / `end` (ISO 8601, UTC).
* **Rebuild from scratch**: Trigger with `rebuild: true` — every property's full history is
  re-extracted, the order state replaced and every customer recomputed; customer ids are kept.

A configuration error (or an empty explicit window) fails the task at once, without retries:
the message names each wrong field (`feeds[1].store.time_zone: unknown time zone …`). Check a
configuration before deploying it with `python -m include.config path/to/feeds.yaml`.

Configuration: feeds in `CUSTOMER_FEED_CONFIG`; connections `giftpro_default` (host = API base
URL, password = API key), `differentbreed_default` (host = API base URL, password = admin key),
pool `differentbreed_api`, and `customer_feed_db` (sqlite or postgres; an embedded SQLite file when
absent); staging root `CUSTOMER_FEED_STAGING_URL`.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger("customer_feed")
CUSTOMERS_ASSET = Asset("customer_feed://warehouse/customers")
DIFFERENTBREED_POOL = "differentbreed_api"
#: Slots of the pool (created by `make up`, the demo, docker-compose's init and the e2e run).
DIFFERENTBREED_POOL_SLOTS = 4


@contextlib.contextmanager
def _fail_without_retry():
    """A ConfigError (bad configuration, an empty window) cannot be fixed by retrying: the task
    fails at once instead of spending its retries and their backoff."""
    from include.config import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc


def _context_window() -> dict:
    from include.pipeline import resolve_window

    ctx = get_current_context()
    with _fail_without_retry():
        return resolve_window(
            ctx["params"],
            ctx.get("data_interval_start"),
            ctx.get("data_interval_end"),
            ctx["dag_run"].run_after,
        )


def _run_id() -> str:
    return get_current_context()["run_id"]


def _warehouse():
    from include.warehouse import Warehouse, url_from_airflow

    wh = Warehouse(url_from_airflow("customer_feed_db"))
    wh.create_schema()
    return wh


def _config():
    from include.config import load_config

    with _fail_without_retry():
        return load_config()


@dag(
    dag_id="customer_feed",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": True},
    params={
        "start": Param(
            None, type=["null", "string"], format="date-time", description="Explicit window start (UTC, ISO 8601)"
        ),
        "end": Param(
            None, type=["null", "string"], format="date-time", description="Explicit window end (UTC, ISO 8601)"
        ),
        "rebuild": Param(False, type="boolean", description="Re-extract full history and recompute every customer"),
    },
    tags=["customer-feed", "giftpro", "differentbreed", "converted.in"],
    doc_md=__doc__,
)
def customer_feed():
    @task
    def plan_giftpro_extracts() -> list[dict]:
        """Reads the feed configuration and the watermarks: one spec per GiftPro domainID."""
        from include.pipeline import plan_giftpro

        return plan_giftpro(_config(), _warehouse(), _context_window())

    @task
    def plan_differentbreed_extracts() -> list[dict]:
        """One spec per Different Breed profile and batch of customers."""
        from include.pipeline import plan_differentbreed

        return plan_differentbreed(_config(), _warehouse(), _context_window())

    @task(map_index_template="domain {{ spec['domain'] }}")
    def extract_giftpro_orders(spec: dict) -> dict:
        from include.pipeline import extract_giftpro
        from include.staging import staging_root

        return extract_giftpro(spec, _config(), staging_root())

    # The pool bounds how many batches poll Different Breed at once; each batch's client takes
    # its share of the API's 250 requests per 10 seconds.
    @task(map_index_template="{{ spec['domain'] }} {{ spec['part'] }}", pool=DIFFERENTBREED_POOL)
    def extract_differentbreed_orders(spec: dict) -> dict:
        from include.pipeline import extract_differentbreed
        from include.staging import staging_root

        return extract_differentbreed(spec, _config(), staging_root(), parallel_tasks=DIFFERENTBREED_POOL_SLOTS)

    # A source with nothing configured maps to zero tasks, which Airflow marks skipped: that must
    # not skip the load and publish of the other source.
    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def load_orders(giftpro: list[dict], differentbreed: list[dict]) -> dict:
        from include.pipeline import load_extracts
        from include.staging import staging_root

        return load_extracts(
            _warehouse(), [*giftpro, *differentbreed], _run_id(), _context_window()["rebuild"], staging_root()
        )

    @task(outlets=[CUSTOMERS_ASSET], trigger_rule=TriggerRule.NONE_FAILED)
    def publish_customers(giftpro: list[dict], differentbreed: list[dict], loaded: dict) -> dict:
        from include.pipeline import publish, summarize

        published = publish(_warehouse(), _config(), _run_id(), _context_window()["rebuild"])
        for line in summarize([*giftpro, *differentbreed], loaded, published):
            log.info("%s", line)
        return published

    giftpro = extract_giftpro_orders.expand(spec=plan_giftpro_extracts())
    differentbreed = extract_differentbreed_orders.expand(spec=plan_differentbreed_extracts())
    loaded = load_orders(giftpro, differentbreed)
    publish_customers(giftpro, differentbreed, loaded)


customer_feed()
