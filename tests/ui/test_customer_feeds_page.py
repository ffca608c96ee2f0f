"""The Customer feeds page in a real browser, on a real api-server.

One `airflow dags test` run of customer_feed (an explicit window) against both sandboxes onto a
SQLite warehouse, then `airflow api-server` on its own Airflow home (SQLite metadata,
SimpleAuthManager with a password of its own) and Debian's chromium driven by Playwright: log in
through the real login page, open the page from the navigation, and read the numbers it shows.
They must equal the warehouse's. Without a session the page and its JSON give nothing away.
The run's note and the customer asset event carry the run's summary.

Screenshots are taken every time; `CUSTOMER_FEED_SCREENSHOTS=docs/screenshots` puts them where
the README shows them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from include.config import DEFAULT_CONFIG_PATH
from include.warehouse import Warehouse
from sandbox import differentbreed
from sandbox.giftpro import seed_store, serve_in_thread
from scripts.local_stack import (
    DEMO_TOKENS,
    ROOT,
    LocalStack,
    airflow_env,
    differentbreed_connection,
    free_port,
    giftpro_connection,
    prepare_airflow,
    wait_http,
)

pytestmark = pytest.mark.ui
AIRFLOW = str(Path(sys.executable).parent / "airflow")
CHROMIUM = os.environ.get("CUSTOMER_FEED_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the screenshots go: the test's own directory, unless CUSTOMER_FEED_SCREENSHOTS names one
#: (`CUSTOMER_FEED_SCREENSHOTS=docs/screenshots` refreshes the README's).
SCREENSHOTS_ENV = "CUSTOMER_FEED_SCREENSHOTS"
WINDOW = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, dict, str]:
    """(status, headers, body) without following redirects."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with opener.open(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install chromium; scripts/test.sh does it"
            " as root) or point CUSTOMER_FEED_CHROMIUM at one",
            pytrace=False,
        )
    tmp = tmp_path_factory.mktemp("ui")
    store = seed_store(seed=5, orders=400)
    db_store, listed = differentbreed.seed_store(seed=42, customers=30)
    customer_list = tmp / "customers.csv"
    differentbreed.write_customer_list(customer_list, db_store.profile, listed)
    config = tmp / "feeds.yaml"
    config.write_text(
        DEFAULT_CONFIG_PATH.read_text().replace("config/differentbreed_customers.csv", str(customer_list))
    )
    password = secrets.token_urlsafe(12)
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    warehouse = tmp / "warehouse.db"
    with (
        serve_in_thread(store) as sandbox,
        differentbreed.serve_in_thread(db_store) as db_sandbox,
        LocalStack(tmp / "logs") as stack,
    ):
        env = airflow_env(
            {
                "AIRFLOW_HOME": str(tmp / "airflow"),
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
                "AIRFLOW_CONN_GIFTPRO_DEFAULT": giftpro_connection(sandbox.url),
                "AIRFLOW_CONN_DIFFERENTBREED_DEFAULT": differentbreed_connection(db_sandbox.url),
                "AIRFLOW_CONN_CUSTOMER_FEED_DB": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
                "CUSTOMER_FEED_CONFIG": str(config),
                "CUSTOMER_FEED_STAGING_URL": f"file://{tmp / 'staging'}",
                **DEMO_TOKENS,
            }
        )
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)  # run as deployed, not as Airflow's own tests
        prepare_airflow(env)
        run = subprocess.run(
            [AIRFLOW, "dags", "test", "customer_feed", "2026-11-02T00:00:00+00:00", "-c", json.dumps(WINDOW)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        log = run.stdout + run.stderr
        (tmp / "logs" / "dags-test.log").write_text(log)
        assert run.returncode == 0 and "state=success" in log, log[-5000:]
        port = free_port()
        proc = stack.start("api-server", [AIRFLOW, "api-server", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/api/v2/monitor/health", seconds=120, proc=proc)
        except (RuntimeError, TimeoutError):
            pytest.fail((tmp / "logs" / "api-server.log").read_text()[-5000:], pytrace=False)
        yield {
            "url": url,
            "password": password,
            "wh": Warehouse(f"sqlite:///{warehouse}"),
            "dags_test_log": log,
            "tokens": list(DEMO_TOKENS.values()),
        }


def warehouse_feeds(wh: Warehouse) -> dict[str, tuple[int, int, int]]:
    """Per feed, from the published rows themselves: customers, orders, money in minor units."""
    with wh.reader() as cur:
        cur.execute(
            "SELECT feed, COUNT(*), SUM(orders_count), SUM(total_spent_minor) FROM customers"
            " GROUP BY feed ORDER BY feed"
        )
        return {f: (int(c), int(o), int(s)) for f, c, o, s in cur.fetchall()}


def api_token(ui) -> str:
    body = json.dumps({"username": "admin", "password": ui["password"]}).encode()
    status, _, text = fetch(f"{ui['url']}/auth/token", {"Content-Type": "application/json"}, body)
    assert status in (200, 201), text
    return json.loads(text)["access_token"]


def test_no_session_no_data(ui):
    url = ui["url"]
    status, headers, body = fetch(f"{url}/customer-feeds/api/overview")
    assert status == 401 and "ampress" not in body, body
    status, headers, body = fetch(f"{url}/customer-feeds/")
    assert status == 303 and "/auth/login" in headers["location"], (status, headers)
    assert "ampress" not in body
    status, _, body = fetch(f"{url}/customer-feeds/api/overview", {"Cookie": "_token=not-a-jwt"})
    assert status in (401, 403) and "ampress" not in body, body
    status, _, body = fetch(f"{url}/customer-feeds/api/overview", {"Authorization": "Bearer not-a-jwt"})
    assert status in (401, 403) and "ampress" not in body, body
    # A real token opens it: the same check, passed.
    status, _, body = fetch(f"{url}/customer-feeds/api/overview", {"Authorization": f"Bearer {api_token(ui)}"})
    assert status == 200 and json.loads(body)["feeds"], body


def test_run_note_and_asset_event_carry_the_summary(ui):
    headers = {"Authorization": f"Bearer {api_token(ui)}"}
    status, _, body = fetch(f"{ui['url']}/api/v2/dags/customer_feed/dagRuns", headers)
    assert status == 200, body
    [run] = json.loads(body)["dag_runs"]
    assert run["state"] == "success"
    note = run["note"] or ""
    assert note.startswith(
        "**Window loaded:** 2026-11-01 00:00 UTC → 2026-11-02 00:00 UTC (explicit window (trigger params))"
    ), note
    expected = warehouse_feeds(ui["wh"])
    for feed, (customers, orders, _) in expected.items():
        assert f"| {feed} | {customers:,} | {orders:,} |" in note, note
    status, _, body = fetch(f"{ui['url']}/api/v2/assets/events?limit=10", headers)
    assert status == 200, body
    [event] = [e for e in json.loads(body)["asset_events"] if e["uri"] == "customer_feed://warehouse/customers"]
    extra = event["extra"]
    assert {f: (v["customers"], v["orders"]) for f, v in extra["feeds"].items()} == {
        f: v[:2] for f, v in expected.items()
    }
    assert set(extra["sources"]) == {"giftpro", "differentbreed"}
    assert extra["window"]["origin"] == "params" and extra["quarantined"] >= 1
    assert not EMAIL.search(json.dumps(extra) + note)
    # The window loaded is in the task log too, and the lazy mapped results no longer log errors.
    assert "window [2026-11-01T00:00:00+00:00, 2026-11-02T00:00:00+00:00) from the params" in ui["dags_test_log"]
    assert "XCom not found" not in ui["dags_test_log"]


def test_page_in_a_browser_shows_the_warehouse_numbers(ui, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    shots = shots if shots.is_absolute() else ROOT / shots
    shots.mkdir(parents=True, exist_ok=True)
    expected = warehouse_feeds(ui["wh"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(f"{ui['url']}/customer-feeds/")  # no session: sent to the login page
            page.wait_for_url(re.compile(r"/auth/login"))
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(ui["password"])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r"/customer-feeds/"))
            assert page.locator("[data-feed]").count() == len(expected)

            page.goto(f"{ui['url']}/")
            page.get_by_role("link", name="Customer feeds").first.click()
            page.wait_for_url(re.compile(r"/plugin/customer-feeds"))
            frame = page.frame_locator("iframe").first
            shown = {}
            for feed in expected:
                card = frame.locator(f'[data-feed="{feed}"]')
                card.wait_for()
                shown[feed] = {
                    name: card.locator(f'[data-field="{name}"]').inner_text()
                    for name in ("customers", "orders", "total_spent", "status", "run_id")
                }
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / "customer-feeds-in-airflow.png"))

            page.goto(f"{ui['url']}/customer-feeds/")
            page.locator("details summary").first.click()
            page.screenshot(path=str(shots / "customer-feeds-page.png"), full_page=True)
            text = page.locator("body").inner_text()
        finally:
            browser.close()
    for feed, (customers, orders, spent) in expected.items():
        currency = "GBP" if feed == "ampress" else "EUR"
        assert shown[feed]["customers"] == f"{customers:,}", shown
        assert shown[feed]["orders"] == f"{orders:,}", shown
        assert shown[feed]["total_spent"] == f"{spent / 100:,.2f} {currency}", shown
        assert shown[feed]["run_id"].startswith("manual__"), shown
    assert "Quarantined records of recent runs" in text and "quarantined" in text
    assert "***@" in text, "the quarantined records are shown, masked"
    assert not EMAIL.findall(text), EMAIL.findall(text)
    assert not any(t in text for t in ui["tokens"])
    for name in ("customer-feeds-in-airflow.png", "customer-feeds-page.png"):
        assert (shots / name).stat().st_size > 10_000, f"{name} looks empty"
