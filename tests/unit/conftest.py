"""The unit tier: no services, no network, no Airflow database.

Here ``warehouse`` is a SQLite file and ``staging_root`` a local folder. tests/integration runs
the same warehouse and staging tests again with those fixtures on real PostgreSQL and on S3.
"""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def warehouse(sqlite_warehouse):
    return sqlite_warehouse


@pytest.fixture
def staging_root(tmp_path):
    return f"file://{tmp_path / 'staging'}"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """A unit test that opens an internet socket fails, naming the tier it belongs to."""
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refusing(getattr(socket.socket, name)))


def _refusing(method):
    def guarded(sock, address, *args):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            pytest.fail(
                f"a unit test opened a network socket ({method.__name__} {address}): it belongs in tests/integration",
                pytrace=False,
            )
        return method(sock, address, *args)

    return guarded
