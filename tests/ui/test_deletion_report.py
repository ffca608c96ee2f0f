"""A customer deleted at the source is reported (and purged) by the run that finds it gone, not
again by every hourly run after it: the merchant's list still names it and it answers 404."""

from __future__ import annotations

import json

import pytest

from include.config import load_config
from include.pipeline import extract_differentbreed, summarize
from include.specs import ExtractSpec, LoadResult, PublishResult, Window
from sandbox import differentbreed

WINDOW = Window.from_json(
    {"start": "2026-12-01T00:00:00+00:00", "end": "2026-12-01T01:00:00+00:00", "origin": "params"}
)


@pytest.fixture
def sandbox(monkeypatch):
    store = differentbreed.DifferentBreedStore()
    store.create_customer("ann@example.com", "Ann", "Lee", "2026-01-01T00:00:00Z", cust_id="c1")
    store.create_customer("bob@example.com", "Bob", "Ray", "2026-01-01T00:00:00Z", cust_id="c2")
    with differentbreed.serve_in_thread(store) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_DIFFERENTBREED_DEFAULT",
            json.dumps({"conn_type": "http", "host": f"{server.url}/client/api/v1", "password": "db_sandbox_key"}),
        )
        yield server


def spec(new_cust_ids, lower="2026-11-30T23:50:00+00:00"):
    return ExtractSpec.from_json(
        {
            "source": "differentbreed",
            "domain": "ampress-events",
            "currency": "GBP",
            "lower": lower,
            "upper": WINDOW.end.isoformat(),
            "window": WINDOW.to_json(),
            "part": "batch-0000",
            "cust_ids": ["c1", "c2"],
            "new_cust_ids": new_cust_ids,
        }
    )


def run_line(extract) -> str:
    loaded = LoadResult(
        orders_in=0,
        orders_changed=0,
        profiles_changed=0,
        orders_deleted=0,
        quarantined=0,
        customers_deleted=0,
        staged_rows_purged=0,
        seconds=0,
    )
    published = PublishResult(feeds={}, recomputed_emails=0, full=False, seconds=0)
    return next(line for line in summarize([extract], loaded, published) if line.startswith("source differentbreed"))


def test_a_deletion_is_reported_once(sandbox, tmp_path):
    config, staging = load_config(), f"file://{tmp_path}"
    sandbox.store.delete_customer("c2")
    # The run that finds it gone: the warehouse holds both customers.
    found = extract_differentbreed(spec(new_cust_ids=[]), config, staging)
    assert found.deleted == ("c2",) and found.stats.absent == 0
    assert run_line(found).endswith("1 deleted at the source")
    # The next hour: c2 was removed from the warehouse, so it is no longer a known customer.
    after = extract_differentbreed(spec(new_cust_ids=["c2"]), config, staging)
    assert after.deleted == () and after.stats.absent == 1
    assert run_line(after).endswith("0 deleted at the source")
    # A full-history poll (first run, or a rebuild) still removes whatever answers 404.
    full = extract_differentbreed(spec(new_cust_ids=["c1", "c2"], lower=None), config, staging)
    assert full.deleted == ("c2",)
