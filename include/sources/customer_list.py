"""Which Different Breed customers to poll.

Different Breed has no list-all-customers endpoint: the merchant's own customer system holds the
`cust_id`s. The list comes from one of (``differentbreed`` section of the feed configuration):

* ``customers_file``: a CSV with a header ``profile,cust_id`` (a path relative to the project, or
  absolute), e.g. an export of the merchant's CRM;
* ``customers_sql`` on connection ``customers_sql_conn_id`` (any DB-API connection Airflow has a
  provider for: sqlite, postgres, ...): a query
  returning the cust_ids in its first column; a ``?`` in it is bound to the profile.
"""

from __future__ import annotations

import csv
from pathlib import Path

from include.config import PROJECT_ROOT, DifferentBreedSettings


def load_customer_ids(settings: DifferentBreedSettings, profile: str) -> list[str]:
    """The profile's cust_ids, each once, in a stable order."""
    if settings.customers_sql:
        ids = _from_sql(settings, profile)
    elif settings.customers_file:
        ids = _from_file(Path(settings.customers_file), profile)
    else:
        raise ValueError("differentbreed: set customers_file or customers_sql in the feed configuration")
    return sorted({i.strip() for i in ids if i and i.strip()})


def _from_file(path: Path, profile: str) -> list[str]:
    path = path if path.is_absolute() else PROJECT_ROOT / path
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"profile", "cust_id"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))} (header must be profile,cust_id)")
        return [row["cust_id"] for row in reader if row["profile"].strip() == profile]


def _from_sql(settings: DifferentBreedSettings, profile: str) -> list[str]:
    """Through the connection's own Airflow hook (any DB-API provider: sqlite, postgres, ...)."""
    from airflow.sdk import BaseHook

    if not settings.customers_sql_conn_id:
        raise ValueError("differentbreed: customers_sql needs customers_sql_conn_id")
    hook = BaseHook.get_connection(settings.customers_sql_conn_id).get_hook()
    sql = settings.customers_sql
    params = None
    if "?" in sql:
        # Documented with `?`; a hook whose driver speaks `%s` (psycopg2) gets it translated.
        if getattr(hook, "placeholder", "?") != "?":
            sql = sql.replace("?", hook.placeholder)
        params = (profile,)
    return [str(row[0]) for row in hook.get_records(sql, parameters=params)]
