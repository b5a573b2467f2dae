"""Pure helpers of the apiserver supervisor (``controlplane/apiserver/server/workers.py``): the worker
command line and the internal ``--worker`` spec; plus the SO_REUSEPORT socket really sharing a
port (two bound sockets on one port, which a plain socket cannot do)."""

from __future__ import annotations

import socket

import pytest

from controlplane.apiserver.server.workers import parse_worker_spec, reuse_port_socket, worker_argv


@pytest.mark.parametrize("argv, expected", [
    (["apiserver", "--port", "1", "--workers", "2"], ["apiserver", "--port", "1"]),
    (["--log-format", "json", "apiserver", "--workers=3", "--host", "h"],
     ["--log-format", "json", "apiserver", "--host", "h"]),
    (["apiserver", "--workers", "2", "--etcd-endpoints", "http://e:2379"],
     ["apiserver", "--etcd-endpoints", "http://e:2379"]),
    (["apiserver", "--port", "1"], ["apiserver", "--port", "1"]),
])
def test_worker_argv_drops_workers(argv: list[str], expected: list[str]) -> None:
    assert worker_argv(argv) == expected


@pytest.mark.parametrize("spec, expected", [("0,2,5", (0, 2, 5)), ("3,4,11", (3, 4, 11))])
def test_parse_worker_spec(spec: str, expected: tuple[int, int, int]) -> None:
    assert parse_worker_spec(spec) == expected


def test_reuse_port_sockets_share_a_port() -> None:
    a = reuse_port_socket("127.0.0.1", 0)
    port = a.getsockname()[1]
    b = reuse_port_socket("127.0.0.1", port)
    plain = socket.socket()
    try:
        assert b.getsockname()[1] == port
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    finally:
        for s in (a, b, plain):
            s.close()
