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
  loads its full history, cut by order creation date into slices of about
  `giftpro.history_slice_pages` pages: each slice is a mapped `extract_giftpro_orders` task of
  its own, retried alone; the property's watermark moves once every slice is loaded.
* **Re-run a window**: clear the run in the UI (or `airflow tasks clear customer_feed -s … -e …`);
  re-running replaces that interval's staged files and changes nothing it already loaded.
* **Backfill a date range**: `airflow backfill create --dag-id customer_feed --from-date 2026-11-01
  --to-date 2026-11-03 --reprocess-behavior completed`, or Trigger → Backfill in the UI.
* **One explicit window**: Trigger with params `start` / `end` (ISO 8601, UTC).
* **Rebuild from scratch**: Trigger with `rebuild: true` — every property's full history is
  re-extracted, the order state replaced and every customer recomputed; customer ids are kept.
* **Mass-change guard**: a run that would remove more than `guard.max_drop_share` of a feed's
  customers or orders (or a source's customers) fails at once, without retries, with the counts
  and changes nothing; when the change is real, trigger again with `confirm_mass_change: true`.

A configuration error (or an empty explicit window) fails the task at once, without retries:
the message names each wrong field (`feeds[1].store.time_zone: unknown time zone …`). Check a
configuration before deploying it with `python -m include.config path/to/feeds.yaml`.

Configuration: feeds in `CUSTOMER_FEED_CONFIG`; connections `giftpro_default` (host = API base
URL, password = API key), `differentbreed_default` (host = API base URL, password = admin key),
and `customer_feed_db` (sqlite or postgres; an embedded SQLite file when absent); staging root
`CUSTOMER_FEED_STAGING_URL`. `prepare_warehouse` creates the warehouse tables once, before
anything reads them. At most `parallel_tasks` Different Breed batches poll at once, each taking
its share of the API's rate limit (both from `include/registry.py`).
`customer_feed_alerts` (http webhook or smtp; absent: no alerts) says where alerts go.

Monitoring: the **Customer feeds** page in the UI's navigation; each run's note and the customer
asset event's `extra` carry the window loaded and the counts per feed and source.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from include.alerts import FeedAlertNotifier
from include.registry import DIFFERENTBREED

log = logging.getLogger("customer_feed")
CUSTOMERS_ASSET = Asset("customer_feed://warehouse/customers")
#: The publish task's XCom holding the run's note (read by plugins/customer_feeds.py).
RUN_NOTE_XCOM = "run_note"


@contextlib.contextmanager
def _fail_without_retry():
    """A ConfigError (bad configuration, an empty window) or a stop by the mass-change guard
    cannot be fixed by retrying: the task fails at once, with the message, instead of spending
    its retries and their backoff."""
    from include.config import ConfigError
    from include.guard import MassChangeError

    try:
        yield
    except (ConfigError, MassChangeError) as exc:
        raise AirflowFailException(str(exc)) from exc


def _context_window():
    from include.pipeline import resolve_window

    ctx = get_current_context()
    with _fail_without_retry():
        window = resolve_window(
            ctx["params"],
            ctx.get("data_interval_start"),
            ctx.get("data_interval_end"),
            ctx["dag_run"].run_after,
        )
    # The run header shows the trigger's interval; this line (and the run's note) the one loaded.
    start, end = window.start.isoformat(), window.end.isoformat()
    log.info("window [%s, %s) from the %s", start, end, window.origin.replace("_", " "))
    return window


def _all(results) -> list[dict]:
    # One slice fetches every mapped result at once; iterating the lazy sequence instead probes
    # one index past the end, which the task log reports as "[error] XCom not found".
    return list(results[:])


def _run_id() -> str:
    return get_current_context()["run_id"]


def _warehouse():
    """The warehouse handle; its tables exist once `prepare_warehouse` has run."""
    from include.warehouse import Warehouse
    from include.warehouse.airflow_url import url_from_airflow

    return Warehouse(url_from_airflow("customer_feed_db"))


def _config():
    from include.config import load_config

    with _fail_without_retry():
        return load_config()


# XCom holds JSON-able dicts; the steps take and return the typed records of include/specs.py.
# These two helpers and the `to_json`/`from_json` calls below are the only conversions.
def _suppression():
    """Erased people, whose records are dropped before they are staged (a read only: the plan
    tasks created the schema, and an extract must not queue behind another run's writer lock)."""
    from include.warehouse import Warehouse
    from include.warehouse.airflow_url import url_from_airflow
    from include.warehouse.suppression import load_suppression

    wh = Warehouse(url_from_airflow("customer_feed_db"))
    try:
        return load_suppression(wh)
    finally:
        wh.close()


def _confirm_mass_change() -> bool:
    return bool(get_current_context()["params"].get("confirm_mass_change"))


def _extract(spec: dict) -> dict:
    from include.pipeline import extract
    from include.specs import ExtractSpec
    from include.staging import staging_root

    return extract(ExtractSpec.from_json(spec), _config(), staging_root(), suppression=_suppression()).to_json()


def _results(*extracts: list[dict]) -> list:
    from include.specs import ExtractResult

    return [ExtractResult.from_json(e) for group in extracts for e in _all(group)]


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
        "confirm_mass_change": Param(
            False, type="boolean", description="Let this run remove more of a feed than the mass-change guard allows"
        ),
    },
    tags=["customer-feed", "giftpro", "differentbreed", "converted.in"],
    # Alerts go where the connection customer_feed_alerts says (webhook or SMTP; none: no alert).
    on_failure_callback=FeedAlertNotifier(),
    doc_md=__doc__,
)
def customer_feed():
    @task
    def prepare_warehouse() -> None:
        """Creates the warehouse tables and indexes that do not exist yet: the run's only DDL."""
        _warehouse().create_schema()

    @task
    def plan_giftpro_extracts() -> list[dict]:
        """Reads the feed configuration and the watermarks: one spec per GiftPro domainID, or per
        slice of its history when it loads the whole of it (the API says how long it is)."""
        from include.pipeline import plan_giftpro
        from include.specs import to_json

        return to_json(plan_giftpro(_config(), _warehouse(), _context_window()))

    @task
    def plan_differentbreed_extracts() -> list[dict]:
        """One spec per Different Breed profile and batch of customers."""
        from include.pipeline import plan_differentbreed
        from include.specs import to_json

        return to_json(plan_differentbreed(_config(), _warehouse(), _context_window()))

    @task(map_index_template="domain {{ spec['domain'] }} {{ spec['part'] }}")
    def extract_giftpro_orders(spec: dict) -> dict:
        return _extract(spec)

    # At most `parallel_tasks` batches poll Different Breed at once; each batch's client takes
    # that share of the API's 250 requests per 10 seconds (one number: include/registry.py).
    @task(
        map_index_template="{{ spec['domain'] }} {{ spec['part'] }}",
        max_active_tis_per_dag=DIFFERENTBREED.parallel_tasks,
    )
    def extract_differentbreed_orders(spec: dict) -> dict:
        return _extract(spec)

    # A source with nothing configured maps to zero tasks, which Airflow marks skipped: that must
    # not skip the load and publish of the other source.
    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def load_orders(giftpro: list[dict], differentbreed: list[dict]) -> dict:
        from include.pipeline import load_extracts
        from include.staging import staging_root

        extracts = _results(giftpro, differentbreed)
        rebuild = _context_window().rebuild
        with _fail_without_retry():
            loaded = load_extracts(
                _warehouse(), extracts, _run_id(), rebuild, staging_root(), _config(), _confirm_mass_change()
            )
        return loaded.to_json()

    @task(outlets=[CUSTOMERS_ASSET], trigger_rule=TriggerRule.NONE_FAILED)
    def publish_customers(giftpro: list[dict], differentbreed: list[dict], loaded: dict) -> dict:
        from include.monitoring import record_publish, run_note
        from include.pipeline import publish, summarize
        from include.specs import LoadResult

        extracts, window, wh, config = _results(giftpro, differentbreed), _context_window(), _warehouse(), _config()
        with _fail_without_retry():
            published = publish(wh, config, _run_id(), window.rebuild, _confirm_mass_change())
        loaded = LoadResult.from_json(loaded)
        for line in summarize(extracts, loaded, published):
            log.info("%s", line)
        # The Assets view and the run's note say what happened without opening a log (the note
        # is set by the customer_feeds plugin's listener from this XCom: a task cannot set it).
        summary = record_publish(
            wh,
            config,
            _run_id(),
            window.to_json(),
            [e.flat_json() for e in extracts],
            loaded.to_json(),
            published.to_json(),
        )
        ctx = get_current_context()
        ctx["outlet_events"][CUSTOMERS_ASSET].extra = summary
        ctx["ti"].xcom_push(key=RUN_NOTE_XCOM, value=run_note(summary))
        return published.to_json()

    # Freshness: a feed whose last publish is older than CUSTOMER_FEED_FRESHNESS_INTERVALS hours
    # alerts. (A DAG-level DeadlineAlert would do it per run, but Airflow 3.3.2's `dags test`
    # fails on a DAG that has one.) It never fails the run.
    @task
    def check_freshness() -> list[str]:
        from include.alerts import alert_stale_feeds

        return alert_stale_feeds(_warehouse(), _run_id())

    giftpro_plan = plan_giftpro_extracts()
    differentbreed_plan = plan_differentbreed_extracts()
    prepare_warehouse() >> [giftpro_plan, differentbreed_plan, check_freshness()]
    giftpro = extract_giftpro_orders.expand(spec=giftpro_plan)
    differentbreed = extract_differentbreed_orders.expand(spec=differentbreed_plan)
    loaded = load_orders(giftpro, differentbreed)
    publish_customers(giftpro, differentbreed, loaded)


customer_feed()
