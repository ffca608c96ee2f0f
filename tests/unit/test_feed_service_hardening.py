"""The feed service fails closed: every odd request gets a {code, message} JSON answer (never a
plain-text 500), bodies are capped before any token is read, the health check tells nothing
without a token, a warehouse that cannot answer is a 503, and a schemathesis run over
/openapi.json finds no server error. All in process; over real sockets:
tests/integration/test_feed_service_sockets.py."""

from __future__ import annotations

import json
import time

import pyarrow as pa
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.config import ConfigError
from include.feed_service import create_app
from include.schema import ORDER_SCHEMA
from include.warehouse import Warehouse
from include.warehouse.order_state import load_orders
from include.warehouse.publish import publish_customers
from tests.unit.test_feed_service import CONFIG, order

TOKENS = {"TEST_TOKEN_GB": "token-gb", "TEST_TOKEN_IE": "token-ie"}


def _published(wh: Warehouse) -> Warehouse:
    rows = [order(i, "1", f"gb{i:03d}@example.com", 100 * i + 5) for i in range(30)]
    rows += [order(100 + i, "2", f"ie{i}@example.com", 999) for i in range(3)]
    load_orders(wh, pa.Table.from_pylist(rows, schema=ORDER_SCHEMA), [], "r1")
    publish_customers(wh, CONFIG, "r1")
    return wh


@pytest.fixture
def app(sqlite_warehouse, monkeypatch):
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    return create_app(CONFIG, _published(sqlite_warehouse), max_body_bytes=8192)


@pytest.fixture
def client(app):
    return TestClient(app, raise_server_exceptions=False)


def post(client, **form):
    return client.post("/convertedin/customers", data=form)


def _is_error(response, status: int) -> dict:
    assert response.status_code == status, response.text[:200]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message"} and body["code"] == status and body["message"]
    return body


@pytest.mark.parametrize("page", ["--1", "①", "٣", "²", "1" * 5000, "+1", "1_000", " 1 2", "0x10", "１"])
def test_pages_that_are_not_ascii_digits_are_400(client, page):
    body = _is_error(post(client, token="token-gb", page=page), 400)
    assert "page" in body["message"]


@pytest.mark.parametrize("page", [2, "2", " 2 ", "0002"])
def test_good_pages_in_form_and_json(client, page):
    assert post(client, token="token-gb", page=page, par_page=10).json()["current_page"] == 2
    answer = client.post("/convertedin/customers", json={"token": "token-gb", "page": page, "per_page": 10})
    assert answer.json()["current_page"] == 2 and answer.json()["per_page"] == 10


@pytest.mark.parametrize("value", [2.0, True, None, [1], {"a": 1}, "1e3", 10**40])
def test_json_pages_of_other_types(client, value):
    answer = client.post("/convertedin/customers", json={"token": "token-gb", "page": value})
    if value is None:
        assert answer.json()["current_page"] == 1
    else:
        _is_error(answer, 400)


def test_nested_json_is_400_not_a_recursion_error(client):
    nested = ('{"a":' * 1300) + "1" + ("}" * 1300)  # deeper than Python's recursion limit, under the cap
    response = client.post("/convertedin/customers", content=nested, headers={"content-type": "application/json"})
    _is_error(response, 400)
    _is_error(
        client.post("/convertedin/customers", content="[" * 5000, headers={"content-type": "application/json"}), 400
    )


@pytest.mark.parametrize("token", ["\ud800", "tok\udfff", "token-gb\ud800"])
def test_a_lone_surrogate_token_is_401(client, token):
    body = json.dumps({"token": token, "page": "\ud800"})  # json.dumps escapes it: \\ud800
    response = client.post("/convertedin/customers", content=body, headers={"content-type": "application/json"})
    _is_error(response, 401)


def test_a_lone_surrogate_page_is_400_with_a_printable_message(client):
    body = json.dumps({"token": "token-gb", "page": "\ud800"})
    response = client.post("/convertedin/customers", content=body, headers={"content-type": "application/json"})
    assert "\\ud800" in _is_error(response, 400)["message"]


def test_a_body_over_the_cap_is_413_before_the_token_is_read(client):
    _is_error(post(client, token="token-gb", pad="x" * 9000), 413)
    _is_error(client.post("/convertedin/storeinfo", data={"token": "wrong", "pad": "x" * 9000}), 413)

    def chunked():  # no Content-Length: the stream is cut at the cap
        for _ in range(100):
            yield b"token=token-gb&pad=" + b"x" * 1000

    response = client.post(
        "/convertedin/customers", content=chunked(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    _is_error(response, 413)


def test_multipart_forms_are_read_and_files_refused(client):
    response = client.post("/convertedin/customers", files={"token": (None, "token-gb"), "page": (None, "2")})
    assert response.status_code == 200 and response.json()["current_page"] == 2
    _is_error(client.post("/convertedin/customers", files={"token": ("t.txt", b"token-gb")}), 400)
    broken = b"--xyz\r\nContent-Disposition: form-data\r\n\r\nnothing"
    _is_error(
        client.post(
            "/convertedin/customers", content=broken, headers={"content-type": "multipart/form-data; boundary=xyz"}
        ),
        400,
    )


def test_other_content_types_are_400_and_an_empty_body_401(client):
    _is_error(client.post("/convertedin/customers", content=b"<x/>", headers={"content-type": "text/xml"}), 400)
    _is_error(client.post("/convertedin/customers"), 401)


@pytest.mark.parametrize(
    "method, path, status",
    [("GET", "/nowhere", 404), ("GET", "/convertedin/customers", 405), ("DELETE", "/healthz", 405)],
)
def test_unknown_paths_and_methods_answer_json(client, method, path, status):
    _is_error(client.request(method, path), status)


def test_an_unexpected_failure_is_a_json_500(app, client, monkeypatch):
    import include.feed_service.app as module

    def broken(*args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(module, "feed_page", broken)
    body = _is_error(post(client, token="token-gb"), 500)
    assert "bug" not in body["message"]


def test_health_shows_no_feed_without_its_token(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/healthz", headers={"Authorization": "Bearer wrong"}).json() == {"status": "ok"}
    body = client.get("/healthz", headers={"Authorization": "Bearer token-gb"}).json()
    assert body == {"status": "ok", "feed": {"name": "gb", "total": 30}}


def test_a_missing_sqlite_warehouse_is_503_and_is_not_created(tmp_path, monkeypatch):
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "absent" / "warehouse.db"
    client = TestClient(create_app(CONFIG, Warehouse(f"sqlite:///{path}")), raise_server_exceptions=False)
    _is_error(client.get("/healthz"), 503)
    _is_error(post(client, token="token-gb"), 503)
    assert client.post("/convertedin/storeinfo", data={"token": "token-gb"}).status_code == 200
    assert not path.exists() and not path.parent.exists()


def test_two_feeds_with_one_token_value_do_not_start(monkeypatch, sqlite_warehouse):
    monkeypatch.setenv("TEST_TOKEN_GB", "same")
    monkeypatch.setenv("TEST_TOKEN_IE", "same")
    with pytest.raises(ConfigError, match="'gb' and 'ie'"):
        create_app(CONFIG, sqlite_warehouse)


def test_a_token_shared_after_start_serves_no_one(client, monkeypatch):
    monkeypatch.setenv("TEST_TOKEN_IE", "token-gb")
    _is_error(post(client, token="token-gb"), 401)


def test_readers_never_create_the_sqlite_file_and_writers_still_do(tmp_path):
    wh = Warehouse(f"sqlite:///{tmp_path / 'new' / 'w.db'}")
    with pytest.raises(Exception, match="does not exist"):
        with wh.reader():
            pass
    assert not (tmp_path / "new").exists()
    wh.create_schema()
    with wh.reader() as cur:
        assert cur.execute("SELECT COUNT(*) FROM feed_meta").fetchone() == (0,)


def test_openapi_documents_the_form_fields_and_the_errors(app):
    spec = app.openapi()
    customers = spec["paths"]["/convertedin/customers"]["post"]
    for kind in ("application/x-www-form-urlencoded", "multipart/form-data", "application/json"):
        fields = customers["requestBody"]["content"][kind]["schema"]["properties"]
        assert set(fields) == {"token", "page", "par_page", "per_page"}
    assert {"200", "400", "401", "413", "503"} <= set(customers["responses"])
    store = spec["paths"]["/convertedin/storeinfo"]["post"]
    assert set(store["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]) == {
        "token"
    }
    assert {"200", "400", "401"} <= set(store["responses"])


# -- schemathesis over /openapi.json: no server error whatever it sends


@pytest.fixture(scope="module")
def fuzz_warehouse(tmp_path_factory):
    wh = Warehouse(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'warehouse.db'}")
    wh.create_schema()
    return _published(wh)


def test_schemathesis_finds_no_server_error(fuzz_warehouse, monkeypatch):
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(CONFIG, fuzz_warehouse))
    started = time.perf_counter()
    operations, calls, failures = 0, [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(), known_token=st.booleans())
        def run(case, known_token):
            if known_token and isinstance(case.body, dict):
                case.body["token"] = "token-gb"  # half the cases get past the token to the paging
            response = case.call()
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:200]}")
            if response.status_code >= 400:
                assert response.headers.get("content-type", [""])[0].startswith("application/json")
                assert set(response.json()) == {"code", "message"}

        run()
    assert operations == 3 and len(calls) >= 60
    assert failures == []
    assert {200, 401} <= set(calls)
    assert time.perf_counter() - started < 90
