"""The feed service's reads: a feed's total and one page of it, in constant time whatever the
page (see :mod:`include.warehouse.ddl` for ``pos`` and ``feed_blocks``)."""

from __future__ import annotations

from include.warehouse.ddl import BLOCK
from include.warehouse.handle import Warehouse


def feed_total(wh: Warehouse, feed: str) -> int:
    with wh.reader() as cur:
        cur.execute("SELECT total FROM feed_meta WHERE feed = ?", (feed,))
        row = cur.fetchone()
        return int(row[0]) if row else 0


def feed_page(wh: Warehouse, feed: str, page: int, per_page: int) -> tuple[list[tuple], int]:
    """Rows ``(id, email, first_name, last_name, orders_count, total_spent_minor, currency,
    phone, registered_at, gender)`` of page `page` (1-based) in id order, and the total.

    Reads run in one snapshot so the rows and the total belong to the same publish.
    """
    offset = (page - 1) * per_page
    with wh.reader() as cur:
        cur.begin_snapshot()
        cur.execute("SELECT total FROM feed_meta WHERE feed = ?", (feed,))
        row = cur.fetchone()
        total = int(row[0]) if row else 0
        if offset >= total:
            cur.end_snapshot()
            return [], total
        cur.execute(
            "SELECT block, cum_before FROM feed_blocks WHERE feed = ? AND cum_before <= ?"
            " ORDER BY cum_before DESC, block DESC LIMIT 1",
            (feed, offset),
        )
        block, cum_before = cur.fetchone()
        start = block * BLOCK + (offset - cum_before)
        cur.execute(
            "SELECT id, email, first_name, last_name, orders_count, total_spent_minor, currency,"
            " phone, registered_at, gender FROM customers WHERE feed = ? AND pos >= ?"
            " ORDER BY pos LIMIT ?",
            (feed, start, per_page),
        )
        rows = cur.fetchall()
        cur.end_snapshot()
        return rows, total
