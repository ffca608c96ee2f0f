"""Incremental = rebuild, as a property.

Hypothesis draws a source history (new orders over several domains and feeds, then refunds,
email edits, consent flips, name / phone / amount changes, each a new version with a later
``changed_at``; Different Breed customer profiles with their own edits) and a messy load schedule
(random overlapping batches, some repeated, in any order, domain rebuilds with
``replace_domains`` and customers deleted at the source in between, with incremental or full
publishes after random loads). After one final publish the published table must equal

* a fresh warehouse loaded once with only the final version of every order and profile (of the
  customers not deleted) and published with ``full=True``, and
* an oracle written here in plain Python from those final versions (no pandas, no
  `aggregate_customers`).

Ids may legitimately differ between the two warehouses (they depend on the order customers were
first seen), so ids are compared as the set of (feed, email) that hold one; within the
incremental warehouse an id, once given, must always name the same email.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from unittest import mock
from zoneinfo import ZoneInfo

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.config import FeedConfig
from include.schema import ORDER_SCHEMA, PROFILE_SCHEMA
from include.sources.normalize import normalize_email, version_hash
from include.warehouse import Warehouse, publish
from include.warehouse.feed_reads import feed_page, feed_total
from include.warehouse.order_state import load_orders
from include.warehouse.publish import publish_customers

# 2026-10-25 00:00 UTC: created_at values straddle the October clock change (01:00 UTC).
T0 = int(datetime(2026, 10, 25, tzinfo=UTC).timestamp())

FEEDS = {
    # name: (currency, time zone, giftpro domains, differentbreed profiles)
    "north": ("GBP", "Europe/London", ["1", "2"], ["ev"]),
    "west": ("GBP", "Europe/Dublin", ["2", "3"], []),  # domain 2 is in two feeds
    "euro": ("EUR", "Europe/Dublin", ["4"], []),
}
DOMAIN_CURRENCY = {
    ("giftpro", "1"): "GBP",
    ("giftpro", "2"): "GBP",
    ("giftpro", "3"): "GBP",
    ("giftpro", "4"): "EUR",
    ("giftpro", "9"): "GBP",  # domain 9: in no feed
    ("differentbreed", "ev"): "GBP",
}

CONFIG = FeedConfig.model_validate(
    {
        "feeds": [
            {
                "name": name,
                "token_env": f"TOKEN_{name.upper()}",
                "currency": cur,
                "store": {
                    "name": name,
                    "currency": cur,
                    "time_zone": tz,
                    "email": "shop@example.com",
                    "country": "X",
                    "country_code": "XX",
                },
                "sources": {"giftpro_domains": gp, "differentbreed_profiles": db},
            }
            for name, (cur, tz, gp, db) in FEEDS.items()
        ]
    }
)

# Raw addresses as sources send them; several normalise to the same customer.
RAW_EMAILS = [
    "ann@example.com",
    " Ann@Example.com",
    "ANN@EXAMPLE.COM ",
    "bob@example.com",
    "\tBob@example.COM",
    "cy@example.org",
    "dee@example.net",
    " DEE@example.net",
    "eve@example.com",
    "fay@example.com",
    "gus@example.com",
    "hal@example.com",
    " Ivy@Example.com",
]
FIRST_NAMES = [None, "Ann", "Zoë", "Bob", "Séan"]
LAST_NAMES = [None, "Lee", "Ó Briain", "Smith"]
PHONES = [None, "+447700900001", "+353851234567"]
CUST_REFS = ["c1", "c2", "c3"]  # Different Breed cust_ids


def _version(state: dict, changed: int) -> dict:
    record = {
        "source": state["source"],
        "domain": state["domain"],
        "order_id": state["order_id"],
        "email_norm": normalize_email(state["raw_email"]),
        "created_at": state["created_at"],
        "changed_at": changed,
        "status": "Complete" if state["successful"] else "Refunded",
        "successful": state["successful"],
        # A refund leaves the order's amount as it was: the aggregation must not count it.
        "total_minor": state["total"],
        "currency": DOMAIN_CURRENCY[(state["source"], state["domain"])],
        # No surname without a first name: whether such an order counts as "named" is not settled
        # (the aggregation takes names from the latest order with a first name).
        "first_name": state["first_name"],
        "last_name": state["last_name"] if state["first_name"] else None,
        "phone": state["phone"],
        "marketing_opt_in": state["opt_in"],
        "customer_ref": state["customer_ref"],
    }
    return {**record, "kind": "order", "version_hash": version_hash(record)}


def _profile_version(state: dict, changed: int) -> dict:
    record = {
        "source": "differentbreed",
        "domain": "ev",
        "customer_ref": state["customer_ref"],
        "email_norm": normalize_email(state["raw_email"]),
        "first_name": state["first_name"],
        "last_name": state["last_name"] if state["first_name"] else None,
        "registered_at": state["registered_at"],
        "changed_at": changed,
    }
    return {**record, "kind": "profile", "version_hash": version_hash(record)}


@st.composite
def histories(draw) -> list[dict]:
    """Every version of every order (in creation order of the versions)."""
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(DOMAIN_CURRENCY)), st.integers(1, 5)),
            min_size=1,
            max_size=10,
            unique=True,
        )
    )
    versions = []
    for (source, domain), oid in keys:
        state = {
            "source": source,
            "domain": domain,
            "order_id": str(oid),
            # Half-hour steps over three hours: ties on created_at and the repeated hour.
            "created_at": T0 + 1800 * draw(st.integers(0, 6)),
            "raw_email": draw(st.sampled_from(RAW_EMAILS)),
            "successful": draw(st.booleans()),
            "total": draw(st.integers(0, 50_000)),
            "first_name": draw(st.sampled_from(FIRST_NAMES)),
            "last_name": draw(st.sampled_from(LAST_NAMES)),
            "phone": draw(st.sampled_from(PHONES)),
            "opt_in": draw(st.booleans()),
            "customer_ref": draw(st.sampled_from(CUST_REFS)) if source == "differentbreed" else None,
        }
        changed = state["created_at"] + draw(st.integers(0, 600))
        versions.append(_version(state, changed))
        for _ in range(draw(st.integers(0, 4))):
            event = draw(
                st.sampled_from(["refund", "unrefund", "email", "email", "consent", "name", "phone", "amount"])
            )
            if event == "refund":
                state["successful"] = False
            elif event == "unrefund":
                state["successful"] = True
            elif event == "email":
                state["raw_email"] = draw(st.sampled_from(RAW_EMAILS))
            elif event == "consent":
                state["opt_in"] = not state["opt_in"]
            elif event == "name":
                state["first_name"] = draw(st.sampled_from(FIRST_NAMES))
                state["last_name"] = draw(st.sampled_from(LAST_NAMES))
            elif event == "phone":
                state["phone"] = draw(st.sampled_from(PHONES))
            else:
                state["total"] = draw(st.integers(0, 50_000))
            changed += draw(st.integers(1, 7200))
            versions.append(_version(state, changed))
    for ref in draw(st.lists(st.sampled_from(CUST_REFS), max_size=3, unique=True)):
        state = {
            "customer_ref": ref,
            "raw_email": draw(st.sampled_from(RAW_EMAILS)),
            "first_name": draw(st.sampled_from(FIRST_NAMES)),
            "last_name": draw(st.sampled_from(LAST_NAMES)),
            "registered_at": draw(st.one_of(st.none(), st.integers(-3, 6).map(lambda k: T0 + 1800 * k))),
        }
        changed = T0 + draw(st.integers(0, 3 * 3600))
        versions.append(_profile_version(state, changed))
        for _ in range(draw(st.integers(0, 3))):
            event = draw(st.sampled_from(["email", "name", "registered"]))
            if event == "email":
                state["raw_email"] = draw(st.sampled_from(RAW_EMAILS))
            elif event == "name":
                state["first_name"] = draw(st.sampled_from(FIRST_NAMES))
                state["last_name"] = draw(st.sampled_from(LAST_NAMES))
            else:
                state["registered_at"] = draw(st.one_of(st.none(), st.integers(-3, 6).map(lambda k: T0 + 1800 * k)))
            changed += draw(st.integers(1, 7200))
            versions.append(_profile_version(state, changed))
    return versions


def _tables(rows: list[dict]) -> tuple[pa.Table, pa.Table]:
    """(orders, profiles) as the staged files hold them."""

    def ts(v):
        return None if v is None else datetime.fromtimestamp(v, UTC)

    stamps = ("created_at", "changed_at", "registered_at")
    clean = [{k: ts(v) if k in stamps else v for k, v in r.items() if k != "kind"} for r in rows]
    orders = [c for c, r in zip(clean, rows) if r["kind"] == "order"]
    profiles = [c for c, r in zip(clean, rows) if r["kind"] == "profile"]
    return pa.Table.from_pylist(orders, schema=ORDER_SCHEMA), pa.Table.from_pylist(profiles, schema=PROFILE_SCHEMA)


def _key(record: dict) -> tuple:
    ident = record["order_id"] if record["kind"] == "order" else record["customer_ref"]
    return record["kind"], record["source"], record["domain"], ident


def _final_versions(versions: list[dict]) -> list[dict]:
    final: dict[tuple, dict] = {}
    for v in versions:
        if _key(v) not in final or v["changed_at"] > final[_key(v)]["changed_at"]:
            final[_key(v)] = v
    return list(final.values())


def _deleted(record: dict, deleted: set[str]) -> bool:
    return record["source"] == "differentbreed" and record["customer_ref"] in deleted


def oracle(final: list[dict]) -> dict[tuple[str, str], tuple]:
    """The published rows, straight from the rules: counts and money from successful orders,
    consent from the latest order (created_at, then source, domain, order_id), phone from the
    latest order with one, names from the latest named order (by created_at) or profile (by its
    changed_at; a profile wins a tie), registered_at the earliest of the first order and the
    profiles' registrations. A customer exists once it has an order in the feed."""

    def feeds_of(record):
        for feed, (currency, _tz, gp, db) in FEEDS.items():
            if record["domain"] in (gp if record["source"] == "giftpro" else db):
                if record["kind"] == "profile" or record["currency"] == currency:
                    yield feed

    orders_of: dict[tuple[str, str], list[dict]] = {}
    profiles_of: dict[tuple[str, str], list[dict]] = {}
    for record in final:
        for feed in feeds_of(record):
            target = orders_of if record["kind"] == "order" else profiles_of
            target.setdefault((feed, record["email_norm"]), []).append(record)
    out = {}
    for (feed, email), orders in orders_of.items():
        currency, tz, _, _ = FEEDS[feed]
        profiles = profiles_of.get((feed, email), [])

        def recency(o):
            return (o["created_at"], o["source"], o["domain"], o["order_id"])

        if not max(orders, key=recency)["marketing_opt_in"]:
            continue
        named = [((o["created_at"], 0, o["source"], o["domain"], o["order_id"]), o) for o in orders if o["first_name"]]
        named += [
            ((p["changed_at"], 1, p["source"], p["domain"], p["customer_ref"]), p) for p in profiles if p["first_name"]
        ]
        name = max(named, key=lambda n: n[0])[1] if named else None
        phoned = [o for o in orders if o["phone"]]
        first = min(
            [o["created_at"] for o in orders] + [p["registered_at"] for p in profiles if p["registered_at"] is not None]
        )
        out[(feed, email)] = (
            name["first_name"] if name else "",
            (name["last_name"] or "") if name else "",
            sum(1 for o in orders if o["successful"]),
            sum(o["total_minor"] for o in orders if o["successful"]),
            currency,
            max(phoned, key=recency)["phone"] if phoned else None,
            datetime.fromtimestamp(first, UTC).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S"),
            "unknown",
        )
    return out


_COMPARED = "first_name, last_name, orders_count, total_spent_minor, currency, phone, registered_at, gender"


def published(wh: Warehouse) -> dict[tuple[str, str], tuple]:
    with wh.reader() as cur:
        cur.execute(f"SELECT feed, email, {_COMPARED} FROM customers")
        return {(r[0], r[1]): tuple(r[2:]) for r in cur.fetchall()}


def id_map(wh: Warehouse) -> dict[tuple[str, int], str]:
    with wh.reader() as cur:
        cur.execute("SELECT feed, id, email FROM customers")
        return {(f, i): e for f, i, e in cur.fetchall()}


@st.composite
def schedules(draw, versions: list[dict]):
    """Batches of version indices and what to do after each load (nothing, publish, or a full
    publish). Either consecutive windows in changed_at order, as scheduled runs see them (each
    reaching back over a few versions of the previous one), or random overlapping subsets; then
    some batches are repeated and the order is disturbed; a rebuild of a domain (its whole state
    at that moment, loaded with replace_domains) and deletions of Different Breed customers may
    come anywhere in between."""
    n = len(versions)
    if draw(st.sampled_from(["windows", "windows", "windows", "subsets"])) == "windows":
        by_change = sorted(range(n), key=lambda i: versions[i]["changed_at"])
        cuts = sorted(draw(st.sets(st.integers(1, max(1, n - 1)), max_size=6)) - {n})
        bounds = [0, *cuts, n]
        batches = [by_change[max(0, a - draw(st.integers(0, 2))) : b] for a, b in zip(bounds, bounds[1:])]
    else:
        batches = [
            draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True)) for _ in range(draw(st.integers(1, 5)))
        ]
        for i in sorted(set(range(n)) - set().union(*map(set, batches))):
            batches[draw(st.integers(0, len(batches) - 1))].append(i)
    for _ in range(draw(st.integers(0, 3))):  # re-runs of a batch, anywhere later or earlier
        batches.insert(draw(st.integers(0, len(batches))), list(batches[draw(st.integers(0, len(batches) - 1))]))
    for _ in range(draw(st.integers(0, 2))):  # backfills out of order
        i, j = draw(st.integers(0, len(batches) - 1)), draw(st.integers(0, len(batches) - 1))
        batches[i], batches[j] = batches[j], batches[i]
    steps: list[tuple] = [("load", batch) for batch in batches]
    # Rebuilds of one domain from the source's state at that moment (replace_domains).
    for _ in range(draw(st.integers(0, 2))):
        rebuild = ("rebuild", draw(st.sampled_from(sorted(DOMAIN_CURRENCY))), draw(st.integers(0, 3 * 3600)))
        steps.insert(draw(st.integers(0, len(steps))), rebuild)
    # Different Breed customers deleted at the source: from then on no extract returns them and
    # their staged records are purged, so later loads never see them again.
    for ref in draw(st.lists(st.sampled_from(CUST_REFS), max_size=2, unique=True)):
        steps.insert(draw(st.integers(0, len(steps))), ("delete", ref))
    after = draw(
        st.lists(
            st.sampled_from([None, None, "publish", "publish", "publish", "full"]),
            min_size=len(steps),
            max_size=len(steps),
        )
    )
    return [(*step, then) for step, then in zip(steps, after)]


def _source_state(versions: list[dict], source_domain: tuple[str, str], as_of: int) -> list[dict]:
    """What a full-history extract of one domain returns at `as_of`: each order's and profile's
    latest version by then (records not yet created are absent)."""
    return _final_versions(
        [v for v in versions if (v["source"], v["domain"]) == source_domain and v["changed_at"] <= as_of]
    )


# 60 histories in the full suite; fewer under `make check`'s profile (tests/conftest.py).
@settings(
    max_examples=min(60, settings.default.max_examples),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_incremental_runs_equal_rebuild_and_oracle(data):
    versions = data.draw(histories(), label="versions")
    plan = data.draw(schedules(versions), label="schedule")
    deleted = {what for kind, what, *_ in plan if kind == "delete"}
    final = [v for v in _final_versions(versions) if not _deleted(v, deleted)]

    with tempfile.TemporaryDirectory() as tmp:
        inc = Warehouse(f"sqlite:///{tmp}/incremental.db")
        inc.create_schema()
        seen_ids: dict[tuple[str, int], str] = {}  # (feed, id) -> email, as ever published
        given_ids: dict[tuple[str, str], int] = {}  # (feed, email) -> id, as ever allocated

        def check_ids():
            for key, email in id_map(inc).items():
                assert seen_ids.setdefault(key, email) == email, f"id {key} reused for another email"
            with inc.reader() as cur:
                cur.execute("SELECT feed, email_norm, id FROM customer_ids")
                for feed, email, id_ in cur.fetchall():
                    assert given_ids.setdefault((feed, email), id_) == id_, f"({feed}, {email}) changed id"

        loaded_until, gone = T0, set()
        for n, (kind, what, *extra, after) in enumerate(plan):
            if kind == "load":
                batch = [versions[i] for i in what if not _deleted(versions[i], gone)]
                orders, profiles = _tables(batch)
                load_orders(inc, orders, [], f"load-{n}", profiles=profiles)
                loaded_until = max([loaded_until] + [v["changed_at"] for v in batch])
            elif kind == "rebuild":
                # A rebuild sees the source now: at least as late as everything loaded so far.
                loaded_until += extra[0]
                snapshot = [v for v in _source_state(versions, what, loaded_until) if not _deleted(v, gone)]
                orders, profiles = _tables(snapshot)
                load_orders(inc, orders, [], f"rebuild-{n}", replace_domains=[what], profiles=profiles)
            else:
                gone.add(what)
                orders, profiles = _tables([])
                load_orders(inc, orders, [], f"delete-{n}", deleted=[("differentbreed", "ev", what)])
            if after:
                publish_customers(inc, CONFIG, f"publish-{n}", full=after == "full")
                check_ids()
        summary = publish_customers(inc, CONFIG, "final")
        assert summary["full"] is False
        check_ids()

        ref = Warehouse(f"sqlite:///{tmp}/rebuild.db")
        ref.create_schema()
        orders, profiles = _tables(final)
        load_orders(ref, orders, [], "once", profiles=profiles)
        # The reference rebuild runs the rules in partitions of the email key space of (at
        # most) three orders each: partitioned and whole agree with the oracle alike.
        with mock.patch.object(publish, "PARTITION_ORDERS", 3):
            rebuild = publish_customers(ref, CONFIG, "rebuild", full=True)
        assert rebuild["timings"]["partitions"] == max(1, -(-orders.num_rows // 3))

        got, rebuilt, expected = published(inc), published(ref), oracle(final)
        assert got == rebuilt
        assert got == expected
        assert {(f, e) for (f, _), e in id_map(inc).items()} == {(f, e) for (f, _), e in id_map(ref).items()}
        with inc.reader() as cur:
            cur.execute("SELECT COUNT(*) FROM dirty_emails")
            assert cur.fetchone()[0] == 0
        # The feed serves exactly the published rows, once each, in id order.
        for feed in FEEDS:
            ids = sorted(i for (f, i) in id_map(inc) if f == feed)
            served, page = [], 1
            while rows := feed_page(inc, feed, page, 3)[0]:
                served += [r[0] for r in rows]
                page += 1
            assert served == ids
            assert feed_total(inc, feed) == len(ids)
        inc.close()
        ref.close()
