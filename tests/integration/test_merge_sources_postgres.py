"""tests/unit/test_merge_sources.py's warehouse tests again, on PostgreSQL: here `warehouse` is a fresh
PostgreSQL database (tests/integration/conftest.py)."""

from tests.tiers import reruns_taking
from tests.unit import test_merge_sources

globals().update(reruns_taking(test_merge_sources, "warehouse"))
