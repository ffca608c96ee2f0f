"""History in slices (include/history.py): how many slices each property gets under the task
budget, that the slices tile the history with no gap whatever the bounds (daylight-saving
changes included), and the planner's specs: one per slice, typed and in UTC."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.config import DEFAULT_CONFIG_PATH, FeedConfig, load_config
from include.history import HistorySlice, bounds_to_slices, plan_slices, slice_counts
from include.pipeline import plan_giftpro, resolve_window
from include.schema import ORDER_SCHEMA
from include.sources.local_time import format_local, parse_local
from include.warehouse.order_state import LoadedWindow, load_orders

LONDON = ZoneInfo("Europe/London")
END = datetime(2026, 11, 2, tzinfo=UTC)


# --------------------------------------------------------------------------- slice counts


def test_slices_of_about_target_pages_each():
    assert slice_counts({"a": 40_000, "b": 399, "c": 401, "d": 0}, 400, 512) == {"a": 100, "b": 1, "c": 2, "d": 1}


@given(
    pages=st.dictionaries(st.text("abcdef", min_size=1, max_size=3), st.integers(0, 10_000_000), min_size=1),
    target=st.integers(1, 2000),
    spare=st.integers(0, 1000),
)
def test_the_budget_holds_and_every_domain_gets_a_slice(pages, target, spare):
    budget = len(pages) + spare
    counts = slice_counts(pages, target, budget)
    assert set(counts) == set(pages)
    assert sum(counts.values()) <= budget
    assert all(n >= 1 for n in counts.values())
    # Slices only grow to meet the budget: never more than `target` pages asks for.
    assert all(n <= max(1, -(-pages[d] // target)) for d, n in counts.items())
    # Within a run, a longer history never gets fewer slices than a shorter one.
    ranked = sorted(pages, key=pages.get)
    assert all(counts[a] <= counts[b] for a, b in zip(ranked, ranked[1:]))


def test_a_budget_smaller_than_the_domains_is_an_error():
    with pytest.raises(ValueError, match="cannot hold 3 domains"):
        slice_counts({"a": 1, "b": 1, "c": 1}, 10, 2)


def test_fifty_properties_of_two_million_orders_stay_under_airflow_s_limit():
    counts = slice_counts({str(d): 40_000 for d in range(50)}, 400, 1000)
    assert sum(counts.values()) <= 1000 and set(counts.values()) == {20}


# --------------------------------------------------------------------------- slices tile the history


def local(text: str) -> datetime:
    return parse_local(text, LONDON)


def containing(slices: list[HistorySlice], text: str) -> list[int]:
    """The slices whose local-text filter (as the extract sends it) lets an order created at
    `text` through."""
    found = []
    for n, s in enumerate(slices):
        lo = None if s.created_from is None else format_local(s.created_from, LONDON)
        hi = None if s.created_to is None else format_local(s.created_to, LONDON)
        if (lo is None or text >= lo) and (hi is None or text < hi):
            found.append(n)
    return found


def test_slices_are_open_at_both_ends_and_share_their_bounds():
    bounds = [local("2026-03-01 00:00:00"), local("2025-01-01 00:00:00"), local("2026-03-01 00:00:00")]
    slices = bounds_to_slices(bounds)
    assert slices == [
        HistorySlice(None, local("2025-01-01 00:00:00")),
        HistorySlice(local("2025-01-01 00:00:00"), local("2026-03-01 00:00:00")),
        HistorySlice(local("2026-03-01 00:00:00"), None),
    ]
    assert all(s.created_from is None or s.created_from.tzinfo is not None for s in slices)
    assert bounds_to_slices([]) == [HistorySlice(None, None)]


# Local texts around both 2026 changes: the repeated October hour (01:00-02:00 twice), and the
# skipped March hour (01:00-02:00 does not exist; such a text is malformed but may still come).
DST_TEXTS = [
    f"2026-{day} {h:02d}:{m:02d}:{s:02d}"
    for day in ("10-25", "03-29")
    for h in (0, 1, 2, 3)
    for m in (0, 1, 29, 30, 59)
    for s in (0, 59)
]


@pytest.mark.parametrize("seed", range(20))
def test_every_order_falls_in_a_slice_whatever_the_bounds(seed):
    rng = random.Random(seed)
    texts = DST_TEXTS + [format_local(END - timedelta(minutes=rng.randrange(10**6)), LONDON) for _ in range(300)]
    bounds = [local(t) for t in rng.sample(texts, rng.randrange(0, 12))]
    slices = bounds_to_slices(bounds)
    for text in texts:
        assert containing(slices, text), f"{text} falls between slices {slices}"


@pytest.mark.parametrize("seed", range(20))
def test_away_from_the_skipped_hour_each_order_falls_in_exactly_one_slice(seed):
    rng = random.Random(seed)
    texts = [t for t in DST_TEXTS if not t.startswith("2026-03-29 01:")]
    texts += [format_local(END - timedelta(minutes=rng.randrange(10**6)), LONDON) for _ in range(300)]
    slices = bounds_to_slices([local(t) for t in rng.sample(texts, rng.randrange(0, 12))])
    for text in texts:
        assert len(containing(slices, text)) == 1, text


def test_a_bound_in_the_repeated_october_hour_keeps_its_local_text():
    # 01:30 London on 2026-10-25 happens twice; GiftPro's naive text is read as the first (BST).
    bound = local("2026-10-25 01:30:00")
    assert bound == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert format_local(bound, LONDON) == "2026-10-25 01:30:00"


# --------------------------------------------------------------------------- the planner


class FakeHistory:
    """A domain's history as the probe sees it: orders newest first, 50 a page."""

    def __init__(self, created: dict[str, list[str]]):
        self.created = {d: sorted(texts, reverse=True) for d, texts in created.items()}
        self.asked: list[tuple[str, int]] = []

    def pages(self, domain: str) -> int:
        return -(-len(self.created.get(domain, [])) // 50)

    def created_at(self, domain: str, page: int) -> datetime | None:
        self.asked.append((domain, page))
        rows = self.created.get(domain, [])[(page - 1) * 50 : page * 50]
        return local(rows[-1]) if rows else None


def orders_over(days: int, count: int, start: str = "2025-01-01 00:00:00") -> list[str]:
    first = local(start)
    return [format_local(first + timedelta(days=days) * n / count, LONDON) for n in range(count)]


def test_plan_slices_cuts_at_page_quantiles():
    history = FakeHistory({"big": orders_over(400, 10_000), "small": orders_over(30, 120)})
    plan = plan_slices(["big", "small"], history, target_pages=50, budget=10)
    assert [len(plan["big"]), len(plan["small"])] == [4, 1]  # 200 pages -> 4 slices of 50
    assert plan["small"] == [HistorySlice(None, None)]
    assert sorted(history.asked) == [("big", 50), ("big", 100), ("big", 150)]
    texts = history.created["big"]
    counts = [len([t for t in texts if containing(plan["big"], t) == [n]]) for n in range(4)]
    assert sum(counts) == len(texts) and max(counts) - min(counts) <= 50  # even, to a page


@pytest.fixture
def config() -> FeedConfig:
    data = load_config(DEFAULT_CONFIG_PATH).model_dump()
    data["giftpro"].update(history_slice_pages=10, max_extract_tasks=12)
    return FeedConfig.model_validate(data)


def test_plan_giftpro_slices_only_the_domains_that_load_their_whole_history(sqlite_warehouse, config):
    load_orders(
        sqlite_warehouse,
        ORDER_SCHEMA.empty_table(),
        [LoadedWindow("giftpro", d, None, int(END.timestamp()) - 3600) for d in ("3522", "4101")],
        "seed",
    )
    history = FakeHistory({"3521": orders_over(600, 2_000), "3523": orders_over(10, 30), "4102": []})
    window = resolve_window({}, END - timedelta(hours=1), END, None)
    specs = plan_giftpro(config, sqlite_warehouse, window, history=history)
    parts = {}
    for spec in specs:
        parts.setdefault(spec.domain, []).append(spec)
    # 3521's 40 pages make 4 slices of 10; 3523 (1 page) and 4102 (none) one extract each.
    assert [len(parts[d]) for d in ("3521", "3522", "3523", "4101", "4102")] == [4, 1, 1, 1, 1]
    sliced = parts["3521"]
    assert [(s.part, s.part_index, s.parts) for s in sliced] == [(f"slice-{n:04d}", n, 4) for n in range(4)]
    assert sliced[0].created_from is None and sliced[-1].created_to is None
    assert all(a.created_to == b.created_from and a.created_to.tzinfo is UTC for a, b in zip(sliced, sliced[1:]))
    assert all(s.lower is None and s.upper == END for s in sliced)
    assert (parts["3523"][0].part, parts["3523"][0].created_from, parts["3523"][0].created_to) == ("", None, None)
    for domain in ("3522", "4101"):  # incremental: one extract, no slicing, no probe
        (spec,) = parts[domain]
        assert spec.lower is not None and (spec.created_from, spec.created_to, spec.parts) == (None, None, 1)
    assert {d for d, _ in history.asked} == {"3521"}


def test_plan_giftpro_keeps_to_the_task_budget(sqlite_warehouse, config):
    # Five whole histories of 40 pages want 4 slices of 10 each: 20 tasks. With 10 allowed, the
    # slices grow to 20 pages: 2 each.
    tight = FeedConfig.model_validate(
        {**config.model_dump(), "giftpro": {"history_slice_pages": 10, "max_extract_tasks": 10}}
    )
    history = FakeHistory({d: orders_over(600, 2_000) for d in ("3521", "3522", "3523", "4101", "4102")})
    window = resolve_window({}, END - timedelta(hours=1), END, None)
    specs = plan_giftpro(tight, sqlite_warehouse, window, history=history)
    assert [s.domain for s in specs] == ["3521", "3521", "3522", "3522", "3523", "3523", "4101", "4101", "4102", "4102"]
    # Fewer tasks allowed than there are domains: one each, unsliced, as before slicing existed.
    tighter = FeedConfig.model_validate({**tight.model_dump(), "giftpro": {"max_extract_tasks": 3}})
    specs = plan_giftpro(tighter, sqlite_warehouse, window, history=history)
    assert [(s.domain, s.parts) for s in specs] == [(d, 1) for d in ("3521", "3522", "3523", "4101", "4102")]
