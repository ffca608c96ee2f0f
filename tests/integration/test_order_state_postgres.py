"""tests/unit/test_order_state.py's warehouse tests again, on PostgreSQL: here `warehouse` is a fresh
PostgreSQL database (tests/integration/conftest.py)."""

from tests.tiers import reruns_taking
from tests.unit import test_order_state

globals().update(reruns_taking(test_order_state, "warehouse"))
