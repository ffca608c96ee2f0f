"""The one HTTP layer every source API goes through: requests, retries, and what counts as an error.

Built on the HTTP provider's :class:`HttpHook` (the connection gives the base URL, the key and the
usual extras: ``timeout``, ``verify``, proxies…). Each client creates one :class:`SourceHttp` and
sends every request through :meth:`SourceHttp.get_json`:

* 429 waits for ``Retry-After`` (seconds; the backoff when absent) and tries again;
* 5xx, connection errors, timeouts and a 200 whose body is not JSON are retried with exponential
  backoff and jitter, up to ``max_attempts``;
* 401/403 raise :class:`SourceAuthError` at once — retrying a refused key only locks accounts;
* any other 4xx raises :class:`SourceHttpError` at once, unless the caller lists the status in
  ``accept`` with the test its body must pass (a 404 means "deleted" only with the API's own
  "not found" body): a body that passes is returned as ``(status, body)``; one that does not (an
  HTML page, an empty body, another shape: a wrong base URL or a proxy answering) is a fault,
  retried like a 5xx and never taken for the API's answer.

Keys and request bodies never reach the logs or the error messages.

Tests reach the wire through the session's transport (``session.mount(prefix, adapter)``, as
requests intends) and the waits through ``sleep``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

log = logging.getLogger(__name__)


class SourceHttpError(RuntimeError):
    """A request the source refused or kept failing; the message names the path, not the key."""


class SourceAuthError(SourceHttpError):
    pass


class SourceHttp:
    def __init__(
        self,
        conn_id: str,
        *,
        client_extras: tuple[str, ...] = (),
        max_attempts: int = 6,
        timeout: float = 30.0,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        before_request: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        from airflow.providers.http.hooks.http import HttpHook

        hook = HttpHook(method="GET", http_conn_id=conn_id)
        self.session: requests.Session = hook.get_conn()
        self.connection = hook.get_connection(conn_id)
        self.base_url = hook.base_url.rstrip("/")
        # The hook sends every unknown extra as a header; the client's own settings are not headers.
        self.extras: dict[str, Any] = {}
        for key in client_extras:
            if key in self.connection.extra_dejson:
                self.extras[key] = self.connection.extra_dejson[key]
            self.session.headers.pop(key, None)
        self.timeout = float(self.connection.extra_dejson.get("timeout", timeout))
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.before_request = before_request
        self.sleep = sleep  # tests pass a recorder: backoff is asserted, not waited for
        self.requests = 0
        self.retries = 0
        self._lock = threading.Lock()

    @property
    def secret(self) -> str:
        return self.connection.password or ""

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Mapping[int, Callable[[Any], bool]] | None = None,
    ) -> tuple[int, Any]:
        """GET `path` (relative to the base URL) -> (status, parsed JSON body)."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        problem = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                with self._lock:
                    self.retries += 1
            if self.before_request:
                self.before_request()
            with self._lock:
                self.requests += 1
            try:
                response = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = type(exc).__name__
                self._sleep(attempt, None, path, problem)
                continue
            status = response.status_code
            if status in (401, 403):
                raise SourceAuthError(f"GET {path}: {status} — the source refused the credentials of the connection")
            if status == 429 or status >= 500:
                problem = f"HTTP {status}"
                self._sleep(attempt, response.headers.get("Retry-After") if status == 429 else None, path, problem)
                continue
            if accept and status in accept:
                body = _json_or_none(response)
                if accept[status](body):
                    return status, body
                problem = f"HTTP {status} that is not the API's own answer ({_describe(response)})"
                self._sleep(attempt, None, path, problem)
                continue
            if status >= 400:
                raise SourceHttpError(f"GET {path}: HTTP {status}: {_error_text(response)}")
            try:
                return status, response.json()
            except (ValueError, json.JSONDecodeError):
                problem = "a response that is not JSON"
                self._sleep(attempt, None, path, problem)
        raise SourceHttpError(f"GET {path}: gave up after {self.max_attempts} attempts (last: {problem})")

    def _sleep(self, attempt: int, retry_after: str | None, path: str, problem: str) -> None:
        if attempt >= self.max_attempts:
            return
        delay = None
        if retry_after is not None:
            try:
                delay = max(0.0, float(retry_after))
            except ValueError:
                delay = None
        if delay is None:
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        log.warning("GET %s: %s; retry %d/%d in %.1fs", path, problem, attempt, self.max_attempts - 1, delay)
        self.sleep(delay)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _describe(response: requests.Response) -> str:
    """What came back, for an error message: its type and size, never its content."""
    kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
    return f"{kind}, {len(response.content)} bytes"


def _error_text(response: requests.Response) -> str:
    """The source's own error reasons, short (GiftPro: {"result": {"reason", "messages"}})."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    result = body.get("result", body) if isinstance(body, dict) else body
    if isinstance(result, dict):
        parts = [str(result.get("reason") or result.get("error") or "")]
        parts += [str(m) for m in result.get("messages", [])][:3]
        if result.get("message"):
            parts.append(str(result["message"]))
        return "; ".join(p for p in parts if p)[:300]
    return str(result)[:300]
