"""The apiservers of the cluster in ``default/kubernetes`` Endpoints: kube-apiserver's lease
endpoint reconciler (``pkg/controlplane/reconcilers/lease.go``, ``--endpoint-reconciler-type
lease``), so clients can find every apiserver (the client-side balancer, ``client/balancer.py``,
reads this list, as k3s's agent load balancer reads it).

Each apiserver (its primary worker) writes ``/masterleases/<ip>:<port>`` every 10 s under an
etcd lease of 15 s (kube-apiserver: ``/masterleases/<ip>``, same figures; the port is in the
key because several apiservers of one machine share an address), then lists the live leases
and rewrites the Endpoints when they differ: one subset per port, addresses sorted. On a clean
stop it removes its lease and rewrites the Endpoints; a killed apiserver's lease expires and the
next round of any other apiserver drops it. Caller: ``app.ApiServer.start``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from controlplane.apiserver.endpoints.write import create_object, write_update
from controlplane.apiserver.meta import errors
from controlplane.log import get_logger
from controlplane.storage.interface import KeyExistsError, KeyNotFoundError, StorageError

log = get_logger(__name__)

PREFIX = "/masterleases/"
TTL_S = 15
INTERVAL_S = 10.0
MANAGER = "controlplane-apiserver"


def address_of(url: str) -> tuple[str, int] | None:
    """(ip, port) of an advertised URL; None for a wildcard or a name (not an Endpoints IP)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or host in ("0.0.0.0", "::", "localhost") or not all(c.isdigit() or c in ".:" for c in host):
        return None
    return host, parts.port or 443


def desired_subsets(endpoints: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """One subset per port, addresses sorted (pure)."""
    by_port: dict[int, set[str]] = {}
    for ip, port in endpoints:
        by_port.setdefault(port, set()).add(ip)
    return [{"addresses": [{"ip": ip} for ip in sorted(ips)],
             "ports": [{"name": "https", "port": port, "protocol": "TCP"}]} for port, ips in sorted(by_port.items())]


class EndpointReconciler:
    def __init__(self, api: Any, address: tuple[str, int], interval: float = INTERVAL_S) -> None:
        self.api = api
        self.address = address
        self.interval = interval
        self.key = f"{PREFIX}{address[0]}:{address[1]}"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.reconcile()
            except (StorageError, errors.ApiError, OSError) as e:
                log.info("apiserver endpoint reconcile failed; retrying", error=str(e))
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    async def reconcile(self) -> None:
        backend = self.api.backend
        lease = await backend.grant_lease(TTL_S)
        value = json.dumps({"ip": self.address[0], "port": self.address[1]}).encode()
        try:
            await backend.update(self.key, value, 0, lease)
        except KeyNotFoundError:
            try:
                await backend.create(self.key, value, lease)
            except KeyExistsError:
                await backend.update(self.key, value, 0, lease)
        await self.write_endpoints(await self.live())

    async def live(self) -> list[tuple[str, int]]:
        out = []
        for kv in (await self.api.backend.list(PREFIX)).items:
            try:
                d = json.loads(kv.value)
                out.append((str(d["ip"]), int(d["port"])))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    async def remove(self) -> None:
        """A clean stop: drop this apiserver from the list at once."""
        try:
            await self.api.backend.delete(self.key)
        except KeyNotFoundError:
            pass
        await self.write_endpoints([e for e in await self.live() if e != self.address])

    async def write_endpoints(self, endpoints: list[tuple[str, int]]) -> None:
        info = self.api.registry.get("", "v1", "endpoints")
        subsets = desired_subsets(endpoints)
        current = await self.api.store.get_or_none(info, "default", "kubernetes")
        if current is not None and (current.get("subsets") or []) == subsets:
            return
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": subsets}
        if current is None:
            try:
                await create_object(self.api, info, body, strict=False, manager=MANAGER, dry=False)
                return
            except errors.ApiError as e:
                if e.reason != "AlreadyExists":
                    raise

        async def compute(cur: dict[str, Any]) -> dict[str, Any]:
            out = dict(cur)
            out["subsets"] = subsets
            return out

        await write_update(self.api, info, "default", "kubernetes", compute, subresource="", strict=False,
                           manager=MANAGER, dry=False)
        log.info("kubernetes endpoints updated", endpoints=[f"{ip}:{port}" for ip, port in endpoints])
