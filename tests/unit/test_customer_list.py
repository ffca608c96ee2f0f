"""Where the Different Breed cust_ids come from: a CSV file or a SQL query on a connection; and the
committed list matches the sandbox's seed."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from include.config import DifferentBreedSettings
from include.sources.customer_list import load_customer_ids
from sandbox import differentbreed


def test_from_a_csv_file(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("profile,cust_id\nevents, c2\nevents,c1\nother,c9\nevents,c2\n")
    assert load_customer_ids(DifferentBreedSettings(customers_file=str(path)), "events") == ["c1", "c2"]


def test_a_csv_without_the_header_is_refused(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("c1\nc2\n")
    with pytest.raises(ValueError, match="profile,cust_id"):
        load_customer_ids(DifferentBreedSettings(customers_file=str(path)), "events")


def test_from_a_sql_query_on_a_connection(tmp_path, monkeypatch):
    crm = tmp_path / "crm.db"
    with sqlite3.connect(crm) as conn:
        conn.execute("CREATE TABLE customers (db_id TEXT, db_profile TEXT)")
        conn.executemany("INSERT INTO customers VALUES (?, ?)", [("c1", "events"), ("c3", "events"), ("c9", "other")])
    monkeypatch.setenv("AIRFLOW_CONN_MERCHANT_CRM", json.dumps({"conn_type": "sqlite", "host": str(crm)}))
    settings = DifferentBreedSettings(
        customers_sql="SELECT db_id FROM customers WHERE db_profile = ?", customers_sql_conn_id="merchant_crm"
    )
    assert load_customer_ids(settings, "events") == ["c1", "c3"]


def test_no_source_configured_is_a_clear_error():
    with pytest.raises(ValueError, match="customers_file or customers_sql"):
        load_customer_ids(DifferentBreedSettings(), "events")


def test_the_committed_customer_list_matches_the_seed():
    store, listed = differentbreed.seed_store(seed=42)
    path = Path(__file__).resolve().parents[2] / "config" / "differentbreed_customers.csv"
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["cust_id"] for r in rows] == listed and {r["profile"] for r in rows} == {store.profile}
    assert len(store.customers) == len(listed) - 1  # one deleted at the source, still listed
