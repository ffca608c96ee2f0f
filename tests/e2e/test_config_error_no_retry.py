"""A configuration error fails the DAG's tasks at once: `airflow dags test` with an invalid feed
configuration ends with the tasks failed on their first try — never up for retry (the DAG's
default is two retries with exponential backoff, which cost 4 min 42 s before)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.local_stack import airflow_env, prepare_airflow

pytestmark = pytest.mark.e2e
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def test_an_invalid_configuration_fails_without_retries(tmp_path):
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds: []\n")
    env = airflow_env(
        {
            "CUSTOMER_FEED_CONFIG": str(config),
            "AIRFLOW_CONN_CUSTOMER_FEED_DB": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "wh.db")}),
            "CUSTOMER_FEED_STAGING_URL": f"file://{tmp_path / 'staging'}",
        }
    )
    prepare_airflow(env)
    started = time.monotonic()
    done = subprocess.run(
        [AIRFLOW, "dags", "test", "customer_feed", "2026-11-02T00:00:00+00:00"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "state=failed" in output, output[-3000:]
    assert "AirflowFailException" in output and "feeds: at least one feed is required" in output
    assert "new_state=failed" in output and "up_for_retry" not in output, output[-3000:]
    assert seconds < 120  # a retry would wait at least the DAG's one-minute retry delay
