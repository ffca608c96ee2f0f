"""Publishing: stable ids, consent, paging through `pos`, atomicity and config changes, on SQLite
and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pyarrow as pa
import pytest

import include.warehouse.publish as publish_module
from include.config import FeedConfig
from include.schema import ORDER_SCHEMA
from include.warehouse.ddl import BLOCK
from include.warehouse.feed_reads import feed_page, feed_total
from include.warehouse.order_state import load_orders
from include.warehouse.publish import publish_customers

T0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
HOUR = 3600


def _feed(name, currency="GBP", giftpro=(), tz="Europe/London"):
    return {
        "name": name,
        "token_env": f"TOKEN_{name.upper()}",
        "currency": currency,
        "store": {
            "name": name,
            "currency": currency,
            "time_zone": tz,
            "email": "shop@example.com",
            "country": "United Kingdom",
            "country_code": "GB",
        },
        "sources": {"giftpro_domains": list(giftpro)},
    }


def make_config(*feeds) -> FeedConfig:
    return FeedConfig.model_validate({"feeds": list(feeds)})


CONFIG = make_config(_feed("a", giftpro=["1", "2"]), _feed("b", "EUR", giftpro=["3"], tz="Europe/Dublin"))


def version(order_id, email, changed=T0, *, domain="1", created=None, **fields) -> dict:
    row = {
        "source": "giftpro",
        "domain": domain,
        "order_id": str(order_id),
        "email_norm": email,
        "created_at": T0 + int(order_id) if created is None else created,
        "changed_at": changed,
        "status": "Complete",
        "successful": True,
        "total_minor": 1000,
        "currency": {"1": "GBP", "2": "GBP", "3": "EUR"}.get(domain, "GBP"),
        "first_name": "Ann",
        "last_name": "Lee",
        "phone": None,
        "marketing_opt_in": True,
        "customer_ref": None,
        "version_hash": f"{order_id}-{changed}",
    }
    row.update(fields)
    return row


def table(rows) -> pa.Table:
    def ts(v):
        return datetime.fromtimestamp(v, UTC)

    return pa.Table.from_pylist(
        [{**r, "created_at": ts(r["created_at"]), "changed_at": ts(r["changed_at"])} for r in rows], schema=ORDER_SCHEMA
    )


def load(wh, rows, run="run"):
    return load_orders(wh, table(rows), [], run)


def customers(wh, feed=None) -> dict[tuple[str, str], dict]:
    with wh.reader() as cur:
        cur.execute("SELECT * FROM customers" + (" WHERE feed = ?" if feed else ""), (feed,) if feed else ())
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    return {(r["feed"], r["email"]): r for r in rows}


def ids(wh) -> dict[tuple[str, str], int]:
    with wh.reader() as cur:
        cur.execute("SELECT feed, email_norm, id FROM customer_ids")
        return {(f, e): i for f, e, i in cur.fetchall()}


def dirty(wh) -> set[str]:
    with wh.reader() as cur:
        cur.execute("SELECT email_norm FROM dirty_emails")
        return {r[0] for r in cur.fetchall()}


def walk(wh, feed, per_page):
    rows, page = [], 1
    while True:
        got, total = feed_page(wh, feed, page, per_page)
        if not got:
            return rows, total
        assert len(got) <= per_page
        rows.extend(got)
        page += 1


def check_feed_consistent(wh, feed, per_pages=(100, 1000, 7)):
    """Every published row served exactly once, in id order, whatever the page size; pos dense
    within each block; feed_blocks and feed_meta agree with the rows."""
    table_rows = customers(wh, feed)
    expected_ids = sorted(r["id"] for r in table_rows.values())
    for per_page in per_pages:
        served, total = walk(wh, feed, per_page)
        assert total == len(expected_ids)
        assert [r[0] for r in served] == expected_ids, f"per_page={per_page}"
    assert feed_total(wh, feed) == len(expected_ids)

    by_block: dict[int, list[dict]] = {}
    for r in table_rows.values():
        by_block.setdefault(r["id"] // BLOCK, []).append(r)
    cum = 0
    with wh.reader() as cur:
        cur.execute(
            "SELECT block, n, orders, spent_minor, cum_before FROM feed_blocks WHERE feed = ? ORDER BY block", (feed,)
        )
        blocks = {b: (n, o, s, c) for b, n, o, s, c in cur.fetchall()}
    assert set(blocks) == set(by_block), "feed_blocks must list exactly the non-empty blocks"
    for block in sorted(by_block):
        rows = sorted(by_block[block], key=lambda r: r["id"])
        assert [r["pos"] for r in rows] == [block * BLOCK + i for i in range(len(rows))], f"block {block}"
        n, orders, spent, cum_before = blocks[block]
        assert (n, cum_before) == (len(rows), cum)
        assert orders == sum(r["orders_count"] for r in rows)
        assert spent == sum(r["total_spent_minor"] for r in rows)
        cum += len(rows)


# --------------------------------------------------------------------------- ids


def test_first_publish_numbers_each_feed_from_one_in_registration_order(warehouse):
    load(
        warehouse,
        [
            version(3, "carl@example.com", created=T0 + 30),
            version(1, "ann@example.com", created=T0 + 10),
            version(2, "bea@example.com", created=T0 + 20),
            version(4, "bea@example.com", domain="3", created=T0 + 5),
            version(5, "zed@example.com", domain="3", created=T0 + 1),
        ],
    )
    publish_customers(warehouse, CONFIG, "p1")
    assert ids(warehouse) == {
        ("a", "ann@example.com"): 1,
        ("a", "bea@example.com"): 2,
        ("a", "carl@example.com"): 3,
        ("b", "zed@example.com"): 1,
        ("b", "bea@example.com"): 2,
    }
    assert {k: r["id"] for k, r in customers(warehouse).items()} == ids(warehouse)


def test_ids_stable_across_runs_and_full_rebuild_and_new_ones_get_next_ids(warehouse):
    load(warehouse, [version(i, f"c{i}@example.com") for i in range(1, 6)])
    publish_customers(warehouse, CONFIG, "p1")
    first = ids(warehouse)
    assert sorted(first.values()) == [1, 2, 3, 4, 5]

    # Changes to existing customers and two new ones (the later-registered gets the higher id).
    load(
        warehouse,
        [
            version(2, "c2@example.com", T0 + HOUR, total_minor=5),
            version(7, "new2@example.com", created=T0 + 100),
            version(6, "new1@example.com", created=T0 + 50),
        ],
        "r2",
    )
    publish_customers(warehouse, CONFIG, "p2")
    second = ids(warehouse)
    assert {k: second[k] for k in first} == first
    assert second[("a", "new1@example.com")] == 6
    assert second[("a", "new2@example.com")] == 7

    before = customers(warehouse)
    result = publish_customers(warehouse, CONFIG, "rebuild", full=True)
    assert result["full"] is True
    assert ids(warehouse) == second
    assert customers(warehouse) == before  # same rows, same ids, same pos
    check_feed_consistent(warehouse, "a")

    # Another rebuild from the wiped order state of a domain keeps ids too.
    load_orders(
        warehouse,
        table([version(i, f"c{i}@example.com") for i in range(1, 6)]),
        [],
        "rb",
        replace_domains=[("giftpro", "1")],
    )
    publish_customers(warehouse, CONFIG, "rebuild2", full=True)
    assert {k: r["id"] for k, r in customers(warehouse).items()} == first


def test_consent_withdrawn_removes_row_and_regiven_keeps_id(warehouse):
    load(warehouse, [version(i, f"c{i}@example.com") for i in range(1, 4)])
    publish_customers(warehouse, CONFIG, "p1")
    id2 = ids(warehouse)[("a", "c2@example.com")]

    load(warehouse, [version(2, "c2@example.com", T0 + HOUR, marketing_opt_in=False)], "withdraw")
    summary = publish_customers(warehouse, CONFIG, "p2")
    assert ("a", "c2@example.com") not in customers(warehouse)
    assert summary["feeds"]["a"]["customers"] == 2
    check_feed_consistent(warehouse, "a")

    # Meanwhile new customers arrive: they must not get c2's id.
    load(warehouse, [version(10, "late@example.com")], "new")
    publish_customers(warehouse, CONFIG, "p3")
    assert ids(warehouse)[("a", "late@example.com")] == 4

    # A new order that opts in again brings c2 back under the same id.
    load(warehouse, [version(11, "c2@example.com", created=T0 + 5 * HOUR)], "regive")
    publish_customers(warehouse, CONFIG, "p4")
    row = customers(warehouse)[("a", "c2@example.com")]
    assert row["id"] == id2
    assert row["orders_count"] == 2
    check_feed_consistent(warehouse, "a")
    assert len(set(ids(warehouse).values())) == len(ids(warehouse))


def test_customer_whose_orders_vanish_and_come_back_keeps_id(warehouse):
    load(warehouse, [version(1, "a@example.com"), version(2, "b@example.com")])
    publish_customers(warehouse, CONFIG, "p1")
    id_b = ids(warehouse)[("a", "b@example.com")]
    # b's only order is edited to another email: b has no orders left.
    load(warehouse, [version(2, "c@example.com", T0 + HOUR)], "edit")
    publish_customers(warehouse, CONFIG, "p2")
    assert set(customers(warehouse)) == {("a", "a@example.com"), ("a", "c@example.com")}
    assert ids(warehouse)[("a", "c@example.com")] == 3
    load(warehouse, [version(2, "b@example.com", T0 + 2 * HOUR)], "edit back")
    publish_customers(warehouse, CONFIG, "p3")
    assert customers(warehouse)[("a", "b@example.com")]["id"] == id_b
    assert set(customers(warehouse)) == {("a", "a@example.com"), ("a", "b@example.com")}


def test_non_consenting_customers_are_not_published(warehouse):
    load(
        warehouse,
        [
            version(1, "yes@example.com"),
            version(2, "no@example.com", marketing_opt_in=False),
            version(3, "was@example.com", created=T0, marketing_opt_in=True),
            version(4, "was@example.com", created=T0 + 10, marketing_opt_in=False),
        ],
    )
    summary = publish_customers(warehouse, CONFIG, "p1")
    assert set(customers(warehouse)) == {("a", "yes@example.com")}
    assert summary["feeds"]["a"]["customers"] == 1


# --------------------------------------------------------------------------- paging


def test_feed_pages_after_many_incremental_publishes(warehouse):
    rng = random.Random(7)
    n = 3000  # ids 1..3000: several blocks (3 of 1024, 12 of 256)
    config = make_config(_feed("a", giftpro=["1", "2"]))
    consent = {f"c{i:04d}@example.com": True for i in range(n)}
    load(warehouse, [version(i, f"c{i:04d}@example.com", created=T0 + i) for i in range(n)], "history")
    publish_customers(warehouse, config, "p0")
    check_feed_consistent(warehouse, "a")
    email_of_id = {i: e for (f, e), i in ids(warehouse).items()}
    assert max(email_of_id) == n

    next_order = n
    for round_ in range(1, 7):
        changed = T0 + round_ * HOUR
        batch: dict[int, dict] = {}  # one version per order per batch (later writes replace earlier)

        def put(idx, email, batch=batch, changed=changed, **fields):
            batch[idx] = version(idx, email, changed, created=T0 + idx, marketing_opt_in=consent[email], **fields)

        # Withdraw consent in the middle of each block (and of a few random customers).
        middle = [BLOCK * b + BLOCK // 2 + round_ for b in range(n // BLOCK)] + [
            rng.randrange(1, n + 1) for _ in range(40)
        ]
        for i in middle:
            email = email_of_id.get(i)
            if email and email.startswith("c"):
                consent[email] = not consent[email] if round_ % 3 == 0 else False
                put(int(email[1:5]), email)
        # Re-give consent for some of those who withdrew earlier.
        withdrawn = sorted(e for e, ok in consent.items() if not ok)
        for email in rng.sample(withdrawn, k=min(15, len(withdrawn))):
            consent[email] = True
            put(int(email[1:5]), email, total_minor=round_)
        # Amount changes that move nobody.
        for i in rng.sample(range(n), 30):
            email = f"c{i:04d}@example.com"
            put(i, email, total_minor=100 * round_ + i)
        # New customers: they get the highest ids (the last block).
        for _ in range(rng.randrange(0, 60)):
            next_order += 1
            email = f"n{next_order}@example.com"
            consent[email] = True
            batch[next_order] = version(next_order, email, changed, created=changed, domain=rng.choice(["1", "2"]))
        load(warehouse, list(batch.values()), f"r{round_}")
        publish_customers(warehouse, config, f"p{round_}")
        email_of_id = {i: e for (f, e), i in ids(warehouse).items()}
        check_feed_consistent(warehouse, "a", per_pages=(100, 1024, 333) if round_ % 2 else (100,))
        assert {e for (f, e) in customers(warehouse)} == {e for e, ok in consent.items() if ok}

    assert max(email_of_id) > 2 * BLOCK
    incremental = customers(warehouse)
    publish_customers(warehouse, config, "rebuild", full=True)
    assert customers(warehouse) == incremental
    check_feed_consistent(warehouse, "a", per_pages=(250,))


def test_empty_feed_pages(warehouse):
    publish_customers(warehouse, CONFIG, "p0")
    assert feed_page(warehouse, "a", 1, 100) == ([], 0)
    assert feed_total(warehouse, "a") == 0
    load(warehouse, [version(1, "x@example.com", marketing_opt_in=False)])
    publish_customers(warehouse, CONFIG, "p1")
    assert feed_page(warehouse, "a", 1, 100) == ([], 0)
    load(warehouse, [version(1, "x@example.com", T0 + 1)])
    publish_customers(warehouse, CONFIG, "p2")
    rows, total = feed_page(warehouse, "a", 1, 100)
    assert total == 1 and rows[0][1] == "x@example.com"
    assert feed_page(warehouse, "a", 2, 100) == ([], 1)


def test_served_row_shape(warehouse):
    load(
        warehouse,
        [
            version(
                1,
                "ann@example.com",
                created=T0 + 10,
                total_minor=2995,
                phone="+447700900123",
                first_name="Zoë",
                last_name="Brontë",
            ),
            version(
                2,
                "ann@example.com",
                created=T0 + 20,
                successful=False,
                status="Refunded",
                total_minor=0,
                first_name=None,
                last_name=None,
            ),
        ],
    )
    publish_customers(warehouse, CONFIG, "p")
    rows, total = feed_page(warehouse, "a", 1, 10)
    assert total == 1
    assert rows[0] == (
        1,
        "ann@example.com",
        "Zoë",
        "Brontë",
        1,
        2995,
        "GBP",
        "+447700900123",
        "2026-01-01 00:00:10",
        "unknown",
    )


# --------------------------------------------------------------------------- atomicity


def test_crash_between_load_and_publish_loses_nothing(warehouse, monkeypatch):
    load(warehouse, [version(i, f"c{i}@example.com") for i in range(1, 6)])
    publish_customers(warehouse, CONFIG, "p1")
    served_before = walk(warehouse, "a", 2)
    table_before = customers(warehouse)

    load(
        warehouse,
        [
            version(1, "c1@example.com", T0 + HOUR, marketing_opt_in=False),  # leaves
            version(2, "c2@example.com", T0 + HOUR, total_minor=1),  # changes
            version(9, "new@example.com", T0 + HOUR),  # joins
        ],
        "r2",
    )
    pending = dirty(warehouse)
    assert pending == {"c1@example.com", "c2@example.com", "new@example.com"}

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed mid-publish")

    # Midway: after the customer rows were deleted and re-inserted, before the counts are written.
    monkeypatch.setattr(publish_module, "_refresh_meta", crash)
    with pytest.raises(RuntimeError, match="killed"):
        publish_customers(warehouse, CONFIG, "p2")
    assert walk(warehouse, "a", 2) == served_before
    assert customers(warehouse) == table_before
    assert dirty(warehouse) == pending
    assert ("a", "new@example.com") not in ids(warehouse)  # the id allocation rolled back too

    monkeypatch.undo()
    result = publish_customers(warehouse, CONFIG, "p3")
    assert result["recomputed_emails"] == 3
    assert dirty(warehouse) == set()
    now = customers(warehouse)
    assert ("a", "c1@example.com") not in now
    assert now[("a", "c2@example.com")]["total_spent_minor"] == 1
    assert now[("a", "new@example.com")]["id"] == 6
    check_feed_consistent(warehouse, "a")


def test_crash_inside_block_renumbering_keeps_previous_feed(warehouse, monkeypatch):
    load(warehouse, [version(i, f"c{i}@example.com") for i in range(1, 4)])
    publish_customers(warehouse, CONFIG, "p1")
    before = walk(warehouse, "a", 100)
    load(warehouse, [version(2, "c2@example.com", T0 + HOUR, marketing_opt_in=False)], "r2")

    real = publish_module._apply_block_changes

    def half_then_crash(cur, old, new):
        real(cur, old, new)
        raise RuntimeError("killed after renumbering")

    monkeypatch.setattr(publish_module, "_apply_block_changes", half_then_crash)
    with pytest.raises(RuntimeError):
        publish_customers(warehouse, CONFIG, "p2")
    assert walk(warehouse, "a", 100) == before
    assert dirty(warehouse) == {"c2@example.com"}
    monkeypatch.undo()
    publish_customers(warehouse, CONFIG, "p3")
    assert [r[1] for r in walk(warehouse, "a", 100)[0]] == ["c1@example.com", "c3@example.com"]
    check_feed_consistent(warehouse, "a")


def test_readers_see_previous_publish_until_commit(warehouse, monkeypatch):
    import threading

    load(warehouse, [version(i, f"c{i}@example.com") for i in range(1, 4)])
    publish_customers(warehouse, CONFIG, "p1")
    before = walk(warehouse, "a", 2)
    load(
        warehouse,
        [version(2, "c2@example.com", T0 + HOUR, marketing_opt_in=False), version(8, "new@example.com", T0 + HOUR)],
        "r2",
    )

    inside, go = threading.Event(), threading.Event()
    real = publish_module._refresh_meta

    def paused(*args, **kwargs):
        inside.set()
        assert go.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(publish_module, "_refresh_meta", paused)
    errors = []
    worker = threading.Thread(target=lambda: _run(errors, publish_customers, warehouse, CONFIG, "p2"))
    worker.start()
    try:
        assert inside.wait(30)
        assert walk(warehouse, "a", 2) == before  # mid-publish: the previous feed, whole
        assert feed_total(warehouse, "a") == 3
    finally:
        go.set()
        worker.join(60)
    assert errors == []
    after, total = walk(warehouse, "a", 2)
    assert total == 3
    assert [r[1] for r in after] == ["c1@example.com", "c3@example.com", "new@example.com"]


def _run(errors, fn, *args):
    try:
        fn(*args)
    except Exception as exc:  # surfaced by the test thread
        errors.append(exc)


# --------------------------------------------------------------------------- configuration changes


def test_config_change_triggers_full_recompute(warehouse):
    load(
        warehouse,
        [
            version(1, "both@example.com", domain="1", total_minor=100),
            version(2, "both@example.com", domain="2", total_minor=200),
            version(3, "only2@example.com", domain="2"),
            version(4, "only1@example.com", domain="1"),
            version(5, "eur@example.com", domain="3"),
        ],
    )
    publish_customers(warehouse, CONFIG, "p1")
    before_ids = ids(warehouse)
    assert customers(warehouse)[("a", "both@example.com")]["total_spent_minor"] == 300
    assert publish_customers(warehouse, CONFIG, "same config")["full"] is False

    # Domain 2 removed from feed a; nothing loaded, dirty_emails is empty.
    narrower = make_config(_feed("a", giftpro=["1"]), _feed("b", "EUR", giftpro=["3"], tz="Europe/Dublin"))
    assert dirty(warehouse) == set()
    result = publish_customers(warehouse, narrower, "p2")
    assert result["full"] is True
    now = customers(warehouse)
    assert set(now) == {("a", "both@example.com"), ("a", "only1@example.com"), ("b", "eur@example.com")}
    assert now[("a", "both@example.com")]["total_spent_minor"] == 100
    assert {k: r["id"] for k, r in now.items()} == {k: before_ids[k] for k in now}
    assert result["feeds"]["a"]["customers"] == 2
    check_feed_consistent(warehouse, "a")
    assert publish_customers(warehouse, narrower, "p3")["full"] is False

    # A feed dropped from the configuration disappears from the published table and feed_meta.
    only_b = make_config(_feed("b", "EUR", giftpro=["3"], tz="Europe/Dublin"))
    assert publish_customers(warehouse, only_b, "p4")["full"] is True
    assert set(customers(warehouse)) == {("b", "eur@example.com")}
    assert feed_total(warehouse, "a") == 0
    assert feed_page(warehouse, "a", 1, 10) == ([], 0)

    # Adding domain 2 back restores the old customers under their old ids.
    assert publish_customers(warehouse, CONFIG, "p5")["full"] is True
    assert {k: r["id"] for k, r in customers(warehouse).items()} == before_ids
    check_feed_consistent(warehouse, "a")


def test_time_zone_change_recomputes_registered_at(warehouse):
    load(warehouse, [version(1, "x@example.com", created=T0 + 7 * 30 * 86400)])  # summer
    publish_customers(warehouse, CONFIG, "p1")
    london = customers(warehouse)[("a", "x@example.com")]["registered_at"]
    utc = make_config(_feed("a", giftpro=["1", "2"], tz="UTC"), _feed("b", "EUR", giftpro=["3"], tz="Europe/Dublin"))
    assert publish_customers(warehouse, utc, "p2")["full"] is True
    in_utc = customers(warehouse)[("a", "x@example.com")]["registered_at"]
    assert london != in_utc
    assert (
        datetime.strptime(london, "%Y-%m-%d %H:%M:%S").hour
        == (datetime.strptime(in_utc, "%Y-%m-%d %H:%M:%S").hour + 1) % 24
    )


# --------------------------------------------------------------------------- summary


def test_summary_numbers(warehouse):
    load(
        warehouse,
        [
            version(1, "a@example.com", total_minor=1050),
            version(2, "a@example.com", total_minor=999),
            version(3, "a@example.com", successful=False, status="Refunded", total_minor=5000),
            version(4, "b@example.com", domain="2", total_minor=1),
            version(5, "quiet@example.com", total_minor=7777, marketing_opt_in=False),
            version(6, "e@example.com", domain="3", total_minor=12345),
            version(7, "e@example.com", domain="3", total_minor=5),
        ],
    )
    result = publish_customers(warehouse, CONFIG, "p1")
    assert result["full"] is False
    assert result["recomputed_emails"] == 4
    assert result["feeds"]["a"] == {"customers": 2, "orders": 3, "total_spent": 20.50, "currency": "GBP"}
    assert result["feeds"]["b"] == {"customers": 1, "orders": 2, "total_spent": 123.50, "currency": "EUR"}

    load(warehouse, [version(1, "a@example.com", T0 + HOUR, successful=False, status="Refunded", total_minor=0)], "r2")
    result = publish_customers(warehouse, CONFIG, "p2")
    assert result["recomputed_emails"] == 1
    assert result["feeds"]["a"] == {"customers": 2, "orders": 2, "total_spent": 10.00, "currency": "GBP"}
    assert publish_customers(warehouse, CONFIG, "p3", full=True)["feeds"] == result["feeds"]
    assert publish_customers(warehouse, CONFIG, "p4")["recomputed_emails"] == 0


# --------------------------------------------------------------------------- scratch tables


def test_scratch_tables_never_drop_permanent_tables_of_the_same_name(warehouse):
    """load and publish use temporary tables called incoming, winners, work and wanted; a
    permanent table of that name in a shared warehouse schema must survive them."""
    names = ("incoming", "winners", "work", "wanted")
    with warehouse.transaction() as cur:
        for name in names:
            cur.execute(f"CREATE TABLE {name} (keep_me INTEGER)")
            cur.execute(f"INSERT INTO {name} (keep_me) VALUES (42)")
    load(warehouse, [version(1, "a@example.com"), version(2, "b@example.com")])
    publish_customers(warehouse, CONFIG, "p1")
    load(warehouse, [version(1, "a@example.com", T0 + HOUR, total_minor=5)], "r2")
    publish_customers(warehouse, CONFIG, "p2")
    publish_customers(warehouse, CONFIG, "p3", full=True)
    with warehouse.reader() as cur:
        for name in names:
            cur.execute(f"SELECT keep_me FROM {name}")
            assert cur.fetchall() == [(42,)], name
    assert customers(warehouse)[("a", "a@example.com")]["total_spent_minor"] == 5


# --------------------------------------------------------------------------- Different Breed profiles


def test_publish_with_a_profile_without_registration_date(warehouse):
    """Different Breed profiles may lack a registration date; the publish must still go through
    (it used to fail in aggregate_customers when every fetched profile had none)."""
    from include.schema import PROFILE_SCHEMA

    config = make_config(
        {**_feed("a", giftpro=["1"]), "sources": {"giftpro_domains": ["1"], "differentbreed_profiles": ["ev"]}}
    )
    load_orders(
        warehouse,
        table([version(1, "ann@example.com", created=T0 + 100)]),
        [],
        "r1",
        profiles=pa.Table.from_pylist(
            [
                {
                    "source": "differentbreed",
                    "domain": "ev",
                    "customer_ref": "c1",
                    "email_norm": "ann@example.com",
                    "first_name": "Zoë",
                    "last_name": "Brontë",
                    "registered_at": None,
                    "changed_at": datetime.fromtimestamp(T0 + 200, UTC),
                    "version_hash": "p1",
                }
            ],
            schema=PROFILE_SCHEMA,
        ),
    )
    publish_customers(warehouse, config, "p1")
    row = customers(warehouse)[("a", "ann@example.com")]
    assert (row["first_name"], row["last_name"], row["registered_at"]) == ("Zoë", "Brontë", "2026-01-01 00:01:40")
