"""A GiftPro sandbox: the documented orders API over real HTTP, seeded data, its own ground truth.

API (as documented; see README for the assumptions): ``GET /orders/`` newest first, 50 a page,
page ``p`` from 1, ``domainID``, date operators ``[gte] [gt] [lte] [lt]`` and ``=`` on
``orders.dateCreated`` and on ``changed`` (also ``orders.changed``), a bare JSON array;
``GET /orders/{id}/`` (a one-element array) and ``GET /orders/{id}/rows/``; the API key as the
HTTP Basic user name (empty password) or in ``X-API-Key``; errors shaped
``{"result": {"type": "error", "reason": ..., "messages": [...]}}``; timestamps naive
Europe/London ``Y-m-d H:i:s``.

Admin endpoints under ``/_sandbox/`` (no key) let tests and the demo read the whole store, change
orders at chosen times (refunds, chargebacks, edited emails, consent) and inject faults.

    python -m sandbox.giftpro --port 8801 --seed 42 --orders 2000
"""

from __future__ import annotations

import argparse
import base64
import bisect
import copy
import random
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from include.config import FeedConfig
from include.sources.local_time import SOURCE_FORMAT, format_local, parse_local
from sandbox import truth
from sandbox.server import Faults, ThreadedServer, apply_faults

LONDON = ZoneInfo("Europe/London")
DEFAULT_API_KEY = "gp_sandbox_key"
PAGE_SIZE = 50
DOMAINS = {
    3521: ("Ampress Park Hotel", "GBP"),
    3522: ("Ampress Park Spa", "GBP"),
    3523: ("Ampress Park Restaurant", "GBP"),
    4101: ("Seaview Resort Galway", "EUR"),
    4102: ("Seaview Resort Kerry", "EUR"),
    9999: ("Ampress Staff Shop", "GBP"),  # a property no feed covers
}
_FILTER = re.compile(r"^(?:orders\.)?(dateCreated|changed)(?:\[(gte|gt|lte|lt)\])?$")
_OPS = {None: str.__eq__, "gte": str.__ge__, "gt": str.__gt__, "lte": str.__le__, "lt": str.__lt__}


def _local_text(moment: datetime | str) -> str:
    if isinstance(moment, str):
        datetime.strptime(moment, SOURCE_FORMAT)  # validates
        return moment
    return format_local(moment, LONDON)


class GiftProStore:
    """Orders in memory, thread-safe; every change stamps `changed` with the time it is given."""

    def __init__(self):
        self.lock = threading.RLock()
        self.orders: dict[int, dict] = {}
        self.next_id = 100_001
        self.faults = Faults()
        self.page_hooks: dict[int, Callable[[GiftProStore], None]] = {}
        # Per domain (and None: all), orders sorted by (dateCreated, orderID), and their
        # dateCreated alone for bisecting; rebuilt after any change. Pages are then served
        # without scanning the store, as fast as a large history needs.
        self._index: dict[int | None, tuple[list[dict], list[str]]] | None = None

    # -- changes

    def add_order(self, **fields) -> dict:
        with self.lock:
            order_id = fields.pop("orderID", None) or self.next_id
            self.next_id = max(self.next_id, int(order_id)) + 1
            domain = int(fields.get("domainID", 3521))
            name, currency = DOMAINS.get(domain, (f"Property {domain}", "GBP"))
            created = _local_text(fields.pop("dateCreated", "2026-01-01 12:00:00"))
            order = {
                "orderID": int(order_id),
                "domainID": domain,
                "domainName": name,
                "dateCreated": created,
                "changed": created,
                "emailAddress": "customer@example.com",
                "currencyCode": currency,
                "total": 25.0,
                "delivery": 0.0,
                "paymentMethod": "Public",
                "status": "Complete",
                "customerName": "",
                "billingAddressLine1": "1 High Street",
                "billingAddressLine2": "",
                "billingAddressLocality": "Felixstowe",
                "billingAddressCounty": "Suffolk",
                "billingAddressPostcode": "IP11 7BL",
                "billingAddressCountry": "United Kingdom",
                "deliveryName": "",
                "deliveryMethodName": "Email",
                "marketingOptedIn": False,
                "marketingDoubleOptedIn": False,
                "refunded": False,
                "personalTaxIdentifier": None,
            }
            order.update(fields)
            if "changed" in fields:
                order["changed"] = _local_text(fields["changed"])
            self.orders[order["orderID"]] = order
            self._index = None
            return dict(order)

    def update(self, order_id: int, at: datetime | str, **fields) -> dict:
        """Change an order as GiftPro would, stamping `changed` with `at`."""
        with self.lock:
            order = self.orders[int(order_id)]
            order.update(fields)
            order["changed"] = _local_text(at)
            self._index = None
            return dict(order)

    def refund(self, order_id: int, at) -> dict:
        return self.update(order_id, at, refunded=True)

    def chargeback(self, order_id: int, at) -> dict:
        return self.update(order_id, at, status="Chargeback")

    def edit_email(self, order_id: int, email: str, at) -> dict:
        return self.update(order_id, at, emailAddress=email)

    def set_consent(self, order_id: int, opted_in: bool, at) -> dict:
        return self.update(order_id, at, marketingOptedIn=bool(opted_in))

    def on_page(self, page: int, hook: Callable[[GiftProStore], None]) -> None:
        """Run `hook` (once) just before list page `page` is served: lists that move while read."""
        self.page_hooks[page] = hook

    def reset(self) -> None:
        with self.lock:
            self.orders.clear()
            self._index = None
            self.page_hooks.clear()
            self.faults.clear()

    def dump(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy(sorted(self.orders.values(), key=lambda o: o["orderID"]))

    # -- reads

    def list_orders(self, query: dict[str, str]) -> list[dict]:
        filters, page, domain = [], 1, None
        for key, value in query.items():
            if key == "p":
                if not value.isdigit() or int(value) < 1:
                    raise BadRequest(f"p must be a positive integer, got {value[:20]!r}")
                page = int(value)
            elif key == "domainID":
                if not value.isdigit():
                    raise BadRequest(f"domainID must be an integer, got {value[:20]!r}")
                domain = int(value)
            elif (match := _FILTER.match(key)) is not None:
                try:
                    text = datetime.strptime(value.strip(), SOURCE_FORMAT).strftime(SOURCE_FORMAT)
                except ValueError:
                    raise BadRequest(f"{key}: {value[:30]!r} is not a date 'Y-m-d H:i:s'") from None
                filters.append((match.group(1), _OPS[match.group(2)], text))
        hook = self.page_hooks.pop(page, None)
        if hook is not None:
            hook(self)
        with self.lock:
            ordered, created = self._sorted(domain)
            # dateCreated filters narrow the range by bisection; the others are checked row by
            # row, newest first, only until the page is full.
            lo, hi = 0, len(ordered)
            for name, op, value in filters:
                if name == "dateCreated":
                    if op in (str.__ge__, str.__eq__):
                        lo = max(lo, bisect.bisect_left(created, value))
                    if op is str.__gt__:
                        lo = max(lo, bisect.bisect_right(created, value))
                    if op in (str.__le__, str.__eq__):
                        hi = min(hi, bisect.bisect_right(created, value))
                    if op is str.__lt__:
                        hi = min(hi, bisect.bisect_left(created, value))
            others = [(f, op, v) for f, op, v in filters if f != "dateCreated"]
            skip, rows = (page - 1) * PAGE_SIZE, []
            for i in range(hi - 1, lo - 1, -1):
                order = ordered[i]
                if all(op(order[f], v) for f, op, v in others):
                    if skip:
                        skip -= 1
                    else:
                        rows.append(order)
                        if len(rows) == PAGE_SIZE:
                            break
            return copy.deepcopy(rows)

    def _sorted(self, domain: int | None) -> tuple[list[dict], list[str]]:
        if self._index is None:
            everything = sorted(self.orders.values(), key=lambda o: (o["dateCreated"], o["orderID"]))
            groups: dict[int | None, list[dict]] = {None: everything}
            for order in everything:
                groups.setdefault(order["domainID"], []).append(order)
            self._index = {d: (rows, [o["dateCreated"] for o in rows]) for d, rows in groups.items()}
        return self._index.get(domain, ([], []))

    def get(self, order_id: int) -> dict | None:
        with self.lock:
            order = self.orders.get(order_id)
            return copy.deepcopy(order) if order else None


class BadRequest(ValueError):
    pass


def _error(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"result": {"type": "error", "reason": reason, "messages": [message]}}, status_code=status)


def create_app(store: GiftProStore, api_key: str = DEFAULT_API_KEY) -> FastAPI:
    app = FastAPI(title="GiftPro sandbox")

    @app.middleware("http")
    async def faults(request: Request, call_next):
        return await apply_faults(store.faults, request, call_next)

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if request.url.path.startswith("/_sandbox") or _key(request) == api_key:
            return await call_next(request)
        return _error(401, "permission_denied", "a valid API key is required")

    @app.get("/orders/")
    def list_orders(request: Request):
        try:
            # Plain JSON values already: straight to the response, without FastAPI's encoder
            # (which costs more than the rest of a page together).
            return JSONResponse(store.list_orders(dict(request.query_params)))
        except BadRequest as exc:
            return _error(400, "invalid_params", str(exc))

    @app.get("/orders/{order_id}/")
    def get_order(order_id: int):
        order = store.get(order_id)
        return [order] if order else _error(404, "not_found", f"order {order_id} not found")

    @app.get("/orders/{order_id}/rows/")
    def get_rows(order_id: int):
        order = store.get(order_id)
        if not order:
            return _error(404, "not_found", f"order {order_id} not found")
        voided = order["refunded"] or order["status"] == "Chargeback"
        return [
            {
                "rowID": order_id * 10,
                "orderID": order_id,
                "productID": 8,
                "name": "Monetary Voucher",
                "type": "Voucher",
                "redeemCode": f"SBX{order_id}",
                "clientCode": "",
                "validFromDate": order["dateCreated"],
                "redeemedDate": "",
                "expiryDate": "",
                "status": "Void" if voided else "Valid",
                "total": order["total"],
                "currencyCode": order["currencyCode"],
                "partiallyRedeemable": False,
                "redeemHistory": [],
            }
        ]

    @app.get("/_sandbox/health")
    def health():
        return {"status": "ok", "orders": len(store.orders)}

    @app.get("/_sandbox/orders")
    def dump():
        return store.dump()

    @app.post("/_sandbox/orders")
    async def add(request: Request):
        body = await request.json()
        return [store.add_order(**fields) for fields in (body if isinstance(body, list) else [body])]

    @app.post("/_sandbox/orders/{order_id}")
    async def change(order_id: int, request: Request):
        body = dict(await request.json())
        return store.update(order_id, body.pop("changed"), **body)

    @app.post("/_sandbox/faults")
    async def add_fault(request: Request):
        body = await request.json()
        store.faults.add(str(body["kind"]), int(body.get("count", 1)), float(body.get("value", 0)))
        return {"status": "ok"}

    @app.post("/_sandbox/latency")
    async def set_latency(request: Request):
        """Every API request waits this many seconds before it is answered (0: none)."""
        store.faults.latency = max(0.0, float((await request.json())["seconds"]))
        return {"status": "ok"}

    @app.post("/_sandbox/reset")
    def reset():
        store.reset()
        return {"status": "ok"}

    return app


def _key(request: Request) -> str | None:
    header = request.headers.get("x-api-key")
    if header:
        return header
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, _ = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
        return user
    return None


# --------------------------------------------------------------------------- seeded data

FIRST = [
    "Mary",
    "Nathan",
    "Zoë",
    "José",
    "Łukasz",
    "Siobhán",
    "Aoife",
    "Chloé",
    "Oliver",
    "Amelia",
    "صالح",
    "Björn",
    "Ines",
    "Noah",
    "Grace",
    "Seán",
    "Fatima",
    "Mateo",
    "Ava",
    "Jack",
]
LAST = [
    "Green",
    "Owen",
    "Brontë",
    "Álvarez",
    "Żółć",
    "Ó Briain",
    "Murphy",
    "Dubois",
    "Smith",
    "Jones",
    "عادل",
    "Müller",
    "Costa",
    "Walsh",
    "Patel",
    "Kelly",
    "Nguyen",
    "García",
    "Brown",
    "Taylor",
]
_START = datetime(2025, 1, 1, tzinfo=LONDON)
_END = datetime(2026, 11, 1, tzinfo=LONDON)


#: Odd but meaningful spellings the seed adds (see seed_store); the last three must be quarantined.
ODD_GIFTPRO_VALUES = (
    {"marketingOptedIn": "false"},
    {"marketingOptedIn": "0"},
    {"marketingOptedIn": "true", "refunded": "no"},
    {"refunded": "yes"},
    {"refunded": 0, "marketingOptedIn": 1},
    {"status": "complete"},
    {"status": "COMPLETE", "marketingOptedIn": "FALSE"},
    {"status": " Complete ", "total": "40.00"},
    {"marketingOptedIn": "No"},
    {"total": -25.0},
    {"total": "-12.50", "marketingOptedIn": "false"},
    {"marketingOptedIn": "maybe"},
)


def seed_store(seed: int = 42, orders: int = 2000, store: GiftProStore | None = None) -> GiftProStore:
    """Reproducible, realistic data: repeat customers across properties and brands, refunds and
    chargebacks after purchase, consent given and withdrawn, padded and mixed-case emails,
    non-ASCII names, orders in the DST changes of 2026, and a few bad records."""
    rng = random.Random(seed)
    store = store or GiftProStore()
    customers = []
    for i in range(max(orders * 2 // 5, 1)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        brands = rng.choices([(3521, 3522, 3523), (4101, 4102), (3521, 3522, 3523, 4101, 4102, 9999)], [6, 3, 1])[0]
        phone = f"+4477009{rng.randrange(10**5):05d}" if rng.random() < 0.25 else None
        customers.append((f"guest{i}.{seed}@example.com", f"{first} {last}", brands, phone))
    span = int((_END - _START).total_seconds())
    dst = [
        "2026-10-25 01:05:00",
        "2026-10-25 01:40:00",
        "2026-10-25 00:55:00",
        "2026-10-25 02:10:00",
        "2026-03-29 00:50:00",
        "2026-03-29 02:05:00",
        "2026-03-29 00:59:59",
    ]
    for n in range(orders):
        email, name, brands, phone = customers[
            min(int(rng.paretovariate(1.2)) - 1, len(customers) - 1)
            if rng.random() < 0.3
            else rng.randrange(len(customers))
        ]
        domain = rng.choice(brands)
        created = dst[n] if n < len(dst) else format_local(_START + timedelta(seconds=rng.randrange(span)), LONDON)
        shown = rng.choice([email, email.upper(), f"  {email} ", email.title(), email])
        status = rng.choices(["Complete", "Pending", "Cancelled"], [92, 4, 4])[0]
        order = store.add_order(
            domainID=domain,
            dateCreated=created,
            emailAddress=shown,
            total=round(rng.choice([25, 50, 75, 100, 150]) + rng.choice([0, 0, 0.5, 0.99, 12.34]), 2),
            delivery=rng.choice([0.0, 2.95]),
            status=status,
            customerName=name if rng.random() < 0.95 else "",
            deliveryName=name,
            marketingOptedIn=rng.random() < 0.8,
            phoneNumber=phone if rng.random() < 0.7 else None,
        )
        later = parse_local(created, LONDON) + timedelta(days=rng.randint(1, 60))
        later = min(later, _END - timedelta(minutes=1))
        roll = rng.random()
        if status == "Complete" and roll < 0.08:
            store.refund(order["orderID"], later)
        elif status == "Complete" and roll < 0.095:
            store.chargeback(order["orderID"], later)
        elif roll < 0.13:
            store.set_consent(order["orderID"], not order["marketingOptedIn"], later)
    # Values as real payloads spell them: flags as text or 0/1, statuses in another case, amounts
    # as text, and values no one should guess at (a negative total, consent "maybe"). Each is the
    # latest order of a repeat customer, so a misread flag changes who is published.
    for k, fields in enumerate(ODD_GIFTPRO_VALUES):
        email, name, brands, _ = customers[(k * 7) % len(customers)]
        store.add_order(
            domainID=brands[0],
            dateCreated=format_local(_END - timedelta(days=2, hours=3 * k), LONDON),
            emailAddress=email,
            customerName=name,
            **{"marketingOptedIn": True, **fields},
        )
    for created, fields in (
        ("2026-05-01 10:00:00", {"emailAddress": "   "}),
        ("2026-05-02 10:00:00", {"currencyCode": "XYZ", "emailAddress": "bad.currency@example.com"}),
        ("2026-05-03 10:00:00", {"total": "n/a", "emailAddress": "bad.total@example.com"}),
    ):
        store.add_order(domainID=3521, dateCreated=created, customerName="Bad Record", marketingOptedIn=True, **fields)
    return store


def expected_customers(orders: list[dict], config: FeedConfig) -> dict[tuple[str, str], dict]:
    """The ground truth of a GiftPro-only account (see include/sandbox/truth.py)."""
    return truth.expected_customers(config, giftpro_orders=orders)


def serve_in_thread(store: GiftProStore, host: str = "127.0.0.1", port: int = 0, api_key: str = DEFAULT_API_KEY):
    """The sandbox on a real socket in a background thread: `.url`, `.store`, `.stop()`."""
    server = ThreadedServer(create_app(store, api_key), host, port)
    server.store = store
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="GiftPro sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every API request waits")
    args = parser.parse_args()
    import uvicorn

    store = seed_store(args.seed, args.orders)
    store.faults.latency = args.latency
    print(f"GiftPro sandbox: http://{args.host}:{args.port} ({len(store.orders)} orders, seed {args.seed})", flush=True)
    uvicorn.run(create_app(store, args.api_key), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
