"""The merchant-group benchmark at smoke size (200k orders) on both warehouses: the streamed
load, the full publish in DuckDB and the incremental runs must publish exactly the totals per
feed that DuckDB computes on its own from the same rows (bench/scale.py asserts it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import PG_ADMIN_URL, _pg_connect

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_scale_bench_smoke(warehouse):
    url = "sqlite"
    if warehouse == "postgresql":
        _pg_connect(PG_ADMIN_URL).close()  # fails, saying so, when the server is not there
        url = PG_ADMIN_URL
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--smoke", "--warehouse", url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"warehouse {warehouse}")
    row = next(line for line in lines if line.strip().startswith("200,000 orders"))
    assert "full publish" in row and "incremental 5,000" in row
    assert lines[-1] == "published totals per feed equal DuckDB's after the full publish and after the incremental runs"
