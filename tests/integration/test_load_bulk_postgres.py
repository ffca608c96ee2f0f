"""tests/unit/test_load_bulk.py's warehouse tests again, on PostgreSQL: here `warehouse` is a fresh
PostgreSQL database (tests/integration/conftest.py)."""

from tests.tiers import reruns_taking
from tests.unit import test_load_bulk

globals().update(reruns_taking(test_load_bulk, "warehouse"))
