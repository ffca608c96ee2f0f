"""The warehouse URL from an Airflow connection, for tasks. Kept out of the package's
``__init__`` so the feed service, which imports :mod:`include.warehouse`, never loads Airflow."""

from __future__ import annotations

from airflow.sdk import BaseHook

from include.warehouse.urls import DEFAULT_SQLITE_PATH, url_from_connection


def url_from_airflow(
    conn_id: str = "customer_feed_db", default: str | None = f"sqlite:///{DEFAULT_SQLITE_PATH}"
) -> str:
    """A database URL from Airflow's connection (any secrets backend); `default` when no such
    connection exists (the embedded SQLite file for the warehouse; None makes it an error)."""
    try:
        return url_from_connection(BaseHook.get_connection(conn_id))
    except Exception as exc:  # AirflowNotFoundException's home moved between versions
        if default is None or ("isn't defined" not in str(exc) and "not found" not in str(exc).lower()):
            raise
        return default
