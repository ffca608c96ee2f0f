"""The converted.in feed service: the customer table as converted.in pulls it.

``POST /convertedin/customers`` (form fields ``token``, ``page``, ``par_page`` — converted.in's
customers page spells it so; ``per_page``, as its other list endpoints say, is accepted too)
answers the paginated envelope ``{current_page, data, from, last_page, per_page, to, total}``
with Laravel's paginator arithmetic; ``POST /convertedin/storeinfo`` answers the store.

The token selects the feed. A missing or wrong token is a 401 with no data; a bad ``page`` or
``per_page`` a 400 saying which and why. No token or email address is ever logged. The service
reads the warehouse only (no Airflow), through a connection pool on PostgreSQL.

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
from starlette.concurrency import run_in_threadpool

from include.config import Feed, FeedConfig, load_config
from include.money import minor_to_major
from include.schema import FEED_CUSTOMER_KEYS
from include.warehouse import Warehouse, url_from_env
from include.warehouse.feed_reads import feed_page, feed_total

log = logging.getLogger(__name__)
MAX_PAGE = 1_000_000
DEFAULT_PER_PAGE = 100


class BadInput(ValueError):
    pass


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
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    text = str(raw).strip()
    if not text.lstrip("-").isdigit():
        raise BadInput(f"{name} must be a whole number, got {text[:20]!r}")
    value = int(text)
    if value < 1:
        raise BadInput(f"{name} must be at least 1, got {value}")
    if value > maximum:
        raise BadInput(f"{name} must be at most {maximum}, got {text[:20]}")
    return value


def create_app(
    config: FeedConfig | None = None, warehouse: Warehouse | None = None, max_per_page: int | None = None
) -> FastAPI:
    config = config or load_config()
    warehouse = warehouse or Warehouse(url_from_env())
    max_per_page = max_per_page or int(os.environ.get("FEED_MAX_PER_PAGE", "1000"))
    for feed in config.feeds:
        if feed.token() is None:
            log.warning("feed %s is unreachable: environment variable %s is not set", feed.name, feed.token_env)

    app = FastAPI(title="customer feed for converted.in", docs_url=None, redoc_url=None)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"code": status, "message": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error(400, "; ".join(str(e.get("msg")) for e in exc.errors())[:300] or "bad request")

    async def form_of(request: Request) -> dict:
        """Form data as converted.in sends it; a JSON object is accepted as well."""
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                raise BadInput("the body is not valid JSON; converted.in sends form data") from None
            if not isinstance(body, dict):
                raise BadInput("the body must be form data")
            return body
        return dict(await request.form())

    def feed_for(token) -> Feed | None:
        if not isinstance(token, str) or not token:
            return None
        match = None
        for feed in config.feeds:
            expected = feed.token()
            if expected is not None and hmac.compare_digest(token.encode(), expected.encode()):
                match = feed
        return match

    async def authorised(request: Request) -> tuple[dict, Feed] | JSONResponse:
        """The request's form and the feed its token selects, or the error to answer."""
        try:
            form = await form_of(request)
        except BadInput as exc:
            return error(400, str(exc))
        feed = feed_for(form.get("token"))
        return error(401, "missing or invalid token") if feed is None else (form, feed)

    @app.post("/convertedin/customers")
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
        rows, total = await run_in_threadpool(feed_page, warehouse, feed.name, page, per_page)
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

    @app.post("/convertedin/storeinfo")
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

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "feeds": {f.name: {"total": feed_total(warehouse, f.name)} for f in config.feeds}}

    return app
