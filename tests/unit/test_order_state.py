"""The order state: `latest_versions`, `load_orders` (merge, dirty emails, replace_domains) and the
per source x domain watermark rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from include.schema import ORDER_SCHEMA
from include.warehouse.order_state import LoadedWindow, latest_versions, load_orders, watermarks

T0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
HOUR = 3600


def version(
    order_id: str,
    changed: int,
    email: str = "ann@example.com",
    *,
    domain: str = "3521",
    source: str = "giftpro",
    hash: str | None = None,
    **fields,
) -> dict:
    row = {
        "source": source,
        "domain": domain,
        "order_id": order_id,
        "email_norm": email,
        "created_at": T0,
        "changed_at": changed,
        "status": "Complete",
        "successful": True,
        "total_minor": 1000,
        "currency": "GBP",
        "first_name": "Ann",
        "last_name": "Lee",
        "phone": None,
        "marketing_opt_in": True,
        "customer_ref": None,
        "version_hash": hash or f"{order_id}-{changed}-{email}",
    }
    row.update(fields)
    return row


def table(*rows: dict) -> pa.Table:
    def ts(v):
        return datetime.fromtimestamp(v, UTC)

    fixed = [{**r, "created_at": ts(r["created_at"]), "changed_at": ts(r["changed_at"])} for r in rows]
    return pa.Table.from_pylist(fixed, schema=ORDER_SCHEMA)


def state(wh) -> dict[tuple, dict]:
    with wh.reader() as cur:
        cur.execute("SELECT * FROM order_state")
        names = [d[0] for d in cur.description]
        return {(r["source"], r["domain"], r["order_id"]): r for r in (dict(zip(names, row)) for row in cur.fetchall())}


def dirty(wh) -> set[str]:
    with wh.reader() as cur:
        cur.execute("SELECT email_norm FROM dirty_emails")
        return {r[0] for r in cur.fetchall()}


def clear_dirty(wh) -> None:
    with wh.transaction() as cur:
        cur.execute("DELETE FROM dirty_emails")


def watermark(wh, domain: str = "3521", source: str = "giftpro"):
    with wh.reader() as cur:
        cur.execute("SELECT watermark FROM sync_state WHERE source = ? AND domain = ?", (source, domain))
        row = cur.fetchone()
        return row[0] if row else "no row"


# --------------------------------------------------------------------------- latest_versions


def test_latest_versions_keeps_one_latest_row_per_key():
    rows = [
        version("1", T0 + 1, hash="a"),
        version("1", T0 + 3, hash="b", total_minor=3),
        version("1", T0 + 2, hash="z"),
        version("2", T0 + 5, hash="a"),
        version("2", T0 + 5, hash="c", total_minor=22),  # same second: greater hash wins
        version("2", T0 + 5, hash="b"),
        version("3", T0 + 1, hash="a", total_minor=33),
        version("1", T0 + 3, hash="a", domain="3522", total_minor=1),  # another domain, another order
        version("1", T0 + 3, hash="a", source="differentbreed", total_minor=2),
    ]
    for seed in range(5):
        random.Random(seed).shuffle(rows)
        out = latest_versions(table(*rows)).to_pylist()
        got = {(r["source"], r["domain"], r["order_id"]): r["total_minor"] for r in out}
        assert len(out) == len(got) == 5
        assert got == {
            ("giftpro", "3521", "1"): 3,
            ("giftpro", "3521", "2"): 22,
            ("giftpro", "3521", "3"): 33,
            ("giftpro", "3522", "1"): 1,
            ("differentbreed", "3521", "1"): 2,
        }


def test_latest_versions_empty_and_single():
    assert latest_versions(ORDER_SCHEMA.empty_table()).num_rows == 0
    assert latest_versions(table(version("1", T0))).num_rows == 1


# --------------------------------------------------------------------------- load_orders merge


def test_latest_changed_wins_whatever_the_arrival_order(warehouse):
    old, new = version("1", T0, total_minor=1000), version("1", T0 + HOUR, total_minor=0, successful=False)
    load_orders(warehouse, table(new), [], "r1")
    result = load_orders(warehouse, table(old), [], "r2")
    assert result["orders_changed"] == 0
    stored = state(warehouse)[("giftpro", "3521", "1")]
    assert (stored["changed_at"], stored["total_minor"], stored["successful"]) == (T0 + HOUR, 0, 0)

    # and in the natural order, on another key
    load_orders(warehouse, table(version("2", T0, total_minor=1)), [], "r3")
    assert load_orders(warehouse, table(version("2", T0 + HOUR, total_minor=2)), [], "r4")["orders_changed"] == 1
    assert state(warehouse)[("giftpro", "3521", "2")]["total_minor"] == 2


@pytest.mark.parametrize("arrival", ["small_first", "great_first", "same_batch"])
def test_equal_changed_greater_hash_wins(warehouse, arrival):
    small = version("1", T0, hash="0000aaaa", total_minor=111)
    great = version("1", T0, hash="ffff0000", total_minor=999)
    if arrival == "small_first":
        load_orders(warehouse, table(small), [], "r1")
        assert load_orders(warehouse, table(great), [], "r2")["orders_changed"] == 1
    elif arrival == "great_first":
        load_orders(warehouse, table(great), [], "r1")
        assert load_orders(warehouse, table(small), [], "r2")["orders_changed"] == 0
    else:
        load_orders(warehouse, table(great, small), [], "r1")
    stored = state(warehouse)[("giftpro", "3521", "1")]
    assert (stored["version_hash"], stored["total_minor"]) == ("ffff0000", 999)


def test_stored_row_has_warehouse_types(warehouse):
    load_orders(warehouse, table(version("1", T0 + 7, phone="+44 7700", marketing_opt_in=False)), [], "r")
    stored = state(warehouse)[("giftpro", "3521", "1")]
    assert stored["created_at"] == T0 and stored["changed_at"] == T0 + 7
    assert stored["successful"] == 1 and stored["marketing_opt_in"] == 0
    assert stored["phone"] == "+44 7700" and stored["customer_ref"] is None


def test_reloading_the_same_batch_changes_nothing(warehouse):
    batch = table(
        version("1", T0, "ann@example.com"),
        version("2", T0 + 1, "bob@example.com"),
        version("2", T0 + 2, "bob@example.com", total_minor=5),
    )
    first = load_orders(warehouse, batch, [], "r1")
    assert (first["orders_in"], first["orders_changed"]) == (3, 2)
    assert dirty(warehouse) == {"ann@example.com", "bob@example.com"}
    before = state(warehouse)

    again = load_orders(warehouse, batch, [], "r2")
    assert (again["orders_in"], again["orders_changed"]) == (3, 0)
    assert dirty(warehouse) == {"ann@example.com", "bob@example.com"}
    assert state(warehouse) == before

    clear_dirty(warehouse)  # as a publish would
    assert load_orders(warehouse, batch, [], "r3")["orders_changed"] == 0
    assert dirty(warehouse) == set()
    assert state(warehouse) == before


def test_only_changed_orders_mark_their_emails_dirty(warehouse):
    load_orders(warehouse, table(version("1", T0, "ann@example.com"), version("2", T0, "bob@example.com")), [], "r1")
    clear_dirty(warehouse)
    result = load_orders(
        warehouse,
        table(version("1", T0, "ann@example.com"), version("2", T0 + 1, "bob@example.com", total_minor=1)),
        [],
        "r2",
    )
    assert result["orders_changed"] == 1
    assert dirty(warehouse) == {"bob@example.com"}


def test_edited_email_marks_old_and_new_email_dirty(warehouse):
    load_orders(warehouse, table(version("1", T0, "old@example.com"), version("2", T0, "keep@example.com")), [], "r1")
    clear_dirty(warehouse)
    load_orders(warehouse, table(version("1", T0 + HOUR, "new@example.com")), [], "r2")
    assert dirty(warehouse) == {"old@example.com", "new@example.com"}
    assert state(warehouse)[("giftpro", "3521", "1")]["email_norm"] == "new@example.com"


def test_stale_email_edit_arriving_late_is_ignored(warehouse):
    load_orders(warehouse, table(version("1", T0 + HOUR, "new@example.com")), [], "r1")
    clear_dirty(warehouse)
    assert load_orders(warehouse, table(version("1", T0, "old@example.com")), [], "r2")["orders_changed"] == 0
    assert dirty(warehouse) == set()
    assert state(warehouse)[("giftpro", "3521", "1")]["email_norm"] == "new@example.com"


def test_empty_batch_is_fine(warehouse):
    result = load_orders(warehouse, ORDER_SCHEMA.empty_table(), [], "r")
    assert (result["orders_in"], result["orders_changed"]) == (0, 0)
    assert state(warehouse) == {}


def test_text_fields_survive_round_trip(warehouse):
    # COPY (PostgreSQL) goes through CSV: commas, quotes, newlines, NULL vs '' must survive.
    tricky = version(
        "1", T0, first_name='Zoë "Z", Jr', last_name="", phone=None, customer_ref="a\nb", status="Complete"
    )
    load_orders(warehouse, table(tricky), [], "r")
    stored = state(warehouse)[("giftpro", "3521", "1")]
    assert stored["first_name"] == 'Zoë "Z", Jr'
    assert stored["last_name"] == ""
    assert stored["phone"] is None
    assert stored["customer_ref"] == "a\nb"


def test_failed_load_changes_nothing(warehouse, monkeypatch):
    import include.warehouse.order_state as order_state

    load_orders(warehouse, table(version("1", T0)), [LoadedWindow("giftpro", "3521", None, T0 + HOUR)], "r1")
    clear_dirty(warehouse)
    before = state(warehouse)

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(order_state, "_advance_watermark", boom)
    with pytest.raises(RuntimeError):
        load_orders(
            warehouse,
            table(version("1", T0 + 5, total_minor=5)),
            [LoadedWindow("giftpro", "3521", T0, T0 + 2 * HOUR)],
            "r2",
        )
    assert state(warehouse) == before
    assert dirty(warehouse) == set()
    assert watermark(warehouse) == T0 + HOUR


# --------------------------------------------------------------------------- watermarks


def _window(lower, upper, domain="3521"):
    return LoadedWindow("giftpro", domain, lower, upper)


def test_watermark_first_full_load_sets_it(warehouse):
    load_orders(warehouse, ORDER_SCHEMA.empty_table(), [_window(None, T0 + 10 * HOUR)], "r1")
    assert watermark(warehouse) == T0 + 10 * HOUR
    with warehouse.reader() as cur:
        cur.execute("SELECT last_run_id FROM sync_state WHERE domain = '3521'")
        assert cur.fetchone()[0] == "r1"
    assert watermarks(warehouse, "giftpro") == {"3521": T0 + 10 * HOUR}


def test_watermark_first_bounded_load_does_not_set_it(warehouse):
    # Never loaded and the window does not reach back to the beginning: coverage unknown.
    load_orders(warehouse, ORDER_SCHEMA.empty_table(), [_window(T0, T0 + HOUR)], "r1")
    assert watermark(warehouse) is None
    assert watermarks(warehouse, "giftpro") == {}


@pytest.mark.parametrize(
    ("lower", "upper", "expected"),
    [
        (10, 11, 11),  # contiguous: starts exactly at the watermark
        (9, 11, 11),  # overlapping the watermark (the normal incremental run with overlap)
        (None, 12, 12),  # a full-history load later
        (11, 12, 10),  # a gap: starts after the watermark
        (2, 5, 10),  # an older backfill window
        (2, 10, 10),  # a backfill ending exactly at the watermark
        (None, 5, 10),  # a full-history load with an older upper bound never moves it back
    ],
)
def test_watermark_rules(warehouse, lower, upper, expected):
    load_orders(warehouse, ORDER_SCHEMA.empty_table(), [_window(None, T0 + 10 * HOUR)], "r1")
    lower = None if lower is None else T0 + lower * HOUR
    load_orders(warehouse, ORDER_SCHEMA.empty_table(), [_window(lower, T0 + upper * HOUR)], "r2")
    assert watermark(warehouse) == T0 + expected * HOUR


def test_watermarks_are_per_source_and_domain(warehouse):
    load_orders(
        warehouse,
        ORDER_SCHEMA.empty_table(),
        [
            _window(None, T0 + 10 * HOUR, "3521"),
            _window(None, T0 + 20 * HOUR, "3522"),
            LoadedWindow("differentbreed", "3521", None, T0 + 30 * HOUR),
        ],
        "r1",
    )
    load_orders(warehouse, ORDER_SCHEMA.empty_table(), [_window(T0 + 10 * HOUR, T0 + 11 * HOUR, "3521")], "r2")
    assert watermarks(warehouse, "giftpro") == {"3521": T0 + 11 * HOUR, "3522": T0 + 20 * HOUR}
    assert watermarks(warehouse, "differentbreed") == {"3521": T0 + 30 * HOUR}


def test_gap_then_fill_advances(warehouse):
    load_orders(warehouse, ORDER_SCHEMA.empty_table(), [_window(None, T0 + 10 * HOUR)], "r1")
    load_orders(warehouse, ORDER_SCHEMA.empty_table(), [_window(T0 + 12 * HOUR, T0 + 13 * HOUR)], "gap")
    assert watermark(warehouse) == T0 + 10 * HOUR
    load_orders(warehouse, ORDER_SCHEMA.empty_table(), [_window(T0 + 10 * HOUR, T0 + 12 * HOUR)], "fill")
    assert watermark(warehouse) == T0 + 12 * HOUR


# --------------------------------------------------------------------------- replace_domains


def test_replace_domains_removes_stale_orders_and_marks_their_emails(warehouse):
    load_orders(
        warehouse,
        table(
            version("1", T0, "kept@example.com"),
            version("2", T0, "gone@example.com"),
            version("3", T0, "moved@example.com"),
            version("1", T0, "other@example.com", domain="3522"),
        ),
        [_window(None, T0 + HOUR), _window(None, T0 + HOUR, "3522")],
        "r1",
    )
    clear_dirty(warehouse)
    # The rebuild of 3521 sees order 1 unchanged, order 3 under a new email, order 2 no more.
    result = load_orders(
        warehouse,
        table(version("1", T0, "kept@example.com"), version("3", T0, "now@example.com", hash="x")),
        [_window(None, T0 + 2 * HOUR)],
        "rebuild",
        replace_domains=[("giftpro", "3521")],
    )
    orders = state(warehouse)
    assert set(orders) == {("giftpro", "3521", "1"), ("giftpro", "3521", "3"), ("giftpro", "3522", "1")}
    assert orders[("giftpro", "3521", "3")]["email_norm"] == "now@example.com"
    assert dirty(warehouse) >= {"gone@example.com", "moved@example.com", "now@example.com"}
    assert "other@example.com" not in dirty(warehouse)
    assert result["orders_changed"] == 2
    assert watermark(warehouse) == T0 + 2 * HOUR
    assert watermark(warehouse, "3522") == T0 + HOUR


def test_replace_domain_with_nothing_empties_it(warehouse):
    load_orders(warehouse, table(version("1", T0, "a@example.com"), version("2", T0, "b@example.com")), [], "r1")
    clear_dirty(warehouse)
    load_orders(warehouse, ORDER_SCHEMA.empty_table(), [], "r2", replace_domains=[("giftpro", "3521")])
    assert state(warehouse) == {}
    assert dirty(warehouse) == {"a@example.com", "b@example.com"}
