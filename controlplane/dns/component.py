"""The cluster DNS component run by ``controlplane up`` (or ``controlplane dns``): informers on
Services, EndpointSlices and Namespaces feed ``records.Snapshot``s (rebuilt lazily after a
change), ``server.DNSServer`` answers on a loopback port, and the component registers itself
as ``kube-system/kube-dns``: a selector-less Service at the 10th address of the service CIDR
(10.43.0.10 by default) and an EndpointSlice holding the host address with ports 53/UDP and
53/TCP, labelled as a host service and annotated with the loopback port — the proxy then
carries pod queries to 10.43.0.10:53 through the host address to this server
(docs/networking.md). The slice is removed on a clean stop.
Neighbours: ``server.py``, ``records.py``, ``controlplane.network.addressing`` (the label and
annotation names), ``cmd/dns.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from controlplane.client import resources as R
from controlplane.client.informer import Informer
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.dns.records import Snapshot
from controlplane.dns.server import DNSServer
from controlplane.log import get_logger
from controlplane.network.addressing import HOST_SERVICES_MANAGER, LOOPBACK_PORTS_ANNOTATION, ClusterNetworks

log = get_logger(__name__)
SLICE_NAME = "kube-dns-host"


@dataclass
class DNSConfig:
    nets: ClusterNetworks
    domain: str = "cluster.local"
    host: str = "127.0.0.1"
    port: int = 0
    upstreams: list[tuple[str, int]] = field(default_factory=list)
    timeout: float = 2.0
    register: bool = True


def kube_dns_service(nets: ClusterNetworks) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system",
                         "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                    "kubernetes.io/name": "CoreDNS"}},
            "spec": {"clusterIP": str(nets.dns_service_ip), "type": "ClusterIP",
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}}


def kube_dns_slice(nets: ClusterNetworks, loopback_port: int) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": SLICE_NAME, "namespace": "kube-system",
                         "labels": {"kubernetes.io/service-name": "kube-dns",
                                    "endpointslice.kubernetes.io/managed-by": HOST_SERVICES_MANAGER},
                         "annotations": {LOOPBACK_PORTS_ANNOTATION: f"dns={loopback_port},dns-tcp={loopback_port}"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [str(nets.host_address)], "conditions": {"ready": True, "serving": True}}],
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}


class ClusterDNS:
    def __init__(self, client: RestClient, cfg: DNSConfig) -> None:
        self.client = client
        self.cfg = cfg
        self.services = Informer(client, R.SERVICES)
        self.slices = Informer(client, R.ENDPOINTSLICES)
        self.namespaces = Informer(client, R.NAMESPACES)
        self.generation = 1
        self._snap: Snapshot | None = None
        self._snap_gen = 0
        for inf in (self.services, self.slices, self.namespaces):
            inf.add_handler(self._changed)
        self.server = DNSServer(self.snapshot, cfg.upstreams, cfg.timeout)
        self.registered = asyncio.Event()

    def _changed(self, etype: str, obj: dict, old: dict | None) -> None:
        self.generation += 1

    def snapshot(self) -> tuple[Snapshot, int]:
        if self._snap is None or self._snap_gen != self.generation:
            gen = self.generation
            self._snap = Snapshot(self.services.list(), self.slices.list(),
                                  [(n.get("metadata") or {}).get("name", "") for n in self.namespaces.list()],
                                  self.cfg.domain, [str(self.cfg.nets.service_cidr), str(self.cfg.nets.cluster_cidr)],
                                  dns_service=("kube-system", "kube-dns"),
                                  local_ips=[str(self.cfg.nets.host_address)])
            self._snap_gen = gen
        return self._snap, self._snap_gen

    async def start(self, stop: asyncio.Event) -> list[asyncio.Task]:
        """Start the informers and the server; returns the background tasks (owned by ``run``)."""
        tasks = [asyncio.create_task(i.start(stop), name=f"dns-informer-{i.resource.plural}")
                 for i in (self.services, self.slices, self.namespaces)]
        port = await self.server.start(self.cfg.host, self.cfg.port)
        log.info("cluster DNS listening", address=f"{self.cfg.host}:{port}", domain=self.cfg.domain,
                 upstreams=[f"{h}:{p}" for h, p in self.cfg.upstreams])
        if self.cfg.register:
            tasks.append(asyncio.create_task(self._register_loop(stop), name="dns-register"))
        return tasks

    async def run(self, stop: asyncio.Event, on_ready=None) -> None:  # type: ignore[no-untyped-def]
        tasks = await self.start(stop)
        try:
            if on_ready is not None:
                on_ready(self.server.port)
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.cfg.register and self.registered.is_set():
                try:
                    await self.client.delete(R.ENDPOINTSLICES, SLICE_NAME, "kube-system")
                except ApiStatusError:
                    pass
            await self.server.stop()

    async def _register_loop(self, stop: asyncio.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                await self.register()
                self.registered.set()
                return
            except ApiStatusError as e:
                log.info("kube-dns registration not possible yet; retrying", error=str(e))
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                delay = min(delay * 2, 10)

    async def register(self) -> None:
        try:
            await self.client.create(R.SERVICES, kube_dns_service(self.cfg.nets), "kube-system")
        except ApiStatusError as e:
            if not e.already_exists:
                raise
        body = kube_dns_slice(self.cfg.nets, self.server.port)
        try:
            await self.client.create(R.ENDPOINTSLICES, body, "kube-system")
        except ApiStatusError as e:
            if not e.already_exists:
                raise
            cur = await self.client.get(R.ENDPOINTSLICES, SLICE_NAME, "kube-system")
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            await self.client.update(R.ENDPOINTSLICES, body)
        log.info("registered as kube-system/kube-dns", cluster_ip=str(self.cfg.nets.dns_service_ip),
                 endpoint=f"{self.cfg.nets.host_address} -> 127.0.0.1:{self.server.port}")


def host_upstreams(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    out = []
    try:
        for line in open(path):
            f = line.split()
            if len(f) >= 2 and f[0] == "nameserver":
                out.append((f[1], 53))
    except OSError:
        pass
    return out
