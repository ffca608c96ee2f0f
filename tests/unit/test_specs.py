"""The records that cross XCom (include/specs.py), the registry of sources, and the settings the
extract steps hand to the clients: GiftPro's ``changed_field`` and Different Breed's share of the
rate limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from include.config import DEFAULT_CONFIG_PATH, FeedConfig, FeedSources, load_config
from include.pipeline import extract_differentbreed, extract_giftpro, load_extracts
from include.registry import DIFFERENTBREED, GIFTPRO, SOURCES
from include.specs import ExtractResult, ExtractSpec, ExtractStats, LoadResult, PublishResult, Window, to_json

START = datetime(2026, 10, 25, 0, tzinfo=UTC)
WINDOW = Window(start=START, end=START + timedelta(hours=1), origin="data_interval")


def spec(**fields) -> ExtractSpec:
    return ExtractSpec(
        **{
            "source": "giftpro",
            "domain": "3521",
            "currency": "GBP",
            "lower": START - timedelta(minutes=10),
            "upper": WINDOW.end,
            "window": WINDOW,
            **fields,
        }
    )


# --------------------------------------------------------------------------- JSON at the task boundary


def test_records_travel_as_plain_json_and_come_back_equal():
    original = spec(part="batch-0001", part_index=1, parts=3, cust_ids=("c1", "c2"), new_cust_ids=("c2",))
    data = json.loads(json.dumps(original.to_json()))  # what XCom stores
    assert data["lower"] == "2026-10-24T23:50:00Z" and data["window"]["end"] == "2026-10-25T01:00:00Z"
    assert data["cust_ids"] == ["c1", "c2"]
    assert ExtractSpec.from_json(data) == original
    result = ExtractResult(spec=original, orders_path="file:///o", quarantine_path="file:///q", stats=ExtractStats())
    assert ExtractResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    assert to_json([original, original]) == [data, data]


def test_moments_are_utc_inside_whatever_zone_they_arrive_in():
    plus2 = timezone(timedelta(hours=2))
    got = ExtractSpec.from_json({**spec().to_json(), "upper": "2026-10-25T03:00:00+02:00"})
    assert got.upper == WINDOW.end and got.upper.tzinfo is UTC
    assert Window(start=START.astimezone(plus2), end=WINDOW.end, origin="params").start.tzinfo is UTC


@pytest.mark.parametrize(
    "change",
    [
        {"upper": "2026-10-25T01:00:00"},  # a naive moment: which zone? refused
        {"source": "shopify"},  # not in the registry
        {"unexpected": 1},  # a misspelt field is an error, not silently dropped
    ],
)
def test_malformed_specs_are_refused(change):
    with pytest.raises(ValidationError):
        ExtractSpec.from_json({**spec().to_json(), **change})


def test_results_are_frozen():
    with pytest.raises(ValidationError):
        spec().domain = "9999"


def test_publish_result_reads_the_publish_summary():
    summary = {
        "feeds": {"ampress": {"customers": 2, "orders": 3, "total_spent": 12.5, "currency": "GBP"}},
        "recomputed_emails": 2,
        "full": False,
        "seconds": 0.1,
        "timings": {},
    }
    assert PublishResult.model_validate(summary).to_json() == summary
    full = {**summary, "full": True, "timings": {"read": 1.5, "aggregate": 2.0, "customers_written": 2.0}}
    assert PublishResult.model_validate(full).to_json() == full


# --------------------------------------------------------------------------- the registry


def test_every_source_has_its_configuration_fields():
    for source in SOURCES.values():
        assert source.domains_field in FeedSources.model_fields, source.name
        assert source.settings_field in FeedConfig.model_fields, source.name
        assert callable(source.extract_function())
    assert set(FeedSources.model_fields) == {s.domains_field for s in SOURCES.values()}


def test_configuration_reads_domains_through_the_registry():
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.domains("giftpro") == ["3521", "3522", "3523", "4101", "4102"]
    assert config.domains("differentbreed") == ["ampress-events"]
    assert [f.name for f in config.feeds_of("giftpro", "4101")] == ["seaview"]
    assert config.settings("giftpro") is config.giftpro
    assert ("differentbreed", "ampress-events", "ampress") in {(s, d, f.name) for s, d, f in config.coverage()}
    with pytest.raises(ValueError, match="unknown source"):
        config.domains("shopify")


# --------------------------------------------------------------------------- load: all parts or none


def test_load_refuses_a_domain_with_missing_parts(sqlite_warehouse):
    parts = [
        ExtractResult(
            spec=spec(source="differentbreed", domain="ev", part=f"batch-{i:04d}", part_index=i, parts=3),
            orders_path="file:///nowhere",
            quarantine_path="file:///nowhere",
        )
        for i in (0, 2)
    ]
    with pytest.raises(ValueError, match=r"differentbreed ev: parts \[0, 2\] of \[3\]"):
        load_extracts(sqlite_warehouse, parts, "run", rebuild=False)


# --------------------------------------------------------------------------- settings reach the clients


@pytest.fixture
def unreachable_connections(monkeypatch):
    """Connections to a port nothing listens on: the tests below replace the transport."""
    for name in ("GIFTPRO_DEFAULT", "DIFFERENTBREED_DEFAULT"):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{name}", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9", "password": "k"})
        )


def test_giftpro_changed_field_from_the_configuration_names_the_filter(monkeypatch, tmp_path, unreachable_connections):
    from include.sources.http import SourceHttp

    sent = []

    def fake_get_json(self, path, params=None, headers=None, accept=()):
        sent.append(dict(params))
        return 200, []

    monkeypatch.setattr(SourceHttp, "get_json", fake_get_json)
    data = load_config(DEFAULT_CONFIG_PATH).model_dump()
    data["giftpro"]["changed_field"] = "orders.lastModified"
    config = FeedConfig.model_validate(data)
    result = extract_giftpro(spec(), config, f"file://{tmp_path}")
    assert result.stats.orders == 0
    (params,) = sent
    # [23:50, 01:00) UTC spans the October change (BST, then GMT): widened by both offsets.
    assert params["orders.lastModified[gte]"] == "2026-10-24 23:50:00"
    assert params["orders.lastModified[lt]"] == "2026-10-25 02:00:00"
    assert not any(key.startswith("changed") for key in params)


def test_differentbreed_batches_take_their_share_of_the_rate_limit(monkeypatch, tmp_path, unreachable_connections):
    from include.sources import differentbreed

    shares = []

    class Recording(differentbreed.DifferentBreedClient):
        def __init__(self, *args, share_of_rate_limit: float = 1.0, **kwargs):
            shares.append(share_of_rate_limit)
            super().__init__(*args, share_of_rate_limit=share_of_rate_limit, **kwargs)

    monkeypatch.setattr(differentbreed, "DifferentBreedClient", Recording)
    config = load_config(DEFAULT_CONFIG_PATH)
    db_spec = spec(source="differentbreed", domain="ampress-events", part="batch-0000")
    result = extract_differentbreed(db_spec, config, f"file://{tmp_path}")  # no customers: no request
    assert result.customers == 0
    assert DIFFERENTBREED.parallel_tasks == 4 and shares == [1 / 4]
    assert GIFTPRO.parallel_tasks is None


def test_load_result_counts_are_typed():
    with pytest.raises(ValidationError):
        LoadResult.from_json({"orders_in": "many"})


def test_airflow_s_pendulum_moments_become_plain_utc_datetimes():
    import pendulum

    from include.pipeline import resolve_window

    start = pendulum.instance(START, tz=pendulum.timezone("Europe/London"))
    window = resolve_window({}, start, start + timedelta(hours=1), None)
    assert type(window.start) is datetime and window.start.tzinfo is UTC
    assert (window.start - timedelta(minutes=10)).tzinfo is UTC
    assert window.start == START
