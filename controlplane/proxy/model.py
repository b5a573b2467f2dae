"""What the service proxy programs, as plain data: one ``ServicePort`` per (Service, port)
with the endpoints its EndpointSlices give it — pure functions of the API objects (the
equivalent of kube-proxy's ServiceChangeTracker/EndpointsChangeTracker and its topology rules).

Endpoint choice (kube-proxy's CategorizeEndpoints): ready endpoints; when none is ready, the
serving-and-terminating ones (so connections keep working during a rollout); a Service
without usable endpoints gets a REJECT. ``externalTrafficPolicy: Local`` /
``internalTrafficPolicy: Local`` use only this node's endpoints. The load-balancing algorithm
comes from the annotation ``ALGORITHM_ANNOTATION`` (``random``, the default as kube-proxy, or
``round-robin``). Objects the proxy cannot program raise ``Unprogrammable`` with a reason.
Neighbours: ``rules.py`` turns these into nftables rules; ``proxier.py`` feeds them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable

from controlplane.network.addressing import HOST_SERVICES_MANAGER, LOOPBACK_PORTS_ANNOTATION

ALGORITHM_ANNOTATION = "networking.controlplane.io/load-balancing"
ALGORITHMS = ("random", "round-robin")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
DEFAULT_AFFINITY_TIMEOUT = 10800
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


class Unprogrammable(ValueError):
    """An object the proxy cannot turn into rules (it logs, emits an Event, skips it)."""


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node: str | None = None


@dataclass
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # tcp | udp | sctp
    port: int
    cluster_ip: str | None = None
    node_port: int | None = None
    load_balancer_port: bool = False  # type LoadBalancer: the port is opened on the node (ServiceLB)
    external_ips: list[str] = field(default_factory=list)
    external_local: bool = False
    internal_local: bool = False
    affinity_timeout: int | None = None  # sessionAffinity ClientIP
    algorithm: str = "random"
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"

    @property
    def externally_reachable(self) -> bool:
        return self.node_port is not None or self.load_balancer_port or bool(self.external_ips)

    def usable(self, node: str | None = None) -> list[Endpoint]:
        """Endpoints to balance over (all nodes, or only ``node``'s), ready first, then
        serving+terminating as the fallback."""
        eps = [e for e in self.endpoints if node is None or e.node == node]
        ready = [e for e in eps if e.ready]
        if ready:
            return ready
        return [e for e in eps if e.serving and e.terminating]

    def cluster_endpoints(self, node: str) -> list[Endpoint]:
        return self.usable(node if self.internal_local else None)

    def external_endpoints(self, node: str) -> list[Endpoint]:
        return self.usable(node if self.external_local else None)


def _valid_ip(s: str, what: str) -> str:
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        raise Unprogrammable(f"{what} {s!r} is not an IP address") from None
    if a.version != 4:
        raise Unprogrammable(f"{what} {s} is IPv6; this proxy programs IPv4 only")
    return str(a)


def _port(v: object, what: str) -> int:
    if not isinstance(v, int) or not 1 <= v <= 65535:
        raise Unprogrammable(f"{what} {v!r} is not a port number")
    return v


def algorithm_of(svc: dict) -> str:
    ann = ((svc.get("metadata") or {}).get("annotations") or {}).get(ALGORITHM_ANNOTATION)
    if ann is None or ann == "":
        return "random"
    a = ann.strip().lower().replace("_", "-").replace("roundrobin", "round-robin")
    if a not in ALGORITHMS:
        raise Unprogrammable(f"annotation {ALGORITHM_ANNOTATION}={ann!r}: must be one of {', '.join(ALGORITHMS)}")
    return a


def proxied(svc: dict) -> bool:
    """Services this proxy programs: with a cluster IP, not ExternalName, not owned by another
    proxy (``service.kubernetes.io/service-proxy-name``)."""
    spec = svc.get("spec") or {}
    if ((svc.get("metadata") or {}).get("labels") or {}).get(PROXY_NAME_LABEL):
        return False
    if spec.get("type") == "ExternalName":
        return False
    ip = spec.get("clusterIP")
    return bool(ip) and ip != "None"


def endpoints_for(slices: Iterable[dict], port_name: str, protocol: str) -> list[Endpoint]:
    """Endpoints for one service port out of the Service's EndpointSlices (IPv4 slices; the
    slice port whose name and protocol match). Duplicates (same ip:port) are merged, ready wins."""
    out: dict[tuple[str, int], Endpoint] = {}
    for sl in slices:
        at = sl.get("addressType") or "IPv4"
        if at == "FQDN":
            continue  # kube-proxy ignores FQDN slices
        ports = [p for p in sl.get("ports") or [] if (p.get("name") or "") == port_name
                 and PROTOCOLS.get(p.get("protocol") or "TCP") == protocol]
        if not ports:
            continue
        if at != "IPv4":
            raise Unprogrammable(f"EndpointSlice {sl['metadata'].get('name')}: addressType {at} is not supported "
                                 "(IPv4 only)")
        port = ports[0].get("port")
        if port is None:
            continue
        port = _port(port, f"EndpointSlice {sl['metadata'].get('name')} port")
        for ep in sl.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False  # nil means ready
            serving = cond.get("serving") if cond.get("serving") is not None else ready
            terminating = bool(cond.get("terminating"))
            for addr in (ep.get("addresses") or [])[:1]:  # kube-proxy uses the first address
                ip = _valid_ip(addr, f"EndpointSlice {sl['metadata'].get('name')} address")
                e = Endpoint(ip, port, ready=ready and not terminating, serving=bool(serving),
                             terminating=terminating, node=ep.get("nodeName"))
                prev = out.get((ip, port))
                if prev is None or (e.ready and not prev.ready):
                    out[(ip, port)] = e
    return sorted(out.values(), key=lambda e: (e.ip, e.port))


def serves_load_balancer(svc: dict) -> bool:
    """ServiceLB's Services whose ports this node opens: type LoadBalancer without a
    ``loadBalancerClass``, once the ServiceLB controller gave them an ingress address (it
    leaves a Service pending whose port an older LoadBalancer Service holds, as k3s's svclb
    pod stays unschedulable; with ServiceLB disabled nothing is opened)."""
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass") \
        and bool(((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"))


def service_ports(svc: dict, slices: list[dict]) -> list[ServicePort]:
    """The ServicePorts of one Service (empty when the proxy does not program it)."""
    if not proxied(svc):
        return []
    md, spec = svc["metadata"], svc.get("spec") or {}
    ns, name = md.get("namespace") or "default", md["name"]
    cluster_ip = _valid_ip(spec["clusterIP"], "clusterIP")
    alg = algorithm_of(svc)
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        affinity = int(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
        if not 1 <= affinity <= 86400:
            raise Unprogrammable(f"sessionAffinityConfig.clientIP.timeoutSeconds {affinity} is out of range")
    typ = spec.get("type") or "ClusterIP"
    ext_ips = [_valid_ip(i, "externalIP") for i in spec.get("externalIPs") or []]
    out = []
    for p in spec.get("ports") or []:
        proto = PROTOCOLS.get(p.get("protocol") or "TCP")
        if proto is None:
            raise Unprogrammable(f"port {p.get('name') or p.get('port')}: protocol {p.get('protocol')!r} is not supported")
        port_name = p.get("name") or ""
        sp = ServicePort(
            namespace=ns, name=name, port_name=port_name, protocol=proto, port=_port(p.get("port"), "port"),
            cluster_ip=cluster_ip,
            node_port=_port(p["nodePort"], "nodePort") if typ in ("NodePort", "LoadBalancer") and p.get("nodePort") else None,
            load_balancer_port=serves_load_balancer(svc), external_ips=ext_ips,
            external_local=(spec.get("externalTrafficPolicy") == "Local") and typ in ("NodePort", "LoadBalancer"),
            internal_local=spec.get("internalTrafficPolicy") == "Local",
            affinity_timeout=affinity, algorithm=alg,
            endpoints=endpoints_for(slices, port_name, proto))
        out.append(sp)
    return out


def health_check(svc: dict, slices: Iterable[dict], node: str) -> tuple[int, int] | None:
    """(healthCheckNodePort, this node's ready endpoints) of a Service kube-proxy serves a
    health check for: one it programs, type LoadBalancer with ``externalTrafficPolicy: Local``
    and a health check port. Endpoints count once per address across the Service's slices and
    ports (kube-proxy's LocalReadyEndpoints); terminating ones are not ready."""
    spec = svc.get("spec") or {}
    port = spec.get("healthCheckNodePort")
    if not proxied(svc) or spec.get("type") != "LoadBalancer" or spec.get("externalTrafficPolicy") != "Local" \
            or not isinstance(port, int) or not 1 <= port <= 65535:
        return None
    local: set[str] = set()
    for sl in slices:
        if (sl.get("addressType") or "IPv4") != "IPv4":
            continue
        for ep in sl.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            if ep.get("nodeName") == node and cond.get("ready") is not False and not cond.get("terminating"):
                local.update((ep.get("addresses") or [])[:1])
    return port, len(local)


def host_published_ports(slices: Iterable[dict], host_address: str) -> set[tuple[str, int, int]]:
    """(protocol, port, loopback port) the host exposes at the host address: endpoints of
    slices managed by ``HOST_SERVICES_MANAGER`` that hold the host address (the apiserver,
    the cluster DNS). Anything else never reaches the host's loopback."""
    out = set()
    for sl in slices:
        labels = (sl.get("metadata") or {}).get("labels") or {}
        if labels.get("endpointslice.kubernetes.io/managed-by") != HOST_SERVICES_MANAGER:
            continue
        if not any(host_address in (ep.get("addresses") or []) for ep in sl.get("endpoints") or []):
            continue
        mapping: dict[str, int] = {}
        ann = ((sl.get("metadata") or {}).get("annotations") or {}).get(LOOPBACK_PORTS_ANNOTATION, "")
        for item in ann.split(","):
            k, _, v = item.strip().partition("=")
            if k and v.isdigit():
                mapping[k] = int(v)
        for p in sl.get("ports") or []:
            proto = PROTOCOLS.get(p.get("protocol") or "TCP")
            port = p.get("port")
            if proto and isinstance(port, int) and 1 <= port <= 65535:
                out.add((proto, port, mapping.get(p.get("name") or "", port)))
    return out
