"""GiftPro's naive Europe/London timestamps against Airflow's UTC windows, around both clock
changes of 2026 (the repeated hour of 25 October and the skipped hour of 29 March)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.sources.local_time import SOURCE_FORMAT, format_local, local_window, parse_local

LONDON = ZoneInfo("Europe/London")
UTC = UTC
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def readings(text: str) -> set[datetime]:
    """The UTC moments a London wall-clock text can stand for (two in the repeated hour)."""
    naive = datetime.strptime(text, SOURCE_FORMAT)
    return {naive.replace(tzinfo=LONDON, fold=fold).astimezone(UTC) for fold in (0, 1)}


def exists(text: str) -> bool:
    """False for a wall-clock time inside the skipped hour of March."""
    naive = datetime.strptime(text, SOURCE_FORMAT)
    return naive.replace(tzinfo=LONDON).astimezone(UTC).astimezone(LONDON).replace(tzinfo=None) == naive


def wall_texts(first: str, last: str, step=MINUTE) -> list[str]:
    start, end = datetime.fromisoformat(first), datetime.fromisoformat(last)
    out = []
    while start <= end:
        out.append(start.strftime(SOURCE_FORMAT))
        start += step
    return out


# --------------------------------------------------------------------------- parse / format


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-15 10:00:00", "2026-01-15T10:00:00"),  # GMT
        ("2026-07-15 10:00:00", "2026-07-15T09:00:00"),  # BST
        ("2026-10-25 00:59:59", "2026-10-24T23:59:59"),
        ("2026-10-25 01:30:00", "2026-10-25T00:30:00"),  # repeated hour: first occurrence
        ("2026-10-25 02:00:00", "2026-10-25T02:00:00"),
        ("2026-03-29 00:59:59", "2026-03-29T00:59:59"),
        ("2026-03-29 01:30:00", "2026-03-29T01:30:00"),  # skipped hour: offset before the change
        ("2026-03-29 02:00:00", "2026-03-29T01:00:00"),
        ("  2026-03-29 02:00:00 ", "2026-03-29T01:00:00"),
    ],
)
def test_parse_local(text, expected):
    got = parse_local(text, LONDON)
    assert got == utc(expected)
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)


def test_parse_local_rejects_other_formats():
    with pytest.raises(ValueError):
        parse_local("2026-03-29T02:00:00", LONDON)
    with pytest.raises(ValueError):
        parse_local("29/03/2026 02:00", LONDON)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        ("2026-10-25T00:30:00", "2026-10-25 01:30:00"),
        ("2026-10-25T01:30:00", "2026-10-25 01:30:00"),  # the same wall clock, an hour later
        ("2026-10-25T00:59:59", "2026-10-25 01:59:59"),
        ("2026-10-25T01:00:00", "2026-10-25 01:00:00"),
        ("2026-03-29T00:59:59", "2026-03-29 00:59:59"),
        ("2026-03-29T01:00:00", "2026-03-29 02:00:00"),
    ],
)
def test_format_local(moment, text):
    assert format_local(utc(moment), LONDON) == text


def test_format_local_accepts_any_aware_zone():
    moment = datetime(2026, 10, 25, 2, 30, tzinfo=timezone(timedelta(hours=1)))  # = 01:30Z
    assert format_local(moment, LONDON) == "2026-10-25 01:30:00"


def test_round_trip_outside_the_repeated_hour():
    moment = utc("2026-03-28T20:00:00")
    while moment < utc("2026-03-30T04:00:00"):
        assert parse_local(format_local(moment, LONDON), LONDON) == moment
        moment += 7 * MINUTE


# --------------------------------------------------------------------------- local_window around the changes


def _hour_windows(first: str, last: str):
    start = utc(first)
    while start < utc(last):
        yield start, start + HOUR
        start += HOUR


AROUND_OCTOBER = list(_hour_windows("2026-10-24T22:00:00", "2026-10-25T04:00:00"))
AROUND_MARCH = list(_hour_windows("2026-03-28T22:00:00", "2026-03-29T04:00:00"))
OCTOBER_TEXTS = wall_texts("2026-10-24 20:00:00", "2026-10-25 06:00:00")
MARCH_TEXTS = wall_texts("2026-03-28 20:00:00", "2026-03-29 06:00:00")


@pytest.mark.parametrize(
    ("window", "texts"),
    [(w, OCTOBER_TEXTS) for w in AROUND_OCTOBER] + [(w, MARCH_TEXTS) for w in AROUND_MARCH],
    ids=lambda v: v[0].strftime("%m-%dT%H:%M") if isinstance(v, tuple) else "",
)
def test_every_wall_clock_time_of_the_window_is_inside_the_local_window(window, texts):
    start, end = window
    lo, hi = local_window(start, end, LONDON)
    for text in texts:
        if not exists(text):
            continue
        if any(start <= moment < end for moment in readings(text)):
            assert lo <= text < hi, f"{text} (UTC {sorted(readings(text))}) outside [{lo}, {hi}) for {start}..{end}"
    # Never wider than the window plus the one hour the offset changes by.
    width = datetime.strptime(hi, SOURCE_FORMAT) - datetime.strptime(lo, SOURCE_FORMAT)
    assert end - start <= width <= end - start + HOUR


@pytest.mark.parametrize(
    ("start", "end", "lo", "hi"),
    [
        ("2026-10-25T00:00:00", "2026-10-25T01:00:00", "2026-10-25 00:00:00", "2026-10-25 02:00:00"),
        ("2026-10-25T01:00:00", "2026-10-25T02:00:00", "2026-10-25 01:00:00", "2026-10-25 02:00:00"),
        ("2026-03-29T00:00:00", "2026-03-29T01:00:00", "2026-03-29 00:00:00", "2026-03-29 02:00:00"),
        ("2026-03-29T01:00:00", "2026-03-29T02:00:00", "2026-03-29 02:00:00", "2026-03-29 03:00:00"),
        ("2026-01-10T09:00:00", "2026-01-10T10:00:00", "2026-01-10 09:00:00", "2026-01-10 10:00:00"),
        ("2026-07-10T09:00:00", "2026-07-10T10:00:00", "2026-07-10 10:00:00", "2026-07-10 11:00:00"),
    ],
)
def test_local_window_values(start, end, lo, hi):
    assert local_window(utc(start), utc(end), LONDON) == (lo, hi)


@pytest.mark.parametrize("windows", [AROUND_OCTOBER, AROUND_MARCH], ids=["october", "march"])
def test_consecutive_windows_leave_no_wall_clock_gap(windows):
    """Local windows of back-to-back UTC windows overlap or touch, so every wall-clock text
    (even one in the skipped hour, should a source ever send it) falls in at least one."""
    bounds = [local_window(s, e, LONDON) for s, e in windows]
    for (_, hi), (lo, _) in zip(bounds, bounds[1:]):
        assert lo <= hi
    first_lo, last_hi = bounds[0][0], bounds[-1][1]
    for text in wall_texts(first_lo.replace(" ", "T"), last_hi.replace(" ", "T")):
        if text < last_hi:
            assert any(lo <= text < hi for lo, hi in bounds), text


def test_windows_not_on_the_hour_across_the_changes():
    for day in ("2026-10-25", "2026-03-29"):
        start = utc(f"{day}T00:00:00") - HOUR
        while start < utc(f"{day}T03:00:00"):
            for length in (MINUTE, 15 * MINUTE, 45 * MINUTE, 90 * MINUTE):
                end = start + length
                lo, hi = local_window(start, end, LONDON)
                moment = start
                while moment < end:
                    assert lo <= format_local(moment, LONDON) < hi, (start, end, moment)
                    moment += MINUTE
            start += 13 * MINUTE


# --------------------------------------------------------------------------- property: random windows


_CHANGES = [
    utc(t)
    for t in (
        "2025-03-30T01:00:00",
        "2025-10-26T01:00:00",
        "2026-03-29T01:00:00",
        "2026-10-25T01:00:00",
        "2027-03-28T01:00:00",
        "2027-10-31T01:00:00",
    )
]
_SPAN_START, _SPAN_END = utc("2025-01-01T00:00:00"), utc("2027-12-31T00:00:00")

starts = st.one_of(
    # anywhere in 2025-2027, to the second
    st.integers(0, int((_SPAN_END - _SPAN_START).total_seconds())).map(lambda s: _SPAN_START + timedelta(seconds=s)),
    # within three hours of a clock change, to the minute
    st.tuples(st.sampled_from(_CHANGES), st.integers(-180, 180)).map(lambda t: t[0] + t[1] * MINUTE),
)


@settings(max_examples=150, deadline=None)
@given(start=starts, minutes=st.one_of(st.integers(1, 180), st.integers(1, 36 * 60)), seconds=st.integers(0, 59))
def test_every_minute_of_a_utc_window_maps_inside_its_local_window(start, minutes, seconds):
    end = start + minutes * MINUTE + timedelta(seconds=seconds)
    lo, hi = local_window(start, end, LONDON)
    moment = start
    while moment < end:
        assert lo <= format_local(moment, LONDON) < hi, (start, end, moment, lo, hi)
        moment += MINUTE
    last = end - timedelta(seconds=1)  # the last whole second of the window
    assert lo <= format_local(last, LONDON) < hi
    width = datetime.strptime(hi, SOURCE_FORMAT) - datetime.strptime(lo, SOURCE_FORMAT)
    # The naive texts are whole seconds: allow the truncation of sub-second bounds.
    assert width <= (end - start) + HOUR + timedelta(seconds=1)


@settings(max_examples=80, deadline=None)
@given(start=starts, lengths=st.lists(st.one_of(st.integers(1, 90), st.integers(1, 6 * 60)), min_size=2, max_size=6))
def test_consecutive_random_windows_are_contiguous_in_local_time(start, lengths):
    bounds, moment = [], start
    for minutes in lengths:
        bounds.append(local_window(moment, moment + minutes * MINUTE, LONDON))
        moment += minutes * MINUTE
    for (_, hi), (lo, _) in zip(bounds, bounds[1:]):
        assert lo <= hi


# --------------------------------------------------------------------------- edges


@pytest.mark.parametrize(
    ("end", "hi"),
    [
        ("2026-01-10T10:00:00", "2026-01-10 10:00:00"),
        ("2026-07-10T10:00:00", "2026-07-10 11:00:00"),
        ("2026-10-25T01:30:00", "2026-10-25 02:30:00"),  # the hour before still had BST
        ("2026-03-29T01:30:00", "2026-03-29 02:30:00"),
    ],
)
def test_no_lower_bound(end, hi):
    lo, got = local_window(None, utc(end), LONDON)
    assert lo is None
    assert got == hi
    moment = utc(end) - 3 * HOUR
    while moment < utc(end):
        assert format_local(moment, LONDON) < got
        moment += MINUTE


@pytest.mark.parametrize("length", [timedelta(0), -MINUTE, -HOUR])
def test_empty_window_raises(length):
    start = utc("2026-10-25T01:00:00")
    with pytest.raises(ValueError, match="empty window"):
        local_window(start, start + length, LONDON)


def test_window_bounds_accept_non_utc_aware_datetimes():
    start = datetime(2026, 10, 25, 1, 0, tzinfo=timezone(timedelta(hours=1)))  # = 00:00Z
    end = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert local_window(start, end, LONDON) == ("2026-10-25 00:00:00", "2026-10-25 02:00:00")


@given(st.integers(0, 110 * 366 * 86400))
def test_parse_local_fast_path_agrees_with_the_format(seconds):
    # Any wall-clock text from 1990 on, including the repeated and skipped hours.
    text = (datetime(1990, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
    expected = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=LONDON, fold=0).astimezone(UTC)
    assert parse_local(text, LONDON) == expected


def test_parse_local_still_reads_unpadded_fields():
    assert parse_local("2026-3-9 7:05:00", LONDON) == utc("2026-03-09T07:05:00")
