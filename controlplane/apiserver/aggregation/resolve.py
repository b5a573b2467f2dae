"""Where an APIService's requests go (kube-aggregator's ``ResolveEndpoint``, the
``--enable-aggregator-routing`` mode): the Service it names, read from this process's watch
caches; an ExternalName Service gives ``https://<externalName>:<port>``, any other a ready
address of its Endpoints with the port named like the Service's port (a random one when there
are several). Cluster IPs are never dialled (the apiserver runs outside the pod network).
"""

from __future__ import annotations

import random
from typing import Any

import ujson

from controlplane.apiserver.discovery.registry import Registry
from controlplane.apiserver.persistence.caches import WatchCaches
from controlplane.apiserver.persistence.codec import object_key

Obj = dict[str, Any]


class ResolveError(Exception):
    """The backend cannot be found; ``reason`` is the Available condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Resolver:
    def __init__(self, caches: WatchCaches, registry: Registry) -> None:
        self.caches = caches
        self.registry = registry

    def _get(self, plural: str, namespace: str, name: str) -> Obj | None:
        info = self.registry.get("", "v1", plural)
        cache = self.caches.if_ready(info) if info is not None else None
        if cache is None or info is None:
            return None
        e = cache.get(object_key(info, namespace, name))
        return ujson.loads(e.raw) if e is not None else None

    def service(self, ref: Obj) -> Obj:
        ns, name = ref.get("namespace") or "", ref.get("name") or ""
        svc = self._get("services", ns, name)
        if svc is None:
            raise ResolveError("ServiceNotFound", f'service/{name} in "{ns}" is not present')
        return svc

    def url(self, apiservice: Obj) -> str:
        """``https://host:port`` of a ready backend (``ResolveError`` says why there is none)."""
        ref = (apiservice.get("spec") or {}).get("service") or {}
        ns, name, port = ref.get("namespace") or "", ref.get("name") or "", int(ref.get("port") or 443)
        svc = self.service(ref)
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            host = spec.get("externalName") or ""
            return f"https://{host}:{port}"
        svc_port = next((p for p in spec.get("ports") or [] if int(p.get("port") or 0) == port), None)
        if svc_port is None:
            raise ResolveError("ServicePortError", f'service/{name} in "{ns}" is not listening on port {port}')
        eps = self._get("endpoints", ns, name)
        if eps is None:
            raise ResolveError("EndpointsNotFound", f'cannot find endpoints for service/{name} in "{ns}"')
        port_name = svc_port.get("name") or ""
        choices = []
        for subset in eps.get("subsets") or []:
            ports = subset.get("ports") or []
            match = next((p for p in ports if (p.get("name") or "") == port_name), None)
            if match is None:
                continue
            for addr in subset.get("addresses") or []:
                if addr.get("ip"):
                    choices.append((addr["ip"], int(match.get("port") or 0)))
        if not choices:
            raise ResolveError("MissingEndpoints",
                               f'endpoints for service/{name} in "{ns}" have no addresses with port name "{port_name}"')
        ip, p = random.choice(choices)
        host = f"[{ip}]" if ":" in ip else ip
        return f"https://{host}:{p}"
