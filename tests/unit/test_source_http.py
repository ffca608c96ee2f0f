"""The shared HTTP layer's retry rules, on a fake transport and a recorded sleep: what is retried,
how long each wait is asked to be, when it gives up and what it says; nothing really waits."""

from __future__ import annotations

import pytest
import requests

from include.sources.http import SourceAuthError, SourceHttp, SourceHttpError
from tests.unit.fake_transport import Reply, connect, script, wire

OK = Reply(200, [{"orderID": 1}])
KEY = "test-secret-key"


@pytest.fixture
def source(monkeypatch):
    """A SourceHttp on the `source_test` connection; `.sleeps` records every wait it asked for."""
    connect(monkeypatch, "source_test", key=KEY)
    sleeps: list[float] = []
    http = SourceHttp("source_test", max_attempts=4, backoff=1.0, max_backoff=60.0, sleep=sleeps.append)
    http.sleeps = sleeps
    return http


def test_a_429_waits_exactly_retry_after_then_succeeds(source):
    transport = wire(source, script([Reply(429, headers={"Retry-After": "7"}), OK]))
    assert source.get_json("/orders/", params={"p": 1}) == (200, [{"orderID": 1}])
    assert source.sleeps == [7.0]
    assert (source.requests, source.retries, len(transport.sent)) == (2, 1, 2)
    assert transport.sent[1].params == {"p": "1"}  # the same request again


@pytest.mark.parametrize("retry_after", [None, "soon", "-3"])
def test_a_429_without_a_usable_retry_after_backs_off(source, retry_after):
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    wire(source, script([Reply(429, headers=headers), OK]))
    source.get_json("/orders/")
    # "-3" is a number: it means "now", never a negative wait
    expected = (0.0, 0.0) if retry_after == "-3" else (0.5, 1.0)
    assert len(source.sleeps) == 1 and expected[0] <= source.sleeps[0] <= expected[1]


def test_5xx_are_retried_with_exponential_backoff_and_jitter(source):
    wire(source, script([Reply(500), Reply(502), Reply(503), OK]))
    assert source.get_json("/orders/")[0] == 200
    assert source.retries == 3 and len(source.sleeps) == 3
    for attempt, wait in enumerate(source.sleeps, start=1):
        assert 0.5 * 2 ** (attempt - 1) <= wait <= 2 ** (attempt - 1), (attempt, wait)


def test_backoff_is_capped(monkeypatch):
    connect(monkeypatch, "source_test")
    sleeps: list[float] = []
    http = SourceHttp("source_test", max_attempts=8, backoff=10.0, max_backoff=15.0, sleep=sleeps.append)
    wire(http, script([Reply(503)] * 7 + [OK]))
    http.get_json("/orders/")
    assert len(sleeps) == 7 and max(sleeps) <= 15.0 and min(sleeps[1:]) >= 7.5


def test_persistent_5xx_gives_up_with_the_path_attempts_and_last_problem(source):
    transport = wire(source, lambda sent: Reply(503))
    with pytest.raises(SourceHttpError, match=r"GET /orders/: gave up after 4 attempts \(last: HTTP 503\)"):
        source.get_json("/orders/")
    assert len(transport.sent) == 4 and len(source.sleeps) == 3  # no wait after the last attempt


@pytest.mark.parametrize("failure", [requests.Timeout, requests.ConnectionError, requests.ReadTimeout])
def test_timeouts_and_dropped_connections_are_retried(source, failure):
    wire(source, script([failure("slow"), failure("slow"), OK]))
    assert source.get_json("/orders/")[0] == 200
    assert source.retries == 2 and len(source.sleeps) == 2


def test_persistent_timeouts_give_up_naming_the_problem(source):
    wire(source, lambda sent: requests.Timeout("read timed out"))
    with pytest.raises(SourceHttpError, match=r"gave up after 4 attempts \(last: Timeout\)"):
        source.get_json("/orders/")


def test_the_connection_timeout_reaches_the_transport(monkeypatch):
    connect(monkeypatch, "source_test", timeout=2.5)
    http = SourceHttp("source_test", sleep=lambda s: None)
    transport = wire(http, script([OK]))
    http.get_json("/orders/")
    assert transport.sent[0].timeout == 2.5
    assert "timeout" not in transport.sent[0].headers


def test_a_body_that_is_not_json_is_retried(source):
    wire(source, script([Reply(200, text="<html>busy</html>"), OK]))
    assert source.get_json("/orders/") == (200, [{"orderID": 1}])
    assert source.retries == 1 and len(source.sleeps) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_never_retried_and_never_shown(source, status):
    transport = wire(source, lambda sent: Reply(status, {"result": {"reason": "permission_denied"}}))
    with pytest.raises(SourceAuthError, match=f"GET /orders/: {status}") as raised:
        source.get_json("/orders/")
    assert len(transport.sent) == 1 and source.sleeps == [] and source.retries == 0
    assert KEY not in str(raised.value)


def test_other_4xx_fail_at_once_with_the_sources_reasons(source):
    body = {"result": {"reason": "invalid_params", "messages": ["p must be a positive integer"]}}
    transport = wire(source, lambda sent: Reply(400, body))
    with pytest.raises(SourceHttpError, match="HTTP 400: invalid_params; p must be a positive integer"):
        source.get_json("/orders/", params={"p": 0})
    assert len(transport.sent) == 1 and source.sleeps == []


NOT_FOUND = {404: lambda body: isinstance(body, dict) and body.get("error") == "customer_not_found"}


def test_an_accepted_status_is_returned_with_the_body_it_must_have(source):
    wire(source, lambda sent: Reply(404, {"error": "customer_not_found"}))
    assert source.get_json("/customer", accept=NOT_FOUND) == (404, {"error": "customer_not_found"})
    assert source.sleeps == []


@pytest.mark.parametrize(
    "reply",
    [Reply(404, text="<html><h1>404 Not Found</h1></html>"), Reply(404, text=""), Reply(404, {"detail": "Not Found"})],
)
def test_an_accepted_status_without_that_body_is_a_fault_retried_then_failed(source, reply):
    """An HTML page, an empty body, a router's answer: not the API's, so never taken for it."""
    wire(source, lambda sent: reply)
    with pytest.raises(SourceHttpError, match="gave up after 4 attempts.*not the API's own answer"):
        source.get_json("/customer", accept=NOT_FOUND)
    assert len(source.sleeps) == 3
