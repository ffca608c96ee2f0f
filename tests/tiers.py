"""Running a unit module's tests again in the integration tier, on that tier's fixtures.

The unit tier's ``warehouse`` is a SQLite file and its ``staging_root`` a local folder; the
integration tier's are PostgreSQL and S3. A module there re-runs the unit tests that take one of
them with ``globals().update(reruns_taking(unit_module, "warehouse"))``: pytest resolves fixtures
where a test is collected, so the same test body runs on the other service.
"""

from __future__ import annotations

import inspect
from types import ModuleType

from _pytest.fixtures import FixtureFunctionDefinition


def reruns_taking(module: ModuleType, fixture: str) -> dict[str, object]:
    """The tests of `module` that take `fixture`, directly or through the module's own fixtures,
    together with those fixtures."""
    fixtures = {name: f for name, f in vars(module).items() if isinstance(f, FixtureFunctionDefinition)}

    def needs(function, seen=()) -> bool:
        params = inspect.signature(function).parameters
        return fixture in params or any(
            name in fixtures and name not in seen and needs(fixtures[name], (*seen, name)) for name in params
        )

    found = {
        name: test for name, test in vars(module).items() if name.startswith("test_") and callable(test) and needs(test)
    }
    if not found:
        raise LookupError(f"{module.__name__} has no test that takes {fixture!r}")
    return {**fixtures, **found}
