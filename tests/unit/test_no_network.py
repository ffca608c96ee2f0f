"""The unit tier's guard (conftest.py): a test here that opens a network socket fails and says
which tier it belongs to; local sockets (asyncio's self-pipe, say) are left alone."""

from __future__ import annotations

import socket

import pytest


def test_a_network_connection_fails_naming_the_integration_tier():
    with pytest.raises(pytest.fail.Exception, match="belongs in tests/integration"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_a_server_socket_fails_too():
    with socket.socket() as sock, pytest.raises(pytest.fail.Exception, match="belongs in tests/integration"):
        sock.bind(("127.0.0.1", 0))


def test_local_socket_pairs_still_work():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"
