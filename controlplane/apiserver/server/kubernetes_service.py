"""The ``default/kubernetes`` Service (kube-apiserver's bootstrap controller and endpoint
reconciler): at start the primary apiserver makes sure the Service exists at the first address
of the service CIDR (port 443, named ``https``) and that its Endpoints and EndpointSlice point
at the advertise address and this server's port. The slice carries the managed-by label of the
host services, so every node's proxy carries ``<host address>:<port>`` on to this apiserver's
loopback port (docs/networking.md); until TLS lands the port speaks HTTP.
Caller: ``app.ApiServer.start``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from controlplane.apiserver.endpoints.write import create_object, write_update
from controlplane.apiserver.meta import errors
from controlplane.log import get_logger
from controlplane.network.addressing import HOST_SERVICES_MANAGER

log = get_logger(__name__)
MANAGER = "controlplane-apiserver"


def desired(service_cidr: str, address: str, port: int) -> dict[str, dict[str, Any]]:
    """The Service, Endpoints and EndpointSlice (pure)."""
    ip = str(ipaddress.ip_network(service_cidr).network_address + 1)
    labels = {"component": "apiserver", "provider": "kubernetes"}
    return {
        "services": {"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
                     "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                              "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}},
        "endpoints": {"apiVersion": "v1", "kind": "Endpoints",
                      "metadata": {"name": "kubernetes", "namespace": "default", "labels": {
                          "endpointslice.kubernetes.io/skip-mirror": "true"}},
                      "subsets": [{"addresses": [{"ip": address}],
                                   "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]},
        "endpointslices": {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                           "metadata": {"name": "kubernetes", "namespace": "default", "labels": {
                               "kubernetes.io/service-name": "kubernetes",
                               "endpointslice.kubernetes.io/managed-by": HOST_SERVICES_MANAGER}},
                           "addressType": "IPv4",
                           "endpoints": [{"addresses": [address], "conditions": {"ready": True, "serving": True,
                                                                                 "terminating": False}}],
                           "ports": [{"name": "https", "port": port, "protocol": "TCP"}]},
    }


async def ensure(api: Any, address: str, port: int) -> None:
    want = desired(api.service_cidr, address, port)
    for plural, group, version in (("services", "", "v1"), ("endpoints", "", "v1"),
                                   ("endpointslices", "discovery.k8s.io", "v1")):
        info = api.registry.get(group, version, plural)
        body = want[plural]
        current = await api.store.get_or_none(info, "default", "kubernetes")
        try:
            if current is None:
                await create_object(api, info, body, strict=False, manager=MANAGER, dry=False)
                continue
            if plural == "services":
                continue  # exists (its clusterIP is immutable; the endpoints say where we are)
            if all(current.get(k) == v for k, v in body.items() if k not in ("metadata", "apiVersion", "kind")):
                continue

            async def compute(cur: dict[str, Any], body: dict[str, Any] = body) -> dict[str, Any]:
                out = dict(body)
                out["metadata"] = {**body["metadata"], "resourceVersion": cur["metadata"]["resourceVersion"]}
                return out

            await write_update(api, info, "default", "kubernetes", compute, subresource="", strict=False,
                               manager=MANAGER, dry=False)
        except errors.ApiError as e:
            if e.reason != "AlreadyExists":
                log.warning("kubernetes Service bootstrap failed", resource=plural, error=str(e))
    log.info("kubernetes Service ready", endpoint=f"{address}:{port}")
