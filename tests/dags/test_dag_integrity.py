"""The DAG folder loads with no secrets, no network and no services, quickly.

After the Astro project template's integrity test: a DAG that needs a live service to import
is a bug.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access while parsing DAGs: {args!r}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        mp.setenv("CUSTOMER_FEED_CONFIG", "/nonexistent/feeds.yaml")  # config is read at run time only
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(DAGS))
        bag.parse_seconds = time.perf_counter() - started
    return bag


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_customer_feed_is_there(dagbag):
    assert "customer_feed" in dagbag.dag_ids


def test_parse_is_fast(dagbag):
    # A generous ceiling: heavy imports or I/O at module level show up as seconds, not tenths.
    assert dagbag.parse_seconds < 10, f"parsing took {dagbag.parse_seconds:.1f}s"


@pytest.mark.parametrize("dag_id", ["customer_feed"])
def test_dag_conventions(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags, "every DAG is tagged"
    assert dag.doc_md and "backfill" in dag.doc_md.lower(), "the docstring tells the operator how to backfill"
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.retries >= 1, f"{task.task_id} has no retries"


def test_schedule_has_real_data_intervals(dagbag):
    from airflow.sdk import CronDataIntervalTimetable

    dag = dagbag.dags["customer_feed"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable), "hourly runs need non-empty data intervals"


def test_warehouse_schema_is_created_once_before_the_planners(dagbag):
    dag = dagbag.dags["customer_feed"]
    prepare = dag.get_task("prepare_warehouse")
    assert not prepare.upstream_task_ids
    assert prepare.downstream_task_ids == {"plan_giftpro_extracts", "plan_differentbreed_extracts", "check_freshness"}


def test_differentbreed_parallelism_is_the_registry_s_without_a_pool(dagbag):
    from include.registry import DIFFERENTBREED

    task = dagbag.dags["customer_feed"].get_task("extract_differentbreed_orders")
    assert task.max_active_tis_per_dag == DIFFERENTBREED.parallel_tasks == 4
    assert task.pool == "default_pool", "no pool that every deployment must create"
