"""Conversions between UTC and a source's naive local wall-clock time.

GiftPro speaks naive Europe/London time (`Y-m-d H:i:s`, no zone); Airflow's data intervals are
UTC. Local time is not monotonic in UTC: the last Sunday of October repeats an hour and the last
Sunday of March skips one. Two rules follow:

* A naive local timestamp that falls in the repeated hour is ambiguous; it is read as its first
  occurrence (``fold=0``). One that falls in the skipped hour cannot exist; it is read with the
  offset before the change, which lands it just after the change.
* A UTC window is turned into the smallest local window that surely covers it: the wall-clock
  bounds are widened by every UTC offset in force inside the window. Around the October change
  the local window overlaps its neighbour by an hour (harmless: loading is idempotent); it is
  never shorter than the UTC window, so no order can fall between two windows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SOURCE_FORMAT = "%Y-%m-%d %H:%M:%S"
UTC = UTC


_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def parse_local(text: str, tz: ZoneInfo) -> datetime:
    """'2026-10-25 01:30:00' in `tz` -> aware UTC datetime (see module docstring for DST)."""
    text = text.strip()
    # The zero-padded form GiftPro sends parses in C; strptime (ten times slower, and most of
    # a page's normalising) keeps the exact rules for anything else.
    if _CANONICAL.fullmatch(text):
        naive = datetime.fromisoformat(text)
    else:
        naive = datetime.strptime(text, SOURCE_FORMAT)
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


def format_local(moment: datetime, tz: ZoneInfo) -> str:
    """Aware datetime -> naive wall-clock text in `tz`."""
    return moment.astimezone(tz).strftime(SOURCE_FORMAT)


def _offsets_within(start: datetime, end: datetime, tz: ZoneInfo) -> list[timedelta]:
    # Zone changes happen on the hour everywhere this pipeline meets, so sampling every
    # 30 minutes plus both ends sees every offset in force within the window.
    offsets = {start.astimezone(tz).utcoffset(), end.astimezone(tz).utcoffset()}
    step = timedelta(minutes=30)
    moment = start
    while moment < end:
        offsets.add(moment.astimezone(tz).utcoffset())
        moment += step
    return sorted(offsets)


def local_window(start: datetime | None, end: datetime, tz: ZoneInfo) -> tuple[str | None, str]:
    """The naive local bounds ``[lo, hi)`` covering the UTC window ``[start, end)``.

    ``start=None`` means "from the beginning" and gives ``lo=None``.
    """
    if start is None:
        offsets = _offsets_within(end - timedelta(hours=1), end, tz)
        return None, (end.astimezone(UTC).replace(tzinfo=None) + offsets[-1]).strftime(SOURCE_FORMAT)
    if end <= start:
        raise ValueError(f"empty window: {start.isoformat()} .. {end.isoformat()}")
    offsets = _offsets_within(start, end, tz)
    lo = start.astimezone(UTC).replace(tzinfo=None) + offsets[0]
    hi = end.astimezone(UTC).replace(tzinfo=None) + offsets[-1]
    return lo.strftime(SOURCE_FORMAT), hi.strftime(SOURCE_FORMAT)
