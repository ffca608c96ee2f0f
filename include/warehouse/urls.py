"""Warehouse URLs (``sqlite:///path`` or ``postgresql://…``) from the environment or a connection's
fields. Reading an Airflow connection is :mod:`include.warehouse.airflow_url`'s: this module runs
in the feed service, which has no Airflow."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlparse

from include.config import PROJECT_ROOT

DEFAULT_SQLITE_PATH = PROJECT_ROOT / "data" / "warehouse.db"
CONN_ENV = "AIRFLOW_CONN_CUSTOMER_FEED_DB"


def url_from_connection(conn) -> str:
    """An Airflow Connection (or anything with its attributes) -> a warehouse URL."""
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    if conn_type in ("postgres", "postgresql"):
        auth = quote(conn.login or "", safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        host = f"{conn.host or 'localhost'}:{conn.port or 5432}"
        return f"postgresql://{auth}{'@' if auth else ''}{host}/{conn.schema or ''}"
    raise ValueError(f"customer_feed_db: unsupported connection type {conn.conn_type!r} (use sqlite or postgres)")


def url_from_env(environ=os.environ) -> str:
    """The warehouse URL for processes without Airflow (the feed service, benchmarks).

    ``CUSTOMER_FEED_DB_URL`` wins; otherwise ``AIRFLOW_CONN_CUSTOMER_FEED_DB`` in Airflow's JSON or
    URI form; otherwise the embedded SQLite file under ``data/``.
    """
    if environ.get("CUSTOMER_FEED_DB_URL"):
        return environ["CUSTOMER_FEED_DB_URL"]
    raw = environ.get(CONN_ENV, "").strip()
    if not raw:
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"
    if raw.startswith("{"):
        data = json.loads(raw)
        conn = _ConnFields(
            data.get("conn_type"),
            data.get("host"),
            data.get("port"),
            data.get("login"),
            data.get("password"),
            data.get("schema"),
        )
        return url_from_connection(conn)
    parsed = urlparse(raw)
    if parsed.scheme == "sqlite":
        return f"sqlite:///{unquote(parsed.netloc + parsed.path) if parsed.netloc else parsed.path[1:] or parsed.path}"
    return raw.replace("postgres://", "postgresql://", 1)


@dataclass
class _ConnFields:
    conn_type: str | None
    host: str | None
    port: int | None
    login: str | None
    password: str | None
    schema: str | None
