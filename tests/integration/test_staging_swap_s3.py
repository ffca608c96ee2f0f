"""tests/unit/test_staging_swap.py's tests again, on S3: here `staging_root` is a bucket of a moto
server over real HTTP (tests/integration/conftest.py)."""

from tests.tiers import reruns_taking
from tests.unit import test_staging_swap

globals().update(reruns_taking(test_staging_swap, "staging_root"))
