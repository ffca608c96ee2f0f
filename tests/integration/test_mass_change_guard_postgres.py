"""tests/unit/test_mass_change_guard.py's warehouse tests again, on PostgreSQL: here `warehouse` is
a fresh PostgreSQL database (tests/integration/conftest.py)."""

from tests.tiers import reruns_taking
from tests.unit import test_mass_change_guard

globals().update(reruns_taking(test_mass_change_guard, "warehouse"))
