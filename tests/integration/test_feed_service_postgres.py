"""tests/unit/test_feed_service.py's warehouse tests again, on PostgreSQL: here `warehouse` is a fresh
PostgreSQL database (tests/integration/conftest.py)."""

from tests.tiers import reruns_taking
from tests.unit import test_feed_service

globals().update(reruns_taking(test_feed_service, "warehouse"))
