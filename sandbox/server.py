"""Running a sandbox app on a real socket: in a thread for tests, in the foreground for the CLI,
and the fault injection both sandboxes share."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response


@dataclass
class Faults:
    """Faults for the next requests to the API (not to /_sandbox/): each kind fires `count` times.

    ``429`` (``Retry-After: value``), ``500``, ``503``, ``delay`` (value seconds), ``malformed``
    (truncated JSON), ``html`` (an HTML error page with 502) and ``html200`` (the same with 200).

    `latency` (seconds) delays every API request, as a distant or slow source would; the wait
    holds no thread, so concurrent requests wait side by side.
    """

    pending: list[tuple[str, int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: float = 0.0

    def add(self, kind: str, count: int = 1, value: float = 0) -> None:
        if kind not in ("429", "500", "503", "delay", "malformed", "html", "html200"):
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            self.pending.append((kind, count, value))

    def clear(self) -> None:
        with self.lock:
            self.pending.clear()
            self.latency = 0.0

    def take(self) -> tuple[str, float] | None:
        with self.lock:
            if not self.pending:
                return None
            kind, count, value = self.pending[0]
            if count <= 1:
                self.pending.pop(0)
            else:
                self.pending[0] = (kind, count - 1, value)
            return kind, value


async def apply_faults(faults: Faults, request: Request, call_next) -> Response:
    """Middleware: the next injected fault, if any, answers instead of (or delays) the API."""
    if request.url.path.startswith("/_sandbox"):
        return await call_next(request)
    if faults.latency > 0:
        await asyncio.sleep(faults.latency)
    fault = faults.take()
    if fault is None:
        return await call_next(request)
    kind, value = fault
    if kind == "429":
        return JSONResponse({"error": "rate_limited"}, status_code=429, headers={"Retry-After": f"{value:g}"})
    if kind in ("500", "503"):
        return JSONResponse({"error": "server_error"}, status_code=int(kind))
    if kind == "malformed":
        return PlainTextResponse('[{"orderID": 1, "email', media_type="application/json")
    if kind in ("html", "html200"):  # a proxy's error page, as a 502 or (worse) as a 200
        page = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
        return HTMLResponse(page, status_code=502 if kind == "html" else 200)
    await asyncio.sleep(value)  # "delay": the client's timeout should fire first
    return await call_next(request)


class ThreadedServer:
    """A uvicorn server on 127.0.0.1 in a background thread (port 0 = any free port)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.02)
        bound = self.server.servers[0].sockets[0].getsockname()
        self.url = f"http://{host}:{bound[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
