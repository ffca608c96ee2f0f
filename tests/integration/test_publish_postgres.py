"""tests/unit/test_publish.py's warehouse tests again, on PostgreSQL: here `warehouse` is a fresh
PostgreSQL database (tests/integration/conftest.py)."""

from tests.tiers import reruns_taking
from tests.unit import test_publish

globals().update(reruns_taking(test_publish, "warehouse"))
