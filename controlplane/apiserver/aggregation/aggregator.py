"""One process's aggregation layer: the APIServices it knows, their resolver and proxy, and
(in the primary process) the availability controller, and the aggregated discovery document
(``discovery.py``). ``server.app.ApiServer`` owns one and
``server.routes`` asks it, before the local endpoints, whether a ``/apis`` path is aggregated.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.aggregation import apiservices as aps
from controlplane.apiserver.aggregation.available import AvailabilityController, Write
from controlplane.apiserver.aggregation.discovery import AggregatedDiscovery
from controlplane.apiserver.aggregation.proxy import Proxy
from controlplane.apiserver.aggregation.resolve import Resolver
from controlplane.apiserver.discovery.registry import Registry
from controlplane.apiserver.persistence.caches import WatchCaches

Obj = dict[str, Any]


class Aggregator:
    def __init__(self, caches: WatchCaches, registry: Registry, client_cert: tuple[str, str] | None = None) -> None:
        """``client_cert``: the front-proxy certificate and key presented to backends."""
        self.registry = registry
        self.client_cert = client_cert
        self.apiservices = aps.APIServices(caches, registry)
        self.resolver = Resolver(caches, registry)
        self.proxy = Proxy(self.resolver, client_cert)
        self.discovery = AggregatedDiscovery(self.apiservices, registry, self.proxy)
        self._controller: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def remote(self, group: str, version: str) -> Obj | None:
        return self.apiservices.remote(group, version)

    def is_aggregated_group(self, group: str) -> bool:
        return group in self.apiservices.remote_groups()

    async def handle(self, request: Request, apiservice: Obj) -> HTTPResponse | None:
        return await self.proxy.handle(request, apiservice)

    def group_list(self, local_doc: Obj) -> Obj:
        return aps.group_list(local_doc, self.apiservices.all(), self.registry.group_versions())

    def group(self, name: str) -> Obj | None:
        return aps.group(name, self.apiservices.all(), self.registry.group_versions())

    def start_controller(self, write: Write, *, interval: float = 30.0) -> None:
        controller = AvailabilityController(self.apiservices, self.resolver, write, interval=interval,
                                            client_cert=self.client_cert)
        self._controller = asyncio.get_running_loop().create_task(controller.run(self._stop),
                                                                  name="apiservice-availability")

    async def stop(self) -> None:
        self._stop.set()
        if self._controller is not None:
            await asyncio.gather(self._controller, return_exceptions=True)
        await self.discovery.close()
        await self.proxy.close()
