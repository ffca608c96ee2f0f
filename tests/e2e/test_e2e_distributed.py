"""The distributed run (`make e2e`): Airflow with its metadata on PostgreSQL and a Celery worker
over Redis, each its own process; a REST-triggered run and a backfill through the scheduler; the
feed served from PostgreSQL equals the sandboxes' ground truth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_distributed_run_with_celery_and_postgres():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # its own Airflow home and config
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "e2e.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "passed: the served feeds equal the sandboxes' ground truth" in output
