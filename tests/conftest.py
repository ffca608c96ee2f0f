"""Fixtures every tier shares: an isolated Airflow home, and a warehouse in a SQLite file.

The tiers are folders: ``tests/unit`` (pure logic and property tests; no services, no sockets),
``tests/integration`` (real PostgreSQL, real HTTP, S3), ``tests/e2e`` (Airflow runs) and
``tests/dags`` (DAG integrity). Each tier's conftest.py says what its fixtures stand on.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before anything imports airflow: a private home, no examples, no network at parse time.
_HOME = Path(tempfile.mkdtemp(prefix="customer-feed-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "dags"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from include.warehouse import Warehouse  # noqa: E402

# `make check` runs with --hypothesis-profile=check, so the unit tier stays under a minute: property
# tests that leave the count to the profile draw 20 examples instead of hypothesis' 100, and the
# incremental = rebuild property caps its 60 at it. `make test` keeps the default profile.
settings.register_profile("check", max_examples=20)


@pytest.fixture
def sqlite_warehouse(tmp_path):
    wh = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    wh.create_schema()
    yield wh
    wh.close()
