"""A Different Breed sandbox: the client API of one profile over real HTTP, with seeded data.

Base path ``/client/api/v1``; headers ``admin-key`` and ``profile`` on every call, ``customer``
on customer-scoped ones; 401 without a valid key or profile; 429 with ``Retry-After`` past 250
requests in 10 seconds. Lists answer ``{"payload": [...], "meta": {"total": n}}`` paged by
``limit`` (at most 100) and ``skip``.

Assumptions (the public documentation does not show them; see README): orders carry
``order_id, cust_id, created_at, updated_at`` (ISO 8601 UTC), ``status`` (``paid``, ``refunded``,
``cancelled``, ``pending``), ``total`` (major units), ``currency``, ``marketing_opt_in``;
``date_from``/``date_to`` filter on ``updated_at`` (so a refund shows up as a change); a deleted
or unknown customer answers 404 ``{"error": "customer_not_found", "message": "customer not found"}``.

    python -m sandbox.differentbreed --port 8802 --seed 42 [--write-customer-list PATH]
"""

from __future__ import annotations

import argparse
import collections
import csv
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox.server import Faults, ThreadedServer, apply_faults

DEFAULT_KEY = "db_sandbox_key"
PROFILE = "ampress-events"
BASE = "/client/api/v1"
UTC = UTC


def iso(moment: datetime | str) -> str:
    if isinstance(moment, str):
        return moment
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class DifferentBreedStore:
    def __init__(self, profile: str = PROFILE, rate_limit: int = 250, rate_period: float = 10.0):
        self.profile = profile
        self.lock = threading.RLock()
        self.customers: dict[str, dict] = {}
        self.orders: dict[str, dict] = {}
        self.faults = Faults()
        self.rate_limit, self.rate_period = rate_limit, rate_period
        self.recent: collections.deque[float] = collections.deque()
        self.requests = 0
        self._next = 1

    def _id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}_{self._next:06d}"

    def create_customer(self, email: str, forename: str, surname: str, at, cust_id: str | None = None) -> dict:
        with self.lock:
            customer = {
                "cust_id": cust_id or self._id("cus"),
                "email": email,
                "forename": forename,
                "surname": surname,
                "created_at": iso(at),
                "updated_at": iso(at),
            }
            self.customers[customer["cust_id"]] = customer
            return dict(customer)

    def update_customer(self, cust_id: str, at, **fields) -> dict:
        with self.lock:
            self.customers[cust_id].update(fields, updated_at=iso(at))
            return dict(self.customers[cust_id])

    def delete_customer(self, cust_id: str) -> None:
        """Permanent, as documented: the customer and all of its orders are gone."""
        with self.lock:
            self.customers.pop(cust_id, None)
            for order_id in [k for k, o in self.orders.items() if o["cust_id"] == cust_id]:
                del self.orders[order_id]

    def add_order(
        self,
        cust_id: str,
        at,
        total=25.0,
        status="paid",
        currency="GBP",
        marketing_opt_in=True,
        event_name="Summer Gala",
        order_id: str | None = None,
    ) -> dict:
        with self.lock:
            order = {
                "order_id": order_id or self._id("ord"),
                "cust_id": cust_id,
                "created_at": iso(at),
                "updated_at": iso(at),
                "status": status,
                "total": total,
                "currency": currency,
                "marketing_opt_in": marketing_opt_in,
                "event_name": event_name,
                "performance_date": iso(_parse(iso(at)) + timedelta(days=30)),
                "quantity": 2,
            }
            self.orders[order["order_id"]] = order
            return dict(order)

    def update_order(self, order_id: str, at, **fields) -> dict:
        with self.lock:
            self.orders[order_id].update(fields, updated_at=iso(at))
            return dict(self.orders[order_id])

    def dump(self) -> dict:
        with self.lock:
            return {
                "customers": [dict(c) for c in sorted(self.customers.values(), key=lambda c: c["cust_id"])],
                "orders": [dict(o) for o in sorted(self.orders.values(), key=lambda o: o["order_id"])],
            }

    def admit(self) -> float | None:
        """The rate limit: None to go ahead, else the seconds to wait (sliding window)."""
        with self.lock:
            now = time.monotonic()
            while self.recent and now - self.recent[0] >= self.rate_period:
                self.recent.popleft()
            if len(self.recent) >= self.rate_limit:
                return self.rate_period - (now - self.recent[0])
            self.recent.append(now)
            self.requests += 1
            return None


def create_app(store: DifferentBreedStore, admin_key: str = DEFAULT_KEY) -> FastAPI:
    app = FastAPI(title="Different Breed sandbox")

    def fail(status: int, error: str, message: str) -> JSONResponse:
        return JSONResponse({"error": error, "message": message}, status_code=status)

    @app.middleware("http")
    async def faults(request: Request, call_next):
        return await apply_faults(store.faults, request, call_next)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        if request.headers.get("admin-key") != admin_key or request.headers.get("profile") != store.profile:
            return fail(401, "unauthorised", "a valid admin-key and profile are required")
        wait = store.admit()
        if wait is not None:
            return JSONResponse(
                {"error": "rate_limited", "message": "250 requests per 10 seconds"},
                status_code=429,
                headers={"Retry-After": f"{max(wait, 0.01):.2f}"},
            )
        return await call_next(request)

    def customer_not_found() -> JSONResponse:
        # The API's own answer for an unknown or deleted customer; the pipeline takes only this
        # body as proof of a deletion (a 404 from a wrong path answers {"detail": "Not Found"}).
        return fail(404, "customer_not_found", "customer not found")

    def customer_of(request: Request) -> dict | None:
        return store.customers.get(request.headers.get("customer", ""))

    @app.get(f"{BASE}/customer")
    def get_customer(request: Request):
        customer = customer_of(request)
        return {"payload": dict(customer)} if customer else customer_not_found()

    @app.post(f"{BASE}/customer/create")
    async def create_customer(request: Request):
        body = await request.json()
        if not body.get("email"):
            return fail(400, "invalid", "email is required")
        return {
            "payload": store.create_customer(
                body["email"], body.get("forename", ""), body.get("surname", ""), datetime.now(UTC)
            )
        }

    @app.post(f"{BASE}/customer/update")
    async def update_customer(request: Request):
        customer = customer_of(request)
        if not customer:
            return customer_not_found()
        body = {k: v for k, v in (await request.json()).items() if k in ("email", "forename", "surname")}
        return {"payload": store.update_customer(customer["cust_id"], datetime.now(UTC), **body)}

    @app.get(f"{BASE}/customer/delete")
    def delete_customer(request: Request):
        customer = customer_of(request)
        if not customer:
            return customer_not_found()
        store.delete_customer(customer["cust_id"])
        return {"payload": {"deleted": True}}

    @app.get(f"{BASE}/orders")
    def list_orders(
        request: Request,
        limit: int = 20,
        skip: int = 0,
        date_from: str | None = None,
        date_to: str | None = None,
        query: str | None = None,
    ):
        customer = customer_of(request)
        if not customer:
            return customer_not_found()
        if not 1 <= limit <= 100 or skip < 0:
            return fail(400, "invalid", "limit must be 1..100 and skip >= 0")
        try:
            lo = _parse(date_from) if date_from else None
            hi = _parse(date_to) if date_to else None
        except ValueError:
            return fail(400, "invalid", "date_from/date_to must be ISO 8601")
        with store.lock:
            rows = [
                o
                for o in store.orders.values()
                if o["cust_id"] == customer["cust_id"]
                and (lo is None or _parse(o["updated_at"]) >= lo)
                and (hi is None or _parse(o["updated_at"]) < hi)
                and (not query or query.lower() in o["event_name"].lower())
            ]
        rows.sort(key=lambda o: (o["updated_at"], o["order_id"]), reverse=True)
        return {"payload": [dict(o) for o in rows[skip : skip + limit]], "meta": {"total": len(rows)}}

    @app.get(f"{BASE}/orders/order")
    def get_order(request: Request, order_id: str):
        customer = customer_of(request)
        order = store.orders.get(order_id)
        if not customer or not order or order["cust_id"] != customer["cust_id"]:
            return fail(404, "not_found", "order not found")
        return {"payload": dict(order)}

    @app.get(f"{BASE}/address/all")
    def addresses(request: Request):
        return {"payload": []} if customer_of(request) else customer_not_found()

    @app.get("/_sandbox/health")
    def health():
        return {"status": "ok", "customers": len(store.customers)}

    @app.get("/_sandbox/dump")
    def dump():
        return store.dump()

    @app.post("/_sandbox/faults")
    async def add_fault(request: Request):
        body = await request.json()
        store.faults.add(str(body["kind"]), int(body.get("count", 1)), float(body.get("value", 0)))
        return {"status": "ok"}

    return app


_START = datetime(2025, 1, 1, tzinfo=UTC)
_END = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)


#: Odd but meaningful spellings the seed adds; the last two must be quarantined.
ODD_DIFFERENTBREED_VALUES = (
    {"marketing_opt_in": "false"},
    {"marketing_opt_in": "0"},
    {"marketing_opt_in": "1", "status": "Paid"},
    {"status": "PAID", "total": "42.75"},
    {"status": "Refunded"},
    {"total": -35.0},
    {"marketing_opt_in": "unknown"},
)


def seed_store(
    seed: int = 42, customers: int = 120, store: DifferentBreedStore | None = None
) -> tuple[DifferentBreedStore, list[str]]:
    """Reproducible data and the merchant's customer list for it.

    About half the customers share an email with the GiftPro sandbox (seed 42: guestN.42@…),
    written in another case or with padding; the rest are only here. Orders are paid, refunded
    later, cancelled or pending; one customer has been deleted at the source but stays in the
    merchant's list; two orders are malformed (unknown currency, unparseable total).
    """
    rng = random.Random(seed)
    store = store or DifferentBreedStore()
    span = int((_END - _START).total_seconds())
    listed = []
    forenames = ["Chloé", "Seán", "Amelia", "Björn", "Aoife", "Oliver", "Zoë", "Mateo"]
    surnames = ["Dubois", "Kelly", "Brown", "Müller", "Walsh", "Smith", "Brontë", "García"]
    for n in range(customers):
        if n % 2 == 0:
            email = rng.choice([f"GUEST{n}.42@EXAMPLE.COM", f"  guest{n}.42@example.com ", f"Guest{n}.42@Example.com"])
        else:
            email = f"events.fan{n}@example.org"
        registered = _START + timedelta(seconds=rng.randrange(span))
        customer = store.create_customer(
            email, rng.choice(forenames), rng.choice(surnames), registered, cust_id=f"cus_{seed:02d}{n:05d}"
        )
        listed.append(customer["cust_id"])
        for k in range(rng.choice([0, 1, 1, 2, 3, 5])):
            created = registered + timedelta(seconds=rng.randrange(max(int((_END - registered).total_seconds()), 1)))
            status = rng.choices(["paid", "cancelled", "pending"], [90, 5, 5])[0]
            order = store.add_order(
                customer["cust_id"],
                created,
                total=rng.choice([18.5, 35.0, 42.75, 120.0]),
                status=status,
                marketing_opt_in=rng.random() < 0.8,
                order_id=f"ord_{seed:02d}{n:05d}{k}",
            )
            if status == "paid" and rng.random() < 0.1:
                store.update_order(
                    order["order_id"], min(created + timedelta(days=rng.randint(1, 20)), _END), status="refunded"
                )
    # Values as real payloads spell them (flags as text, statuses in another case) and a negative
    # total, each the latest order of a listed customer.
    for k, fields in enumerate(ODD_DIFFERENTBREED_VALUES):
        cust_id = listed[(5 + 4 * k) % len(listed)]
        store.add_order(cust_id, _END - timedelta(days=1, hours=2 * k), order_id=f"ord_odd_{seed:02d}_{k}", **fields)
    bad = listed[1]
    store.add_order(bad, "2026-05-01T10:00:00Z", currency="XYZ", order_id="ord_bad_currency")
    store.add_order(bad, "2026-05-02T10:00:00Z", total="n/a", order_id="ord_bad_total")
    store.delete_customer(listed[3])  # deleted at the source; the merchant's list still names it
    return store, listed


def write_customer_list(path: Path, profile: str, cust_ids: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["profile", "cust_id"])
        writer.writerows((profile, c) for c in cust_ids)


def serve_in_thread(store: DifferentBreedStore, host: str = "127.0.0.1", port: int = 0, admin_key: str = DEFAULT_KEY):
    server = ThreadedServer(create_app(store, admin_key), host, port)
    server.store = store
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="Different Breed sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8802)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--customers", type=int, default=120)
    parser.add_argument("--admin-key", default=DEFAULT_KEY)
    parser.add_argument("--write-customer-list", type=Path)
    args = parser.parse_args()
    import uvicorn

    store, listed = seed_store(args.seed, args.customers)
    if args.write_customer_list:
        write_customer_list(args.write_customer_list, store.profile, listed)
    print(
        f"Different Breed sandbox: http://{args.host}:{args.port}{BASE} ({len(store.customers)} customers)", flush=True
    )
    uvicorn.run(create_app(store, args.admin_key), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
