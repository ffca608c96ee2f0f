"""The fault matrix: every fault of "fail closed" and the sandboxes' own, driven through the real
extract -> load -> publish path against both sandboxes over HTTP, each scored against the
sandboxes' independent ground truth. It prints the table the README carries:

    fault | outcome | orders lost | orders double-counted | opted-out customers published

and asserts the three zeros for every row (and that the served feed equals the ground truth).

* **retried**: the HTTP layer retried and the run completed;
* **quarantined**: the record went to quarantine with its reason, the run completed;
* **read strictly**: an odd spelling was read for what it means ("false" is no consent);
* **failed loudly**: the run (or the service's start) stopped with a clear error; the previous
  feed stayed as it was, and the run after the fault cleared completed it;
* **stopped by the guard**: the load or publish would have removed more than ``guard.max_drop_share``
  of a feed or source domain; nothing was committed, the previous feed stayed, and the run that
  followed (the source fixed, or the real change confirmed) completed it;
* **refused (JSON 4xx/503)**: the feed service answered the request with its JSON error.

An order is *lost* when the ground truth counts it but the order state does not hold it as a
successful order of that email; *double-counted* when a served customer counts more orders than
the ground truth; a quarantined order is accounted for, not lost.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from include.config import DEFAULT_CONFIG_PATH, ConfigError, check_tokens, load_config
from include.feed_service import create_app
from include.guard import MassChangeError
from include.pipeline import (
    extract_differentbreed,
    extract_giftpro,
    load_extracts,
    plan_differentbreed,
    plan_giftpro,
    publish,
    resolve_window,
)
from include.sources.http import SourceHttp, SourceHttpError
from include.warehouse import Warehouse
from include.warehouse.feed_reads import feed_page
from sandbox import differentbreed, giftpro
from sandbox.compare import feed_differences
from sandbox.truth import expected_customers

FIRST_END = datetime(2026, 11, 2, 0, tzinfo=UTC)  # the first run loads the whole seeded history
SECOND_END = FIRST_END + timedelta(hours=1)  # the run the fault hits
IN_WINDOW = FIRST_END + timedelta(minutes=20)
TOKENS = {"CONVERTEDIN_TOKEN_AMPRESS": "matrix-ampress", "CONVERTEDIN_TOKEN_SEAVIEW": "matrix-seaview"}
KEYS = ("id", "email", "first_name", "last_name", "orders_count", "total_spent", "currency", "phone", "registered_at")


@dataclass
class Stack:
    gp: giftpro.GiftProStore
    db: differentbreed.DifferentBreedStore
    config_path: Path
    wh: Warehouse
    staging: str
    tmp: Path
    stats: dict = field(default_factory=dict)

    @property
    def config(self):
        return load_config(self.config_path)


@pytest.fixture
def make_stack(tmp_path_factory, monkeypatch):
    """A fresh pair of seeded sandboxes, a warehouse and staging, after one full first run."""
    servers = []
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    # Retries back off in tens of milliseconds here (the rules are the same, the waits shorter).
    monkeypatch.setitem(SourceHttp.__init__.__kwdefaults__, "backoff", 0.02)

    def make() -> Stack:
        tmp = tmp_path_factory.mktemp("matrix")
        gp_store = giftpro.seed_store(seed=5, orders=150)
        db_store, listed = differentbreed.seed_store(seed=42, customers=16)
        gp_server, db_server = giftpro.serve_in_thread(gp_store), differentbreed.serve_in_thread(db_store)
        servers.extend([gp_server, db_server])
        customers = tmp / "customers.csv"
        differentbreed.write_customer_list(customers, db_store.profile, listed)
        config_path = tmp / "feeds.yaml"
        config_path.write_text(
            DEFAULT_CONFIG_PATH.read_text().replace("config/differentbreed_customers.csv", str(customers))
        )
        http = {"conn_type": "http", "extra": {"timeout": 1}}
        monkeypatch.setenv(
            "AIRFLOW_CONN_GIFTPRO_DEFAULT", json.dumps({**http, "host": gp_server.url, "password": "gp_sandbox_key"})
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_DIFFERENTBREED_DEFAULT",
            json.dumps({**http, "host": f"{db_server.url}/client/api/v1", "password": "db_sandbox_key"}),
        )
        wh = Warehouse(f"sqlite:///{tmp / 'wh.db'}")
        wh.create_schema()
        stack = Stack(gp_store, db_store, config_path, wh, f"file://{tmp / 'staging'}", tmp)
        run(stack, FIRST_END)
        return stack

    yield make
    for server in servers:
        server.stop()


def run(stack: Stack, end: datetime, config=None, rebuild: bool = False, confirm: bool = False) -> dict:
    """One run of the DAG's steps for the hour ending at `end`, as the tasks call them."""
    config = config or stack.config
    params = {"start": (end - timedelta(hours=1)).isoformat(), "end": end.isoformat(), "rebuild": rebuild}
    window = resolve_window(params, None, None, None)
    extracts = [extract_giftpro(s, config, stack.staging) for s in plan_giftpro(config, stack.wh, window)]
    extracts += [
        extract_differentbreed(s, config, stack.staging) for s in plan_differentbreed(config, stack.wh, window)
    ]
    loaded = load_extracts(stack.wh, extracts, f"run-{end:%H}", rebuild, stack.staging, config, confirm)
    publish(stack.wh, config, f"run-{end:%H}", rebuild, confirm)
    stack.stats = {
        "retries": sum(e.stats.retries for e in extracts),
        "quarantined": loaded.quarantined,
    }
    return stack.stats


def served(stack: Stack) -> dict[str, list[dict]]:
    out = {}
    for feed in stack.config.feeds:
        rows, _ = feed_page(stack.wh, feed.name, 1, 100_000)
        currency_places = 0 if feed.currency in ("JPY",) else 2
        out[feed.name] = [
            {**dict(zip(KEYS, (*r[:5], round(r[5] / 10**currency_places, currency_places), *r[6:9]))), "gender": r[9]}
            for r in rows
        ]
    return out


def score(stack: Stack) -> tuple[int, int, int, list[str]]:
    """(orders lost, orders double-counted, opted-out customers published, differences)."""
    config = stack.config
    orders: dict = {}
    db = stack.db.dump()
    truth = expected_customers(config, stack.gp.dump(), db["customers"], db["orders"], stack.db.profile, orders)
    with stack.wh.reader() as cur:
        cur.execute("SELECT source, domain, order_id, email_norm, successful FROM order_state")
        state = {(s, d, o): (e, bool(ok)) for s, d, o, e, ok in cur.fetchall()}
    lost = sum(1 for (_, s, d, o), (email, ok, _, _) in orders.items() if ok and state.get((s, d, o)) != (email, True))
    doubled = opted_out = 0
    differences = []
    for name, rows in served(stack).items():
        for row in rows:
            expected = truth.get((name, row["email"]))
            doubled += max(0, row["orders_count"] - (expected["orders_count"] if expected else 0))
            opted_out += expected is None or not expected["accepts_marketing"]
        differences += feed_differences(rows, truth, config, name)
    return lost, doubled, opted_out, differences


# -- the faults


def new_orders(stack: Stack, n: int = 3) -> None:
    """A few ordinary changes in the faulted window, so the run has something to fetch."""
    for k in range(n):
        stack.gp.add_order(
            domainID=[3521, 4101, 3522][k % 3],
            dateCreated=IN_WINDOW + timedelta(minutes=k),
            emailAddress=f"matrix{k}@example.com",
            marketingOptedIn=True,
            customerName="Matrix Buyer",
        )
    cust_id = next(iter(stack.db.customers))
    stack.db.add_order(cust_id, IN_WINDOW, order_id="ord_matrix_new", marketing_opt_in=True)


def latest_gp_order(stack: Stack, **fields) -> None:
    """A new latest order for a published customer, with the given raw values."""
    published = {r["email"] for r in served(stack)["ampress"]}
    email = sorted(published)[len(fields) % len(published)]
    stack.gp.add_order(
        domainID=3521,
        dateCreated=IN_WINDOW,
        emailAddress=email,
        customerName="Odd Value",
        **{"marketingOptedIn": True, "total": 30.0, **fields},
    )


def latest_db_order(stack: Stack, **fields) -> None:
    cust_id = sorted(stack.db.customers)[2 + len(fields)]
    order = stack.db.add_order(cust_id, IN_WINDOW, order_id=f"ord_matrix_{'_'.join(sorted(fields))}")
    stack.db.update_order(order["order_id"], IN_WINDOW, **fields)  # any fields, as the source sends them


def transport(source: str, kind: str, count: int = 1, value: float = 0):
    def inject(stack: Stack):
        new_orders(stack)
        (stack.gp if source == "giftpro" else stack.db).faults.add(kind, count, value)

    return inject


def drift_missing(stack: Stack):
    latest_gp_order(stack)
    with stack.gp.lock:
        newest = max(stack.gp.orders)
        del stack.gp.orders[newest]["marketingOptedIn"], stack.gp.orders[newest]["refunded"]
    latest_db_order(stack, marketing_opt_in=True)
    with stack.db.lock:
        del stack.db.orders[max(stack.db.orders, key=lambda o: stack.db.orders[o]["updated_at"])]["status"]


def bad_config(change):
    def make(stack: Stack) -> Path:
        data = yaml.safe_load(stack.config_path.read_text())
        change(data)
        path = stack.tmp / "bad.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return make


SOURCE_FAULTS = [
    ("GiftPro 429 with Retry-After (x2)", transport("giftpro", "429", 2, 0.05)),
    ("GiftPro 500 (x2)", transport("giftpro", "500", 2)),
    ("GiftPro 503", transport("giftpro", "503")),
    ("GiftPro timeout (answer after 2 s, client waits 1 s)", transport("giftpro", "delay", 1, 2)),
    ("GiftPro truncated JSON", transport("giftpro", "malformed")),
    ("GiftPro HTML error page (502)", transport("giftpro", "html")),
    ("GiftPro HTML page with 200", transport("giftpro", "html200")),
    ("Different Breed 429", transport("differentbreed", "429", 1, 0.05)),
    ("Different Breed 503 (x2)", transport("differentbreed", "503", 2)),
    ("Different Breed timeout", transport("differentbreed", "delay", 1, 2)),
    ("Different Breed truncated JSON", transport("differentbreed", "malformed")),
    ("Different Breed HTML error page", transport("differentbreed", "html")),
    (
        "schema drift: extra fields (both sources)",
        lambda s: (
            latest_gp_order(s, loyaltyTier="gold", giftAid={"x": 1}),
            latest_db_order(s, seat_map=[1, 2], venue_code="A1"),
        ),
    ),
    ("schema drift: missing consent/refunded/status", drift_missing),
    (
        "schema drift: numbers as strings",
        lambda s: (latest_gp_order(s, total="45.50"), latest_db_order(s, total="35.00")),
    ),
    ('GiftPro marketingOptedIn "false"', lambda s: latest_gp_order(s, marketingOptedIn="false")),
    ('GiftPro marketingOptedIn "0"', lambda s: latest_gp_order(s, marketingOptedIn="0")),
    ('GiftPro refunded "no"', lambda s: latest_gp_order(s, refunded="no")),
    ('GiftPro status "complete" (case)', lambda s: latest_gp_order(s, status="complete")),
    ("GiftPro negative total", lambda s: latest_gp_order(s, total=-30.0)),
    ('GiftPro marketingOptedIn "maybe"', lambda s: latest_gp_order(s, marketingOptedIn="maybe")),
    ('Different Breed marketing_opt_in "false"', lambda s: latest_db_order(s, marketing_opt_in="false")),
    ('Different Breed status "PAID" (case)', lambda s: latest_db_order(s, status="PAID")),
    ("Different Breed negative total", lambda s: latest_db_order(s, total=-35.0)),
]

CONFIG_FAULTS = [
    (
        "config: domain in two feeds, two currencies",
        bad_config(lambda d: d["feeds"][1]["sources"]["giftpro_domains"].append(3521)),
    ),
    ("config: store currency differs from feed's", bad_config(lambda d: d["feeds"][0]["store"].update(currency="EUR"))),
    ("config: feeds: []", bad_config(lambda d: d.update(feeds=[]))),
    ("config: unknown time zone", bad_config(lambda d: d["feeds"][1]["store"].update(time_zone="Europe/Lndon"))),
]


def guarded(stack: Stack, change=lambda d: None) -> Path:
    """The stack's configuration with the guard on for feeds and domains of its (small) size."""
    return bad_config(lambda d: (d.update(guard={"max_drop_share": 0.1, "min_customers_for_guard": 5}), change(d)))(
        stack
    )


def _outcome(stats: dict, before: dict, strict: bool) -> str:
    if stats["retries"]:
        return "retried"
    if stats["quarantined"] > before["quarantined"]:
        return "quarantined"
    return "read strictly" if strict else "completed"


def test_fault_matrix(make_stack, capsys, monkeypatch):
    rows = []

    def record(fault: str, outcome: str, stack: Stack):
        lost, doubled, opted_out, differences = score(stack)
        rows.append((fault, outcome, lost, doubled, opted_out, differences))

    for fault, inject in SOURCE_FAULTS:
        stack = make_stack()
        quiet = run(stack, SECOND_END)  # the same hour without the fault, for the quarantine baseline
        inject(stack)
        stats = run(stack, SECOND_END)
        record(fault, _outcome(stats, quiet, strict='"' in fault or "strings" in fault or "extra" in fault), stack)

    # A fault that outlasts every retry: the run fails loudly, the previous feed stays; the next
    # run after the fault clears completes everything.
    stack = make_stack()
    new_orders(stack)
    before = served(stack)
    stack.gp.faults.add("503", 100)
    with pytest.raises(SourceHttpError, match="gave up after"):
        run(stack, SECOND_END)
    assert served(stack) == before
    stack.gp.faults.clear()
    run(stack, SECOND_END)
    record("GiftPro 503 on every attempt (outage)", "failed loudly; next run complete", stack)

    # Different Breed answering 404 everywhere (a wrong base path): no customer is taken for
    # deleted; the extract retries, then fails; the next run with the right URL completes.
    stack = make_stack()
    new_orders(stack)
    before = served(stack)
    right = json.loads(os.environ["AIRFLOW_CONN_DIFFERENTBREED_DEFAULT"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_DIFFERENTBREED_DEFAULT", json.dumps({**right, "host": right["host"].replace("v1", "v2")})
    )
    with pytest.raises(SourceHttpError, match="not the API's own answer"):
        run(stack, SECOND_END)
    assert served(stack) == before
    monkeypatch.setenv("AIRFLOW_CONN_DIFFERENTBREED_DEFAULT", json.dumps(right))
    run(stack, SECOND_END)
    record("Different Breed 404 everywhere (wrong base path)", "failed loudly (retried); nothing deleted", stack)

    # A real mass deletion at the source: stopped until confirmed.
    stack = make_stack()
    before = served(stack)
    for cust_id in sorted(stack.db.customers)[:6]:
        stack.db.delete_customer(cust_id)
    with pytest.raises(MassChangeError, match="customers deleted at the source"):
        run(stack, SECOND_END, config=load_config(guarded(stack)))
    assert served(stack) == before
    run(stack, SECOND_END, config=load_config(guarded(stack)), confirm=True)
    record("Different Breed deletes 6 of 15 customers", "stopped by the guard; confirmed run complete", stack)

    # A rebuild whose GiftPro source comes back empty (another account's key, a wrong domain):
    # it must not wipe the feed. Either the load's guard stops it, or (when the history probe
    # finds nothing to slice) no GiftPro domain is replaced at all; the next rebuild completes.
    stack = make_stack()
    before, orders = served(stack), dict(stack.gp.orders)
    with stack.gp.lock:
        stack.gp.orders.clear()
    try:
        run(stack, SECOND_END, config=load_config(guarded(stack)), rebuild=True)
        outcome = "nothing replaced"
    except MassChangeError as exc:
        assert "rebuild of giftpro domain" in str(exc)
        outcome = "stopped by the guard"
    assert served(stack) == before
    with stack.gp.lock:
        stack.gp.orders.update(orders)
    run(stack, SECOND_END, config=load_config(guarded(stack)), rebuild=True)
    record("GiftPro rebuild with an empty source", f"{outcome}; next rebuild complete", stack)

    # Wrong domainIDs in the configuration: the feed would lose its GiftPro customers.
    stack = make_stack()
    before = served(stack)
    wrong = guarded(stack, lambda d: d["feeds"][0]["sources"].update(giftpro_domains=[5521, 5522, 5523]))
    with pytest.raises(MassChangeError, match="feed 'ampress'"):
        run(stack, SECOND_END, config=load_config(wrong))
    assert served(stack) == before
    run(stack, SECOND_END, config=load_config(guarded(stack)))
    record("config: wrong GiftPro domainIDs", "stopped by the guard; next run (fixed) complete", stack)

    for fault, make_bad in CONFIG_FAULTS:
        stack = make_stack()
        new_orders(stack)
        before = served(stack)
        with pytest.raises(ConfigError) as raised:
            run(stack, SECOND_END, config=load_config(make_bad(stack)))
        assert re.search(r"feeds(\[\d\]\.[a-z_.]+)?: ", str(raised.value)), str(raised.value)
        assert served(stack) == before
        run(stack, SECOND_END)
        record(fault, "failed loudly (no retry); next run complete", stack)

    stack = make_stack()
    with pytest.raises(ConfigError, match="same token"):
        check_tokens(stack.config, {**TOKENS, "CONVERTEDIN_TOKEN_SEAVIEW": TOKENS["CONVERTEDIN_TOKEN_AMPRESS"]})
    with pytest.raises(ConfigError, match="window is empty"):
        resolve_window({"start": SECOND_END.isoformat(), "end": FIRST_END.isoformat()}, None, None, None)
    record("config: two feeds with one token value", "failed loudly (service refuses to start)", stack)
    record("empty window", "failed loudly (no retry)", stack)

    # The feed service: odd requests are refused with the JSON error and change nothing.
    client = TestClient(create_app(stack.config, stack.wh), raise_server_exceptions=False)
    token = TOKENS["CONVERTEDIN_TOKEN_AMPRESS"]
    requests = [
        (
            "feed service: page '--1', '①', '٣', 5,000 digits",
            [{"token": token, "page": p} for p in ("--1", "①", "٣", "9" * 5000)],
            400,
        ),
        ("feed service: nested JSON", [('{"a":' * 1200) + "1" + "}" * 1200], 400),
        ("feed service: lone-surrogate token", ['{"token": "\\ud800"}'], 401),
        ("feed service: 20 MB body (cap 64 KiB)", ["x" * (20 << 20)], 413),
    ]
    for fault, bodies, status in requests:
        for body in bodies:
            if isinstance(body, dict):
                answer = client.post("/convertedin/customers", data=body)
            else:
                kind = "application/json" if body.startswith(("{", "[")) else "application/x-www-form-urlencoded"
                answer = client.post("/convertedin/customers", content=body, headers={"content-type": kind})
            assert answer.status_code == status and answer.json()["code"] == status, (fault, answer.text[:100])
        record(fault, f"refused (JSON {status})", stack)
    missing = TestClient(create_app(stack.config, Warehouse(f"sqlite:///{stack.tmp / 'absent.db'}")))
    assert missing.post("/convertedin/customers", data={"token": token}).status_code == 503
    assert missing.get("/healthz").status_code == 503 and not (stack.tmp / "absent.db").exists()
    record("feed service: SQLite warehouse missing", "refused (JSON 503); no file created", stack)

    width = max(len(r[0]) for r in rows)
    lines = [
        f"| {'fault':<{width}} | outcome | orders lost | orders double-counted | opted-out customers published |",
        f"|{'-' * (width + 2)}|---|---|---|---|",
    ]
    lines += [f"| {f:<{width}} | {o} | {lost} | {doubled} | {out} |" for f, o, lost, doubled, out, _ in rows]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert [(r[0], r[2:5]) for r in rows if r[2:5] != (0, 0, 0)] == []
    assert [(r[0], r[5]) for r in rows if r[5]] == []
    expected = {"retried": 12, "quarantined": 4, "read strictly": 8}
    counts = {k: sum(1 for r in rows if r[1] == k) for k in expected}
    assert counts == expected, [(r[0], r[1]) for r in rows]
