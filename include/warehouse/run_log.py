"""The publish history the monitoring page reads: one row per run and feed (``run_log``) and the
staged quarantine files of each run (``run_quarantine``).

Written right after each publish, from the warehouse's own block counts, so the numbers a person
reads on the page are the numbers the feed serves. Re-running a run replaces its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.warehouse.handle import Warehouse, now_epoch


@dataclass(frozen=True)
class FeedRun:
    run_id: str
    feed: str
    published_at: int
    window_start: int | None
    window_end: int | None
    window_origin: str | None
    customers: int
    orders: int
    spent_minor: int
    currency: str
    orders_changed: int
    recomputed: int
    quarantined: int
    full_rebuild: bool


_RUN_COLUMNS = (
    "run_id, feed, published_at, window_start, window_end, window_origin, customers, orders, spent_minor,"
    " currency, orders_changed, recomputed, quarantined, full_rebuild"
)


def record_run(
    wh: Warehouse,
    run_id: str,
    currencies: dict[str, str],
    window: dict[str, int | str | None],
    orders_changed: int,
    recomputed: int,
    quarantine_files: list[tuple[str, str, str, int]],
    full_rebuild: bool = False,
) -> list[FeedRun]:
    """Record what run `run_id` left in each feed of `currencies` (feed -> currency), read from
    the published block counts; `window` has ``start``/``end`` (epoch seconds) and ``origin``;
    `quarantine_files` lists ``(source, domain, path, records)``. Returns the rows written."""
    published_at = now_epoch()
    quarantined = sum(int(n) for *_, n in quarantine_files)
    rows = []
    with wh.transaction() as cur:
        for feed, currency in sorted(currencies.items()):
            cur.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(orders), 0), COALESCE(SUM(spent_minor), 0)"
                " FROM feed_blocks WHERE feed = ?",
                (feed,),
            )
            customers, orders, spent = (int(v) for v in cur.fetchone())
            rows.append(
                FeedRun(
                    run_id,
                    feed,
                    published_at,
                    window.get("start"),
                    window.get("end"),
                    window.get("origin"),
                    customers,
                    orders,
                    spent,
                    currency,
                    int(orders_changed),
                    int(recomputed),
                    quarantined,
                    bool(full_rebuild),
                )
            )
        cur.execute("DELETE FROM run_log WHERE run_id = ?", (run_id,))
        cur.execute("DELETE FROM run_quarantine WHERE run_id = ?", (run_id,))
        cur.executemany(
            f"INSERT INTO run_log ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            [(*_values(r)[:-1], int(r.full_rebuild)) for r in rows],
        )
        cur.executemany(
            "INSERT INTO run_quarantine (run_id, source, domain, path, records) VALUES (?, ?, ?, ?, ?)",
            sorted({(run_id, s, d, p, int(n)) for s, d, p, n in quarantine_files}),
        )
    return rows


def _values(row: FeedRun) -> tuple:
    return tuple(getattr(row, name.strip()) for name in _RUN_COLUMNS.split(","))


def _feed_runs(rows) -> list[FeedRun]:
    return [FeedRun(*r[:-1], bool(r[-1])) for r in rows]


def recent_runs(wh: Warehouse, limit: int = 10) -> list[FeedRun]:
    """The rows of the `limit` most recently published runs, newest first."""
    with wh.reader() as cur:
        cur.execute(
            f"SELECT {_RUN_COLUMNS} FROM run_log WHERE run_id IN ("
            " SELECT run_id FROM run_log GROUP BY run_id ORDER BY MAX(published_at) DESC LIMIT ?)"
            " ORDER BY published_at DESC, run_id DESC, feed",
            (limit,),
        )
        return _feed_runs(cur.fetchall())


def history(wh: Warehouse, feed: str, limit: int = 500) -> list[FeedRun]:
    """A feed's last `limit` publishes, oldest first (the chart of customers over time)."""
    with wh.reader() as cur:
        cur.execute(
            f"SELECT {_RUN_COLUMNS} FROM run_log WHERE feed = ? ORDER BY published_at DESC, run_id DESC LIMIT ?",
            (feed, limit),
        )
        return list(reversed(_feed_runs(cur.fetchall())))


def quarantine_files(wh: Warehouse, run_ids: list[str]) -> list[tuple[str, str, str, str, int]]:
    """``(run_id, source, domain, path, records)`` of these runs' quarantine files."""
    if not run_ids:
        return []
    with wh.reader() as cur:
        cur.execute(
            "SELECT run_id, source, domain, path, records FROM run_quarantine"
            f" WHERE run_id IN ({', '.join('?' * len(run_ids))}) ORDER BY run_id, source, domain, path",
            tuple(run_ids),
        )
        return [tuple(r) for r in cur.fetchall()]


def current_feeds(wh: Warehouse) -> list[tuple[str, int, int, int, int, str | None]]:
    """Per published feed, from the warehouse as the feed service serves it: ``(feed, customers,
    orders, spent_minor, published_at, run_id)``."""
    with wh.reader() as cur:
        cur.execute(
            "SELECT m.feed, m.total, COALESCE(SUM(b.orders), 0), COALESCE(SUM(b.spent_minor), 0),"
            " m.published_at, m.run_id FROM feed_meta m LEFT JOIN feed_blocks b ON b.feed = m.feed"
            " GROUP BY m.feed, m.total, m.published_at, m.run_id ORDER BY m.feed"
        )
        return [(f, int(c), int(o), int(s), int(p), r) for f, c, o, s, p, r in cur.fetchall()]
