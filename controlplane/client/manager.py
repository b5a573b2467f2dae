"""The manager: owns shared informers, event recorders and controllers, and their lifecycle.

``start(stop_event)`` starts every informer, waits for all caches to sync, then starts the
controllers (runnables with ``async start(stop_event)``). When ``stop_event`` is set everything
is stopped and awaited — no task outlives the manager. Leader election wraps ``start`` from the
outside (``cmd.bootstrap``: the manager is started once the process leads, and its stop event is
set when leadership is lost). One informer per resource
is shared by every controller that asks for it (``informer(resource)``).

Controllers write through ``client_for(<ServiceAccount name>)``: the manager's own client, or,
with ``credentials`` (a ``clientbuilder.ServiceAccountClientBuilder``,
``--use-service-account-credentials``), a client authenticated as that ServiceAccount whose
tokens the builder keeps fresh in a task the manager owns; informers always read with the
manager's own client. ``recorder(component, identity)`` posts Events through the same client.

Used by ``controlplane.cmd.controller_manager`` (and ``controlplane up``); controllers register
themselves through ``controlplane.controllers.<kind>.setup(manager)``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from controlplane.client.clientbuilder import ServiceAccountClientBuilder
from controlplane.client.events import EventRecorder
from controlplane.client.informer import Informer
from controlplane.client.resources import Resource
from controlplane.client.rest import RestClient
from controlplane.log import get_logger

log = get_logger(__name__)


class Runnable(Protocol):
    async def start(self, stop_event: asyncio.Event) -> None: ...


class Manager:
    def __init__(self, client: RestClient, *, name: str = "controller-manager", sync_timeout: float = 120.0,
                 credentials: ServiceAccountClientBuilder | None = None) -> None:
        self.client = client
        self.name = name
        self.sync_timeout = sync_timeout
        self.credentials = credentials
        self._informers: dict[tuple[Resource, str | None], Informer] = {}
        self._recorders: dict[tuple[str, str | None], EventRecorder] = {}
        self._runnables: list[Runnable] = []
        self.caches_synced = asyncio.Event()

    def informer(self, resource: Resource, namespace: str | None = None) -> Informer:
        key = (resource, namespace)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, resource, namespace=namespace)
            self._informers[key] = inf
        return inf

    def client_for(self, identity: str) -> RestClient:
        """The client a controller writes with: as the ServiceAccount ``identity`` (kube-system)
        with ``credentials``, else the manager's own (kube-controller-manager's
        ``ClientBuilder.ClientOrDie(name)``)."""
        return self.credentials.client(identity) if self.credentials is not None else self.client

    def recorder(self, component: str, identity: str | None = None) -> EventRecorder:
        """Events from ``component`` (their source / ``reportingController``), posted with
        ``client_for(identity)`` (the manager's own client without ``identity``)."""
        key = (component, identity if self.credentials is not None else None)
        rec = self._recorders.get(key)
        if rec is None:
            rec = EventRecorder(self.client if key[1] is None else self.client_for(key[1]), component)
            self._recorders[key] = rec
        return rec

    def add(self, runnable: Runnable) -> None:
        """A runnable started after the caches sync (controllers)."""
        self._runnables.append(runnable)

    async def start(self, stop_event: asyncio.Event) -> None:
        inner = asyncio.Event()
        tasks: list[asyncio.Task] = []
        watcher = asyncio.create_task(_relay(stop_event, inner))
        try:
            if self.credentials is not None:
                tasks.append(asyncio.create_task(self.credentials.run(inner), name="service-account-tokens"))
            for inf in list(self._informers.values()):
                tasks.append(asyncio.create_task(inf.start(inner), name=f"informer-{inf.resource.plural}"))
            for rec in self._recorders.values():
                tasks.append(asyncio.create_task(rec.start(inner), name=f"recorder-{rec.component}"))
            ok = await asyncio.wait_for(asyncio.gather(*(i.wait_for_sync() for i in self._informers.values())),
                                        self.sync_timeout) if self._informers else True
            if not ok:
                raise RuntimeError("caches did not sync")
            log.info("caches synced", informers=len(self._informers))
            self.caches_synced.set()
            for r in self._runnables:
                tasks.append(asyncio.create_task(r.start(inner), name=f"runnable-{getattr(r, 'name', r)}"))
            await inner.wait()
        finally:
            inner.set()
            watcher.cancel()
            done, pending = await asyncio.wait(tasks, timeout=10) if tasks else (set(), set())
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    log.error("runnable failed", task=t.get_name(), error=repr(t.exception()))
            log.info("manager stopped")


async def _relay(src: asyncio.Event, dst: asyncio.Event) -> None:
    await src.wait()
    dst.set()
