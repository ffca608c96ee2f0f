"""A requests transport that answers in process, for the source clients' unit tests.

Mounted on a client's session (``client.http.session.mount("http://", transport)``), it replaces
only the wire: the Airflow connection, the HTTP hook, authentication and headers stay the real
ones. Each request is recorded (path, query, headers, timeout) and handed to ``handler``, which
returns a :class:`Reply` or an exception to raise, as a dropped connection or a timeout would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


@dataclass
class Sent:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    timeout: Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # a body that is not JSON

    def content(self) -> bytes:
        return (self.text if self.text is not None else json.dumps(self.body)).encode()


class FakeTransport(BaseAdapter):
    def __init__(self, handler: Callable[[Sent], Reply | BaseException]):
        super().__init__()
        self.handler = handler
        self.sent: list[Sent] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        url = urlsplit(request.url)
        sent = Sent(url.path, dict(parse_qsl(url.query)), dict(request.headers), timeout)
        self.sent.append(sent)
        reply = self.handler(sent)
        if isinstance(reply, BaseException):
            raise reply
        response = requests.Response()
        response.status_code = reply.status
        response.headers = CaseInsensitiveDict(reply.headers)
        response._content = reply.content()
        response.url, response.request, response.reason = request.url, request, f"status {reply.status}"
        return response

    def close(self) -> None:
        pass


def script(replies: Iterable[Reply | BaseException]) -> Callable[[Sent], Reply | BaseException]:
    """A handler answering each request with the next reply, in order; one request more fails."""
    pending = iter(replies)

    def handle(sent: Sent) -> Reply | BaseException:
        reply = next(pending, None)
        assert reply is not None, f"unexpected request beyond the script: {sent.path} {sent.params}"
        return reply

    return handle


def connect(monkeypatch, conn_id: str, host: str = "http://source.test", key: str = "test-secret-key", **extra):
    """An Airflow connection of type http from the environment, as deployments give it."""
    conn: dict[str, Any] = {"conn_type": "http", "host": host, "password": key}
    if extra:
        conn["extra"] = extra
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def wire(client, handler: Callable[[Sent], Reply | BaseException]) -> FakeTransport:
    """Put `handler` on the wire of a client (anything with a SourceHttp at `.http`, or one)."""
    http = getattr(client, "http", client)
    transport = FakeTransport(handler)
    http.session.mount("http://", transport)
    return transport
