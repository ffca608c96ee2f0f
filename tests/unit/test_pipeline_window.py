"""Which UTC window a run covers (`resolve_window`) and what each domain's extract fetches
(`plan_giftpro`, `plan_differentbreed`), against a real SQLite warehouse and the repository's feed
configuration; and `load_extracts` from staged files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from include.config import DEFAULT_CONFIG_PATH, load_config
from include.pipeline import plan_differentbreed, plan_giftpro, resolve_window
from include.schema import ORDER_SCHEMA
from include.specs import ExtractResult, ExtractSpec, Window
from include.warehouse.order_state import LoadedWindow, load_orders, watermarks

UTC = UTC
RUN_AFTER = datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
DI_START = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
DI_END = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --------------------------------------------------------------------------- resolve_window


def test_params_win_over_data_interval():
    got = resolve_window(
        {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00+00:00"}, DI_START, DI_END, RUN_AFTER
    )
    assert got == Window(start=at("2026-01-01T00:00:00+00:00"), end=at("2026-01-02T00:00:00+00:00"), origin="params")


def test_params_naive_are_utc_and_offsets_are_converted():
    got = resolve_window({"start": "2026-07-01 10:00:00", "end": "2026-07-01T12:00:00+01:00"}, None, None, RUN_AFTER)
    assert got.start == at("2026-07-01T10:00:00+00:00") and got.start.tzinfo is UTC
    assert got.end == at("2026-07-01T11:00:00+00:00") and got.end.tzinfo is UTC


def test_params_accept_datetimes():
    start = datetime(2026, 5, 1, tzinfo=UTC)
    got = resolve_window({"start": start, "end": start + timedelta(days=3)}, DI_START, DI_END, RUN_AFTER)
    assert (got.start, got.end) == (start, start + timedelta(days=3))


def test_param_start_only_runs_up_to_run_after():
    got = resolve_window({"start": "2026-10-20T00:00:00Z"}, DI_START, DI_END, RUN_AFTER)
    assert (got.start, got.end, got.origin) == (at("2026-10-20T00:00:00+00:00"), RUN_AFTER, "params")


def test_param_end_only_covers_the_hour_before_it():
    got = resolve_window({"end": "2026-10-20T05:00:00Z"}, DI_START, DI_END, RUN_AFTER)
    assert (got.start, got.end, got.origin) == (at("2026-10-20T04:00:00+00:00"), at("2026-10-20T05:00:00Z"), "params")


def test_empty_string_params_are_absent():
    got = resolve_window({"start": "", "end": None, "rebuild": False}, DI_START, DI_END, RUN_AFTER)
    assert (got.start, got.end, got.origin) == (DI_START, DI_END, "data_interval")


def test_data_interval_when_no_params():
    got = resolve_window({}, DI_START, DI_END, RUN_AFTER)
    assert got == Window(start=DI_START, end=DI_END, origin="data_interval", rebuild=False)


def test_data_interval_in_another_zone_is_converted_to_utc():
    plus2 = timezone(timedelta(hours=2))
    got = resolve_window({}, DI_START.astimezone(plus2), DI_END.astimezone(plus2), RUN_AFTER)
    assert (got.start, got.end) == (DI_START, DI_END)
    assert got.start.utcoffset() == timedelta(0)


def test_zero_length_interval_falls_back_to_hour_before_run_after():
    # Airflow 3 cron schedules without CronDataIntervalTimetable: start == end == logical date.
    got = resolve_window({}, RUN_AFTER, RUN_AFTER, RUN_AFTER)
    assert got == Window(start=RUN_AFTER - timedelta(hours=1), end=RUN_AFTER, origin="run_after")


@pytest.mark.parametrize(("start", "end"), [(None, None), (DI_START, None), (None, DI_END)])
def test_missing_interval_falls_back_to_hour_before_run_after(start, end):
    got = resolve_window({}, start, end, RUN_AFTER)
    assert (got.start, got.end, got.origin) == (RUN_AFTER - timedelta(hours=1), RUN_AFTER, "run_after")


def test_nothing_at_all_means_the_last_hour_before_now():
    before = datetime.now(UTC)
    got = resolve_window({}, None, None, None)
    after = datetime.now(UTC)
    assert before <= got.end <= after
    assert got.start == got.end - timedelta(hours=1)
    assert got.origin == "run_after"


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-10-25T03:00:00Z", "end": "2026-10-25T03:00:00Z"},
        {"start": "2026-10-25T04:00:00Z", "end": "2026-10-25T03:00:00Z"},
        {"start": "2026-10-25T05:00:00Z"},  # after run_after, which then is the end
    ],
)
def test_end_not_after_start_is_a_clear_error(params):
    with pytest.raises(ValueError, match=r"window is empty.*not before end"):
        resolve_window(params, DI_START, DI_END, RUN_AFTER)


def test_rebuild_flag():
    assert resolve_window({"rebuild": True}, DI_START, DI_END, RUN_AFTER).rebuild is True
    assert resolve_window({"rebuild": False}, DI_START, DI_END, RUN_AFTER).rebuild is False
    assert resolve_window({}, DI_START, DI_END, RUN_AFTER).rebuild is False


def test_malformed_param_is_an_error():
    with pytest.raises(ValueError):
        resolve_window({"start": "yesterday"}, DI_START, DI_END, RUN_AFTER)


# --------------------------------------------------------------------------- plan_giftpro


@pytest.fixture
def config():
    return load_config(DEFAULT_CONFIG_PATH)


class EmptyHistory:
    """The planner's history probe for a source with no orders yet: one slice per domain (the
    slicing itself is tested in test_history_slices.py)."""

    def pages(self, domain: str) -> int:
        return 0

    def created_at(self, domain: str, page: int) -> datetime | None:
        return None


EMPTY_HISTORY = EmptyHistory()


def set_watermark(wh, domain: str, moment: datetime) -> None:
    load_orders(
        wh, ORDER_SCHEMA.empty_table(), [LoadedWindow("giftpro", domain, None, int(moment.timestamp()))], "seed"
    )


def by_domain(specs):
    return {s.domain: s for s in specs}


def test_plan_covers_every_configured_giftpro_domain_once(sqlite_warehouse, config):
    window = resolve_window({}, DI_START, DI_END, RUN_AFTER)
    specs = plan_giftpro(config, sqlite_warehouse, window, history=EMPTY_HISTORY)
    assert [s.domain for s in specs] == config.domains("giftpro") == ["3521", "3522", "3523", "4101", "4102"]
    assert {s.source for s in specs} == {"giftpro"}
    assert {d: s.currency for d, s in by_domain(specs).items()} == {
        "3521": "GBP",
        "3522": "GBP",
        "3523": "GBP",
        "4101": "EUR",
        "4102": "EUR",
    }
    for spec in specs:
        assert spec.upper == window.end
        assert spec.window == window
        assert (spec.part, spec.part_index, spec.parts) == ("", 0, 1)


def test_never_loaded_domains_fetch_their_whole_history(sqlite_warehouse, config):
    specs = plan_giftpro(
        config, sqlite_warehouse, resolve_window({}, DI_START, DI_END, RUN_AFTER), history=EMPTY_HISTORY
    )
    assert all(s.lower is None for s in specs)


def test_lower_is_earlier_of_start_and_watermark_less_overlap(sqlite_warehouse, config):
    overlap = timedelta(minutes=config.giftpro.overlap_minutes)
    assert overlap == timedelta(minutes=10)
    set_watermark(sqlite_warehouse, "3521", DI_START)  # up to date: contiguous
    set_watermark(sqlite_warehouse, "3522", DI_START - timedelta(days=2))  # after an outage
    set_watermark(sqlite_warehouse, "4101", DI_END + timedelta(days=5))  # this run is a backfill
    window = resolve_window({}, DI_START, DI_END, RUN_AFTER)
    specs = by_domain(plan_giftpro(config, sqlite_warehouse, window, history=EMPTY_HISTORY))
    assert specs["3521"].lower == DI_START - overlap
    assert specs["3522"].lower == DI_START - timedelta(days=2) - overlap
    assert specs["4101"].lower == DI_START - overlap
    assert specs["3523"].lower is None  # a new domain: its own full-history load
    assert specs["4102"].lower is None
    assert {s.upper for s in specs.values()} == {DI_END}


def test_rebuild_fetches_whole_history_whatever_the_watermarks(sqlite_warehouse, config):
    for domain in config.domains("giftpro"):
        set_watermark(sqlite_warehouse, domain, DI_START)
    specs = plan_giftpro(
        config, sqlite_warehouse, resolve_window({"rebuild": True}, DI_START, DI_END, RUN_AFTER), history=EMPTY_HISTORY
    )
    assert [s.lower for s in specs] == [None] * 5


def test_planned_windows_advance_the_watermark_without_gaps(sqlite_warehouse, config):
    """plan -> load of the planned windows -> the next hourly plan starts before the watermark."""
    end = DI_END
    for hour in range(4):
        window = resolve_window({}, end - timedelta(hours=1), end, None)
        specs = plan_giftpro(config, sqlite_warehouse, window, history=EMPTY_HISTORY)
        windows = [
            LoadedWindow(
                s.source,
                s.domain,
                None if s.lower is None else int(s.lower.timestamp()),
                int(s.upper.timestamp()),
            )
            for s in specs
        ]
        load_orders(sqlite_warehouse, ORDER_SCHEMA.empty_table(), windows, f"run-{hour}")
        assert watermarks(sqlite_warehouse, "giftpro") == {d: int(end.timestamp()) for d in config.domains("giftpro")}
        end += timedelta(hours=1)
    # A skipped hour (the scheduler was down) is covered by the next run reaching back.
    window = resolve_window({}, end, end + timedelta(hours=1), None)
    for spec in plan_giftpro(config, sqlite_warehouse, window, history=EMPTY_HISTORY):
        assert spec.lower <= end - timedelta(hours=1)


# --------------------------------------------------------------------------- plan_differentbreed


@pytest.fixture
def db_config(config, tmp_path):
    """The repository's configuration with the Different Breed customer list in a temporary CSV."""
    csv = tmp_path / "customers.csv"
    csv.write_text("profile,cust_id\n" + "".join(f"ampress-events,{i}\n" for i in (3, 1, 2, 2, 5, 4)) + "other,99\n")
    data = config.model_dump()
    data["differentbreed"]["customers_file"] = str(csv)
    data["differentbreed"]["batch_size"] = 2
    data["feeds"][0]["sources"]["differentbreed_profiles"] = ["ampress-events"]
    return type(config).model_validate(data)


def _set_profile_state(wh, moment: datetime, refs=()):
    from include.schema import PROFILE_SCHEMA

    profiles = pa.Table.from_pylist(
        [
            {
                "source": "differentbreed",
                "domain": "ampress-events",
                "customer_ref": r,
                "email_norm": f"{r}@example.com",
                "first_name": None,
                "last_name": None,
                "registered_at": None,
                "changed_at": moment,
                "version_hash": r,
            }
            for r in refs
        ],
        schema=PROFILE_SCHEMA,
    )
    load_orders(
        wh,
        ORDER_SCHEMA.empty_table(),
        [LoadedWindow("differentbreed", "ampress-events", None, int(moment.timestamp()))],
        "seed",
        profiles=profiles,
    )


def test_differentbreed_never_loaded_profile_polls_everyone_from_the_beginning(sqlite_warehouse, db_config):
    specs = plan_differentbreed(db_config, sqlite_warehouse, resolve_window({}, DI_START, DI_END, RUN_AFTER))
    assert [s.cust_ids for s in specs] == [("1", "2"), ("3", "4"), ("5",)]
    assert [s.part for s in specs] == ["batch-0000", "batch-0001", "batch-0002"]
    assert [(s.part_index, s.parts) for s in specs] == [(0, 3), (1, 3), (2, 3)]
    for spec in specs:
        assert (spec.source, spec.domain, spec.currency) == ("differentbreed", "ampress-events", "GBP")
        assert spec.lower is None and spec.upper == DI_END
        assert spec.new_cust_ids == spec.cust_ids


def test_differentbreed_lower_bound_and_new_customers(sqlite_warehouse, db_config):
    set_watermark(sqlite_warehouse, "3521", DI_START)  # another source's watermark plays no part
    _set_profile_state(sqlite_warehouse, DI_START - timedelta(hours=3), refs=("1", "4"))
    specs = plan_differentbreed(db_config, sqlite_warehouse, resolve_window({}, DI_START, DI_END, RUN_AFTER))
    overlap = timedelta(minutes=db_config.differentbreed.overlap_minutes)
    assert {s.lower for s in specs} == {DI_START - timedelta(hours=3) - overlap}
    assert [s.new_cust_ids for s in specs] == [("2",), ("3",), ("5",)]

    rebuild = plan_differentbreed(
        db_config, sqlite_warehouse, resolve_window({"rebuild": True}, DI_START, DI_END, RUN_AFTER)
    )
    assert {s.lower for s in rebuild} == {None}
    assert [s.new_cust_ids for s in rebuild] == [s.cust_ids for s in rebuild]


def test_differentbreed_batches_grow_rather_than_exceed_the_task_limit(sqlite_warehouse, db_config):
    specs = plan_differentbreed(
        db_config, sqlite_warehouse, resolve_window({}, DI_START, DI_END, RUN_AFTER), max_tasks=2
    )
    assert [s.cust_ids for s in specs] == [("1", "2", "3"), ("4", "5")]


# ------------------------------------------------------------------ load_extracts (staged files -> order state)


def _staged(tmp_path, spec: ExtractSpec, rows: list[dict], quarantined: int = 0) -> ExtractResult:
    from include.schema import QUARANTINE_SCHEMA
    from include.staging import write_extract

    def ts(v):
        return datetime.fromtimestamp(v, UTC)

    orders = pa.Table.from_pylist(
        [{**r, "created_at": ts(r["created_at"]), "changed_at": ts(r["changed_at"])} for r in rows], schema=ORDER_SCHEMA
    )
    quarantine = pa.Table.from_pylist(
        [
            {
                "source": "giftpro",
                "domain": spec.domain,
                "order_id": None,
                "reason": "missing email address",
                "raw": "{}",
            }
        ]
        * quarantined,
        schema=QUARANTINE_SCHEMA,
    )
    files = write_extract(
        f"file://{tmp_path}", spec.source, spec.domain, spec.window.start, spec.window.end, orders, quarantine
    )
    return ExtractResult(spec=spec, orders_path=files.orders, quarantine_path=files.quarantine)


def _order(domain: str, order_id: str, email: str, changed: datetime) -> dict:
    stamp = int(changed.timestamp())
    return {
        "source": "giftpro",
        "domain": domain,
        "order_id": order_id,
        "email_norm": email,
        "created_at": stamp,
        "changed_at": stamp,
        "status": "Complete",
        "successful": True,
        "total_minor": 100,
        "currency": "GBP",
        "first_name": None,
        "last_name": None,
        "phone": None,
        "marketing_opt_in": True,
        "customer_ref": None,
        "version_hash": f"{order_id}-{stamp}",
    }


def test_load_extracts_merges_counts_quarantine_and_advances_watermarks(sqlite_warehouse, config, tmp_path):
    from include.pipeline import load_extracts

    window = resolve_window({}, DI_START, DI_END, RUN_AFTER)
    specs = by_domain(plan_giftpro(config, sqlite_warehouse, window, history=EMPTY_HISTORY))
    extracts = [
        _staged(tmp_path, specs["3521"], [_order("3521", "1", "a@example.com", DI_START)], quarantined=2),
        _staged(tmp_path, specs["3522"], [_order("3522", "1", "b@example.com", DI_START)]),
    ]
    result = load_extracts(sqlite_warehouse, extracts, "run-1", rebuild=False)
    assert (result.orders_in, result.orders_changed, result.quarantined) == (2, 2, 2)
    # Both were full-history loads (never loaded before): their watermark is the window end.
    assert watermarks(sqlite_warehouse, "giftpro") == {"3521": int(DI_END.timestamp()), "3522": int(DI_END.timestamp())}

    # Re-running the same interval is harmless.
    again = load_extracts(sqlite_warehouse, extracts, "run-1-retry", rebuild=False)
    assert again.orders_changed == 0

    # A rebuild of 3521 that no longer sees order 1 removes it; 3522 is not touched.
    rebuild_window = resolve_window({"rebuild": True}, DI_START, DI_END + timedelta(hours=1), RUN_AFTER)
    spec = by_domain(plan_giftpro(config, sqlite_warehouse, rebuild_window, history=EMPTY_HISTORY))["3521"]
    assert spec.lower is None
    load_extracts(sqlite_warehouse, [_staged(tmp_path, spec, [])], "rebuild", rebuild=True)
    with sqlite_warehouse.reader() as cur:
        cur.execute("SELECT domain, order_id FROM order_state ORDER BY domain")
        assert cur.fetchall() == [("3522", "1")]
        cur.execute("SELECT email_norm FROM dirty_emails ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["a@example.com", "b@example.com"]
    assert watermarks(sqlite_warehouse, "giftpro")["3521"] == int((DI_END + timedelta(hours=1)).timestamp())
