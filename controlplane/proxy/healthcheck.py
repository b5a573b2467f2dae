"""kube-proxy's service health-check server (``pkg/proxy/healthcheck/service_health.go``): for
every LoadBalancer Service with ``externalTrafficPolicy: Local`` an HTTP server on its
``spec.healthCheckNodePort`` on this node. Any path answers with this node's ready endpoints
of the Service, in kube-proxy's JSON (``localEndpoints``, ``serviceProxyHealthy``): 200 when
there is at least one and the proxy keeps up, 503 otherwise, so a load balancer sends external
traffic only to nodes that serve it locally (where the client's address is kept).

The listeners live in the node's network namespace, bound to every address there (the node's
link and bridge addresses and its loopback: all created by this project); the proxier's host
table opens the port on the host's 127.0.0.1 as it does a NodePort. A port that cannot be
opened is logged with kube-proxy's Warning Event ``FailedToStartServiceHealthcheck`` and tried
again on the next sync. Neighbours: ``proxier.py`` (feeds it after every sync),
``model.health_check`` (which Services, how many local endpoints),
``controlplane.network.sockets`` (sockets in the node's namespace).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from dataclasses import dataclass
from typing import Callable

from aiohttp import web

from controlplane.log import get_logger
from controlplane.network.sockets import socket_in_netns

log = get_logger(__name__)
EVENT_REASON = "FailedToStartServiceHealthcheck"


def health_body(namespace: str, name: str, endpoints: int, proxy_healthy: bool) -> str:
    """kube-proxy's answer, byte for byte (a dedented Go template, tabs included)."""
    return ("{\n"
            "\t\"service\": {\n"
            f"\t\t\"namespace\": \"{namespace}\",\n"
            f"\t\t\"name\": \"{name}\"\n"
            "\t},\n"
            f"\t\"localEndpoints\": {endpoints},\n"
            f"\t\"serviceProxyHealthy\": {'true' if proxy_healthy else 'false'}\n"
            "}")


def go_listen_error(address: str, port: int, e: OSError) -> str:
    """The error as Go's ``net.Listen`` words it (``listen tcp 0.0.0.0:30100: bind: address
    already in use``), the text kube-proxy puts in its Event."""
    why = os.strerror(e.errno).lower() if e.errno else str(e)
    op = "bind" if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES) else "socket"
    return f"listen tcp {address}:{port}: {op}: {why}"


@dataclass
class _Listener:
    port: int
    endpoints: int
    server: asyncio.AbstractServer
    http: web.Server


class ServiceHealthServer:
    """The health-check listeners of one node, keyed by ``namespace/name``."""

    def __init__(self, node: str, *, netns: str | None, address: str = "0.0.0.0",
                 proxy_healthy: Callable[[], bool] = lambda: True,
                 on_failure: Callable[[str, str], None] | None = None) -> None:
        self.node = node
        self.netns = netns  # path of the node's network namespace (None: this process's)
        self.address = address
        self.proxy_healthy = proxy_healthy
        self.on_failure = on_failure  # (service key, message): the Warning Event
        self._listeners: dict[str, _Listener] = {}
        self._failed: dict[str, int] = {}  # key -> port whose failure was reported

    def ports(self) -> dict[str, int]:
        """The ports actually listening, by Service."""
        return {k: lst.port for k, lst in self._listeners.items()}

    async def sync(self, wanted: dict[str, tuple[int, int]]) -> None:
        """``wanted``: Service key -> (healthCheckNodePort, local ready endpoints). Closes what
        is no longer wanted (or moved), updates the counts, opens the new ones."""
        for key, lst in list(self._listeners.items()):
            if key not in wanted or wanted[key][0] != lst.port:
                log.info("closing service health check", service=key, port=lst.port, node=self.node)
                await self._close(self._listeners.pop(key))
        for key in [k for k in self._failed if k not in wanted]:
            del self._failed[key]
        for key, (port, count) in wanted.items():
            lst = self._listeners.get(key)
            if lst is not None:
                lst.endpoints = count
                continue
            try:
                self._listeners[key] = await self._open(key, port, count)
            except OSError as e:
                if self._failed.get(key) != port:
                    self._failed[key] = port
                    err = go_listen_error(self.address, port, e)
                    log.warning("failed to start service health check", service=key, port=port, error=err)
                    if self.on_failure is not None:
                        self.on_failure(key, f'node {self.node} failed to start healthcheck "{key}" on port {port}: {err}')
                continue
            self._failed.pop(key, None)
            log.info("opened service health check", service=key, port=port, node=self.node)

    async def close(self) -> None:
        for key in list(self._listeners):
            await self._close(self._listeners.pop(key))

    async def _open(self, key: str, port: int, count: int) -> _Listener:
        sock = await asyncio.to_thread(self._bound_socket, port)
        namespace, _, name = key.partition("/")

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            lst = self._listeners.get(key)
            endpoints = lst.endpoints if lst is not None else 0
            healthy = self.proxy_healthy()
            return web.Response(status=200 if endpoints and healthy else 503,
                                body=health_body(namespace, name, endpoints, healthy).encode(),
                                headers={"Content-Type": "application/json", "X-Content-Type-Options": "nosniff",
                                         "X-Load-Balancing-Endpoint-Weight": str(endpoints)})

        http = web.Server(handle)
        try:
            server = await asyncio.get_running_loop().create_server(http, sock=sock)
        except BaseException:
            sock.close()
            raise
        return _Listener(port, count, server, http)

    def _bound_socket(self, port: int) -> socket.socket:
        sock = socket_in_netns(self.netns) if self.netns else socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.address, port))
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    @staticmethod
    async def _close(lst: _Listener) -> None:
        lst.server.close()
        await lst.http.shutdown(1.0)
        await lst.server.wait_closed()
