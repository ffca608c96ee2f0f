"""tests/unit/test_erasure.py's warehouse tests again, on PostgreSQL: here `warehouse` is a fresh
PostgreSQL database (tests/integration/conftest.py)."""

from tests.tiers import reruns_taking
from tests.unit import test_erasure

globals().update(reruns_taking(test_erasure, "warehouse"))
