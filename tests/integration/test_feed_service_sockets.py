"""The feed service failing closed over real sockets: a PostgreSQL warehouse nobody answers for is
a 503, and a 200 MB body is refused before it is sent. The in-process cases:
tests/unit/test_feed_service_hardening.py."""

from __future__ import annotations

import socket
import threading
import time

import requests
import uvicorn
from fastapi.testclient import TestClient

from include.feed_service import create_app
from include.warehouse import Warehouse
from tests.unit.test_feed_service import CONFIG
from tests.unit.test_feed_service_hardening import TOKENS, _is_error, _published, post


def test_an_unreachable_postgresql_is_503(monkeypatch):
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wh = Warehouse(f"postgresql://postgres@127.0.0.1:{port}/none?connect_timeout=2")
    client = TestClient(create_app(CONFIG, wh), raise_server_exceptions=False)
    _is_error(client.get("/healthz"), 503)
    _is_error(post(client, token="token-gb"), 503)


def test_a_huge_body_is_refused_before_it_is_sent(sqlite_warehouse, monkeypatch):
    """The 200 MB probe over a real socket: the headers announce 200 MB, none of it is sent, and
    the answer is already there — the service never waits for (or holds) the body."""
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    server = uvicorn.Server(
        uvicorn.Config(create_app(CONFIG, _published(sqlite_warehouse)), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(
                b"POST /convertedin/customers HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 209715200\r\n\r\ntoken="
            )
            answer = conn.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 413") and '"code":413' in answer
        ok = requests.post(f"http://127.0.0.1:{port}/convertedin/customers", data={"token": "token-gb"}, timeout=10)
        assert ok.json()["total"] == 30
    finally:
        server.should_exit = True
        thread.join(timeout=10)
