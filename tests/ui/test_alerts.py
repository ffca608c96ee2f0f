"""Alerts reach a receiver of our own — a webhook (a local HTTP server) and SMTP (a local
aiosmtpd server) — on a failed task under `airflow dags test`, and for a feed not published in
time; they never carry a customer's email address or a token; no connection, no alert."""

from __future__ import annotations

import email
import json
import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from include import alerts
from include.warehouse.run_log import record_run
from scripts.local_stack import ROOT, airflow_env, prepare_airflow

AIRFLOW = str(Path(sys.executable).parent / "airflow")
TOKEN = "sekret-token-9f3a7c1e"
PROBE_DAG = """
from datetime import datetime, UTC

from airflow.sdk import dag, task

from include.alerts import FeedAlertNotifier


@dag(dag_id="alert_probe", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC),
     on_failure_callback=FeedAlertNotifier(), default_args={"retries": 0})
def alert_probe():
    @task
    def extract():
        raise RuntimeError("GiftPro refused zoe.customer@example.com with key {token}")

    extract()


alert_probe()
"""


class Receiver:
    """A webhook receiver on a free port: every POSTed JSON body, in order."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"path": self.path, "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def connection(self) -> str:
        return json.dumps({"conn_type": "http", "host": self.url, "extra": {"endpoint": "/hooks/feed"}})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_a_failed_task_alerts_through_the_webhook(receiver, tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "alert_probe.py").write_text(PROBE_DAG.replace("{token}", TOKEN))
    env = airflow_env(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW_CONN_CUSTOMER_FEED_ALERTS": receiver.connection(),
            "CONVERTEDIN_TOKEN_PROBE": TOKEN,
        }
    )
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    prepare_airflow(env)
    run = subprocess.run(
        [AIRFLOW, "dags", "test", "alert_probe"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    log = run.stdout + run.stderr
    assert run.returncode != 0 and "state=failed" in log, log[-4000:]
    assert len(receiver.received) == 1, log[-4000:]
    [sent] = receiver.received
    body = sent["body"]
    assert sent["path"] == "/hooks/feed"
    assert body["event"] == "run_failed" and body["dag_id"] == "alert_probe"
    assert body["run_id"] and body["run_id"] in body["text"]
    assert body["task_id"] == "extract"
    text = json.dumps(body)
    assert "zoe.customer@example.com" not in text and TOKEN not in text


def test_the_message_masks_emails_and_scrubs_secrets(monkeypatch):
    monkeypatch.setenv("CONVERTEDIN_TOKEN_AMPRESS", TOKEN)

    class TI:
        dag_id, run_id, task_id, map_index, try_number = (
            "customer_feed",
            "scheduled__2026-11-02T00:00:00+00:00",
            "x",
            -1,
            3,
        )

    error = RuntimeError(f"401 for amy.lee@example.com using token={TOKEN}")
    message = alerts.failure_message({"ti": TI(), "exception": error, "reason": "task_failure"})
    assert message["text"].startswith("customer_feed: run scheduled__2026-11-02T00:00:00+00:00 failed at task x")
    assert "a***@example.com" in message["text"] and "token=***" in message["text"]
    assert "amy.lee@" not in json.dumps(message) and TOKEN not in json.dumps(message)


def test_no_connection_no_alert_and_one_log_line(caplog, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_CUSTOMER_FEED_ALERTS_NONE", raising=False)
    monkeypatch.setattr(alerts, "_warned_missing", set())
    with caplog.at_level(logging.WARNING, logger="include.alerts"):
        assert alerts.send_alert({"event": "x", "text": "x"}, conn_id="customer_feed_alerts_none") is False
        assert alerts.send_alert({"event": "x", "text": "x"}, conn_id="customer_feed_alerts_none") is False
    assert [r.getMessage() for r in caplog.records].count(
        "no connection 'customer_feed_alerts_none': customer_feed alerts are not sent"
    ) == 1


def test_a_feed_not_published_in_time_alerts(receiver, sqlite_warehouse, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CUSTOMER_FEED_ALERTS", receiver.connection())
    wh = sqlite_warehouse
    published = datetime.now(UTC) - timedelta(hours=1)
    with wh.transaction() as cur:
        cur.execute(
            "INSERT INTO feed_meta (feed, total, config_fingerprint, published_at, run_id) VALUES (?, ?, ?, ?, ?)",
            ("ampress", 0, "f", int(published.timestamp()), "run-1"),
        )
    record_run(wh, "run-1", {"ampress": "GBP"}, {"start": None, "end": None, "origin": None}, 0, 0, [])
    assert alerts.alert_stale_feeds(wh, "run-2") == []  # an hour old: on time
    assert receiver.received == []
    assert alerts.alert_stale_feeds(wh, "run-2", now=published + timedelta(hours=5)) == ["ampress"]
    [sent] = receiver.received
    assert sent["body"]["event"] == "feed_not_fresh" and sent["body"]["stale_feeds"] == ["ampress"]
    assert "ampress 5 intervals ago" in sent["body"]["text"]


def test_smtp_alert(monkeypatch):
    from aiosmtpd.controller import Controller

    from scripts.local_stack import free_port

    class Capture:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
            return "250 OK"

    handler = Capture()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_CUSTOMER_FEED_ALERTS",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": controller.port,
                    "login": "airflow@ops.example",
                    "extra": {"disable_ssl": True, "disable_tls": True, "to": "oncall@ops.example"},
                }
            ),
        )
        message = alerts.failure_message(
            {"reason": "task_failure", "exception": ValueError("bad row for bo@example.com")}
        )
        assert alerts.send_alert(message) is True
    finally:
        controller.stop()
    [(to, content)] = handler.messages
    assert to == ["oncall@ops.example"]
    mail = email.message_from_string(content)
    body = "".join(p.get_payload(decode=True).decode() for p in mail.walk() if not p.is_multipart())
    assert "failed" in str(mail["Subject"]) and "b***@example.com" in body
    assert "bo@example.com" not in body + content
