"""The converted.in feed service: the customer table as converted.in pulls it.

``POST /convertedin/customers`` (form fields ``token``, ``page``, ``par_page`` — converted.in's
customers page spells it so; ``per_page``, as its other list endpoints say, is accepted too)
answers the paginated envelope ``{current_page, data, from, last_page, per_page, to, total}``
with Laravel's paginator arithmetic; ``POST /convertedin/storeinfo`` answers the store. Both take
form data (urlencoded or multipart) or a JSON object; ``/openapi.json`` documents both.

The token selects the feed. Every error is the JSON ``{"code": status, "message": why}``: a bad
``page`` or ``per_page`` (ASCII digits only, 1 to the maximum) or body is a 400 saying which and
why, a missing or wrong token a 401 with no data, a body over ``FEED_MAX_BODY_BYTES`` (64 KiB) a
413 — read no further than the limit, before any token is looked at —, an unknown path 404, a
wrong method 405, a warehouse that cannot answer (down, or a SQLite file that does not exist: a
reader never creates one) a 503, anything else a 500. ``GET /healthz`` answers ``{"status":
"ok"}`` or 503; with ``Authorization: Bearer <token>`` it also shows that token's feed and its
total, and never another's. No token or email address is ever logged. The service reads the
warehouse only (no Airflow), through a connection pool on PostgreSQL.

    python -m include.feed_service --port 8810
    uvicorn include.feed_service:create_app --factory --port 8810

It imports neither Airflow nor the source clients: it is its own process in production.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from include.config import Feed, FeedConfig, check_tokens, load_config
from include.money import minor_to_major
from include.schema import FEED_CUSTOMER_KEYS
from include.warehouse import Warehouse, read_errors, url_from_env
from include.warehouse.dialects import SQLiteDialect
from include.warehouse.feed_reads import feed_page, feed_total

log = logging.getLogger(__name__)
MAX_PAGE = 1_000_000
DEFAULT_PER_PAGE = 100
DEFAULT_MAX_BODY_BYTES = 64 * 1024
_ASCII_SPACE = " \t\r\n"


class BadInput(ValueError):
    """A request the service refuses; `status` is the HTTP answer (400 unless said otherwise)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# -- documentation only: the answers' shapes as /openapi.json shows them


class ErrorAnswer(BaseModel):
    code: int
    message: str


class Customer(BaseModel):
    id: int
    email: str
    first_name: str
    last_name: str
    orders_count: int
    total_spent: float
    currency: str
    phone: str | None
    registered_at: str
    gender: str


class CustomersPage(BaseModel):
    current_page: int
    data: list[Customer]
    from_: int | None = Field(alias="from")
    last_page: int
    per_page: int
    to: int | None
    total: int


class Store(BaseModel):
    name: str
    currency: str
    time_zone: str
    email: str
    description: str
    country: str
    country_code: str


class StoreAnswer(BaseModel):
    code: int
    data: Store


def _body_docs(fields: dict) -> dict:
    schema = {"type": "object", "properties": fields, "required": ["token"]}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "multipart/form-data": {"schema": schema},
                "application/json": {"schema": schema},
            },
        }
    }


def _errors_docs(*statuses: int) -> dict:
    why = {
        400: "A field or the body is not understood; `message` says which and why",
        401: "Missing or invalid token; no data",
        413: "The body is larger than the service accepts",
        503: "The warehouse cannot answer now",
    }
    return {s: {"model": ErrorAnswer, "description": why[s]} for s in statuses}


def envelope(page: int, per_page: int, total: int, rows: list[dict]) -> dict:
    """Laravel's LengthAwarePaginator: positions are 1-based, null on an empty page."""
    first = (page - 1) * per_page + 1
    return {
        "current_page": page,
        "data": rows,
        "from": first if rows else None,
        "last_page": max(1, math.ceil(total / per_page)),
        "per_page": per_page,
        "to": first + len(rows) - 1 if rows else None,
        "total": total,
    }


def _positive_int(name: str, raw, default: int, maximum: int) -> int:
    """A whole number from 1 to `maximum` in ASCII digits (a form string or a JSON integer)."""
    if raw is None or (isinstance(raw, str) and raw.strip(_ASCII_SPACE) == ""):
        return default
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip(_ASCII_SPACE)
        if not (text.isascii() and text.isdigit()):
            raise BadInput(f"{name} must be a whole number written with the digits 0-9, got {ascii(text[:20])}")
        if len(text) > len(str(maximum)) + 2:  # never converts thousands of digits
            raise BadInput(f"{name} must be at most {maximum}, got a number of {len(text)} digits")
        value = int(text)
    else:
        raise BadInput(f"{name} must be a whole number, got {type(raw).__name__}")
    if value < 1:
        raise BadInput(f"{name} must be at least 1, got {value}")
    if value > maximum:
        raise BadInput(f"{name} must be at most {maximum}, got {str(value)[:20]}")
    return value


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes (413 beyond); kept on the request so that
    Starlette's form parser reads it from memory."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise BadInput("Content-Length is not a number")
        if int(declared[:20]) > limit:
            raise BadInput(f"the body is larger than {limit} bytes", 413)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadInput(f"the body is larger than {limit} bytes", 413)
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadInput("the client went away before the body was read") from None
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache: request.form() parses it instead of the stream
    return body


def create_app(
    config: FeedConfig | None = None,
    warehouse: Warehouse | None = None,
    max_per_page: int | None = None,
    max_body_bytes: int | None = None,
) -> FastAPI:
    config = config or load_config()
    check_tokens(config)  # two feeds with one token value: refuse to start (ConfigError names both)
    warehouse = warehouse or Warehouse(url_from_env())
    max_per_page = max_per_page or int(os.environ.get("FEED_MAX_PER_PAGE", "1000"))
    max_body = max_body_bytes or int(os.environ.get("FEED_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)))
    unavailable = read_errors()
    for feed in config.feeds:
        if feed.token() is None:
            log.warning("feed %s is unreachable: environment variable %s is not set", feed.name, feed.token_env)
    dialect = warehouse.dialect
    if isinstance(dialect, SQLiteDialect) and not os.path.exists(dialect.path):
        log.error("the SQLite warehouse %s does not exist: every feed answers 503 until a run creates it", dialect.path)

    app = FastAPI(title="customer feed for converted.in", docs_url=None, redoc_url=None)

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error(400, ascii("; ".join(str(e.get("msg")) for e in exc.errors())[:300]) or "bad request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "error"
        return error(exc.status_code, ascii(message)[1:-1], getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return error(500, "internal error")

    async def form_of(request: Request) -> dict:
        """Form data as converted.in sends it; a JSON object is accepted as well."""
        body = await read_body(request, max_body)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                data = json.loads(body or b"{}")
            except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
                raise BadInput("the body is not valid JSON; converted.in sends form data") from None
            if not isinstance(data, dict):
                raise BadInput("the body must be form data or a JSON object")
            return data
        if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
            try:
                form = await request.form(max_files=0, max_fields=100)
            except Exception:  # Starlette's multipart errors; the body itself is never echoed
                raise BadInput("the body is not valid form data") from None
            return {k: v for k, v in form.multi_items()}
        if body.strip():
            raise BadInput(f"unsupported content type {ascii(kind[:40])}; send form data", 400)
        return {}

    def feed_for(token) -> Feed | None:
        """The one feed whose token this is; None when none is (or, should two feeds ever share
        a token despite the check at start, when more than one is: never the last match)."""
        if not isinstance(token, str) or not token:
            return None
        given = token.encode("utf-8", "surrogatepass")
        matches = []
        for feed in config.feeds:
            expected = feed.token()
            if expected is not None and hmac.compare_digest(given, expected.encode("utf-8", "surrogatepass")):
                matches.append(feed)
        return matches[0] if len(matches) == 1 else None

    async def authorised(request: Request) -> tuple[dict, Feed] | JSONResponse:
        """The request's form and the feed its token selects, or the error to answer."""
        try:
            form = await form_of(request)
        except BadInput as exc:
            return error(exc.status, str(exc))
        feed = feed_for(form.get("token"))
        return error(401, "missing or invalid token") if feed is None else (form, feed)

    size_docs = {"type": "integer", "minimum": 1, "maximum": max_per_page, "default": DEFAULT_PER_PAGE}

    @app.post(
        "/convertedin/customers",
        summary="One page of the feed's customers",
        responses={200: {"model": CustomersPage}, **_errors_docs(400, 401, 413, 503)},
        openapi_extra=_body_docs(
            {
                "token": {"type": "string", "description": "the feed's converted.in token"},
                "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
                "par_page": {**size_docs, "description": "rows per page (converted.in's spelling)"},
                "per_page": {**size_docs, "description": "rows per page; par_page wins when both are sent"},
            }
        ),
    )
    async def customers(request: Request):
        found = await authorised(request)
        if isinstance(found, JSONResponse):
            return found
        form, feed = found
        try:
            page = _positive_int("page", form.get("page"), 1, MAX_PAGE)
            size_field = "par_page" if form.get("par_page") not in (None, "") else "per_page"
            per_page = _positive_int(size_field, form.get(size_field), DEFAULT_PER_PAGE, max_per_page)
        except BadInput as exc:
            return error(400, str(exc))
        # The database call runs in the thread pool: it must not stall the event loop.
        try:
            rows, total = await run_in_threadpool(feed_page, warehouse, feed.name, page, per_page)
        except unavailable as exc:
            log.error("feed %s: the warehouse cannot answer: %s", feed.name, type(exc).__name__)
            return error(503, "the warehouse cannot answer now; try again later")
        data = [
            dict(
                zip(
                    FEED_CUSTOMER_KEYS,
                    (
                        int(cid),
                        email,
                        first,
                        last,
                        int(orders),
                        minor_to_major(int(spent), currency),
                        currency,
                        phone,
                        registered,
                        gender,
                    ),
                )
            )
            for cid, email, first, last, orders, spent, currency, phone, registered, gender in rows
        ]
        return envelope(page, per_page, total, data)

    @app.post(
        "/convertedin/storeinfo",
        summary="The feed's store",
        responses={200: {"model": StoreAnswer}, **_errors_docs(400, 401, 413)},
        openapi_extra=_body_docs({"token": {"type": "string", "description": "the feed's converted.in token"}}),
    )
    async def storeinfo(request: Request):
        found = await authorised(request)
        if isinstance(found, JSONResponse):
            return found
        store = found[1].store
        return {
            "code": 200,
            "data": {
                "name": store.name,
                "currency": store.currency,
                "time_zone": store.time_zone,
                "email": store.email,
                "description": store.description,
                "country": store.country,
                "country_code": store.country_code,
            },
        }

    @app.get("/healthz", summary="Liveness and warehouse reachability", responses=_errors_docs(503))
    async def healthz(request: Request):
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        feed = feed_for(token.strip()) if scheme.lower() == "bearer" else None
        probe = feed or config.feeds[0]
        try:
            total = await run_in_threadpool(feed_total, warehouse, probe.name)
        except unavailable as exc:
            log.error("health: the warehouse cannot answer: %s", type(exc).__name__)
            return error(503, "the warehouse cannot answer")
        return {"status": "ok"} if feed is None else {"status": "ok", "feed": {"name": feed.name, "total": total}}

    return app
