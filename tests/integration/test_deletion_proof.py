"""A deletion must be proven: only Different Breed's own "customer not found" answer deletes a
customer. A base URL that answers 404 everywhere (a wrong path, an HTML error page, an empty body)
fails the extract loudly after the usual retries and deletes nothing; a real mass deletion is
stopped by the guard until confirmed. Real HTTP against the sandbox, warehouse on PostgreSQL."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from include.config import load_config
from include.guard import CONFIRM_ENV, MassChangeError
from include.pipeline import extract_differentbreed, load_extracts, publish
from include.sources import http
from include.sources.differentbreed import SlidingWindowLimiter
from include.sources.http import SourceHttpError
from include.specs import ExtractSpec, Window
from include.staging import read_orders
from include.warehouse.feed_reads import feed_page
from sandbox import differentbreed
from sandbox.server import ThreadedServer

FIRST = ("2026-11-01T00:00:00+00:00", "2026-11-01T01:00:00+00:00")
SECOND = ("2026-11-01T01:00:00+00:00", "2026-11-01T02:00:00+00:00")


def spec(listed: list[str], window: tuple[str, str], new: list[str]) -> ExtractSpec:
    return ExtractSpec(
        source="differentbreed",
        domain=differentbreed.PROFILE,
        currency="GBP",
        lower=None if new else window[0],
        upper=window[1],
        window=Window(start=window[0], end=window[1], origin="params"),
        part="batch-0000",
        cust_ids=tuple(listed),
        new_cust_ids=tuple(new),
    )


def connect(monkeypatch, base_url: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DIFFERENTBREED_DEFAULT",
        json.dumps({"conn_type": "http", "host": base_url, "password": differentbreed.DEFAULT_KEY}),
    )


def html_404_everywhere() -> FastAPI:
    app = FastAPI()

    @app.get("/{path:path}")
    def anything(path: str, request: Request):
        if path.endswith("empty/customer"):
            return Response(status_code=404)
        return HTMLResponse("<html><body><h1>404 Not Found</h1>nginx</body></html>", status_code=404)

    return app


def snapshot(wh) -> tuple:
    with wh.reader() as cur:
        cur.execute("SELECT COUNT(*) FROM order_state")
        orders = cur.fetchone()[0]
        cur.execute("SELECT COUNT(*) FROM source_customers")
        profiles = cur.fetchone()[0]
    return orders, profiles, feed_page(wh, "ampress", 1, 1000)


@pytest.fixture
def loaded(warehouse, tmp_path, monkeypatch):
    """The sandbox's customers extracted, loaded and published once."""
    monkeypatch.delenv(CONFIRM_ENV, raising=False)
    retries = []
    monkeypatch.setattr(http.SourceHttp, "_sleep", lambda self, attempt, *rest: retries.append(attempt))
    # The rate limit has its own tests; here it would only make each test wait ten seconds.
    monkeypatch.setattr(SlidingWindowLimiter, "acquire", lambda self: None)
    store, listed = differentbreed.seed_store(
        seed=42, customers=120, store=differentbreed.DifferentBreedStore(rate_limit=100_000)
    )
    config, root = load_config(), f"file://{tmp_path / 'staging'}"
    with differentbreed.serve_in_thread(store) as sandbox:
        connect(monkeypatch, f"{sandbox.url}{differentbreed.BASE}")
        first = extract_differentbreed(spec(listed, FIRST, listed), config, root)
        assert first.deleted == (listed[3],)  # the one the seed deleted, proven by the API's answer
        load_extracts(warehouse, [first], "r1", False, root, config)
        publish(warehouse, config, "r1", False)
        yield warehouse, config, root, store, listed, sandbox, first, retries


@pytest.mark.parametrize("base", ["wrong path", "html", "empty"])
def test_404_everywhere_fails_loudly_and_deletes_nothing(loaded, monkeypatch, base):
    wh, config, root, store, listed, sandbox, first, retries = loaded
    before, staged = snapshot(wh), read_orders([first.orders_path])
    if base == "wrong path":
        # A real route prefix mistake: the sandbox's router answers {"detail": "Not Found"}.
        connect(monkeypatch, f"{sandbox.url}/client/api/v2")
        with pytest.raises(SourceHttpError, match="not the API's own answer") as failed:
            extract_differentbreed(spec(listed, SECOND, []), config, root)
    else:
        with ThreadedServer(html_404_everywhere()) as other:
            connect(monkeypatch, f"{other.url}/{base}")
            with pytest.raises(SourceHttpError, match="not the API's own answer") as failed:
                extract_differentbreed(spec(listed, SECOND, []), config, root)
    assert "gave up after 6 attempts" in str(failed.value) and retries == [1, 2, 3, 4, 5, 6]  # retried like a 5xx
    assert snapshot(wh) == before
    assert read_orders([first.orders_path]).equals(staged)


def test_a_proven_mass_deletion_is_stopped_until_confirmed(loaded, monkeypatch):
    wh, config, root, store, listed, sandbox, first, retries = loaded
    gone = listed[10:50]
    for cust_id in gone:
        store.delete_customer(cust_id)
    before = snapshot(wh)
    second = extract_differentbreed(spec(listed, SECOND, []), config, root)
    assert list(second.deleted) == sorted([listed[3], *gone])
    with pytest.raises(MassChangeError, match=r"40 of 119 customers"):
        load_extracts(wh, [second], "r2", False, root, config)
    assert snapshot(wh) == before
    assert set(gone) & set(read_orders([first.orders_path])["customer_ref"].to_pylist())  # still staged

    loaded_result = load_extracts(wh, [second], "r3", False, root, config, confirm_mass_change=True)
    assert loaded_result.customers_deleted == 41
    assert not set(gone) & set(read_orders([first.orders_path])["customer_ref"].to_pylist())
    with wh.reader() as cur:
        cur.execute("SELECT COUNT(*) FROM source_customers")
        assert cur.fetchone()[0] == before[1] - 40


def test_the_sandbox_answers_its_own_not_found_body(loaded):
    import httpx

    *_, sandbox, _first, _retries = loaded
    headers = {"admin-key": differentbreed.DEFAULT_KEY, "profile": differentbreed.PROFILE, "customer": "nobody"}
    answer = httpx.get(f"{sandbox.url}{differentbreed.BASE}/customer", headers=headers)
    assert answer.status_code == 404 and answer.json()["error"] == "customer_not_found"
    assert httpx.get(f"{sandbox.url}/client/api/v2/customer", headers=headers).json() == {"detail": "Not Found"}
