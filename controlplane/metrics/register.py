"""Registering the Metrics API with the aggregation layer, what metrics-server's manifests do:
a Service ``kube-system/metrics-server`` (no selector: the component runs as a process, not a
pod) whose Endpoints point at the component's address and port, and the APIService
``v1beta1.metrics.k8s.io`` naming that Service, with the component's (self-signed) serving
certificate as ``caBundle`` (the certificate names ``metrics-server.kube-system.svc``, which the
apiserver verifies). On a loopback address the Endpoints carry
``endpointslice.kubernetes.io/skip-mirror: "true"``: no EndpointSlice can hold such an address
(and no pod reach it), so the EndpointSliceMirroring controller leaves them alone, as it does
the ``kubernetes`` Service's. Creates or replaces each object; ``controlplane metrics-server
--register-apiservice`` calls it once it serves.
"""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient

NAMESPACE, NAME = "kube-system", "metrics-server"
SERVICE_DNS = f"{NAME}.{NAMESPACE}.svc"


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def objects(address: str, port: int, ca_cert: Path | None) -> list[tuple[R.Resource, dict]]:
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"k8s-app": NAME}},
           "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}}
    labels = {"k8s-app": NAME}
    if _loopback(address):
        labels["endpointslice.kubernetes.io/skip-mirror"] = "true"
    eps = {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
           "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
    spec: dict = {"service": {"name": NAME, "namespace": NAMESPACE, "port": 443}, "group": "metrics.k8s.io",
                  "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100}
    if ca_cert is not None:
        spec["caBundle"] = base64.b64encode(ca_cert.read_bytes()).decode()
    else:
        spec["insecureSkipTLSVerify"] = True
    aps = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
           "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": {"k8s-app": NAME}}, "spec": spec}
    return [(R.SERVICES, svc), (R.ENDPOINTS, eps), (R.APISERVICES, aps)]


async def register(client: RestClient, address: str, port: int, ca_cert: Path | None = None) -> None:
    await apply_objects(client, objects(address, port, ca_cert))


CONFLICT_RETRIES = 5


async def apply_objects(client: RestClient, objs: list[tuple[R.Resource, dict]]) -> None:
    """Create each object, or update the one there (a Service keeps its clusterIP). An update
    that meets a newer version (409 Conflict: another server's availability controller wrote the
    APIService's status between the read and the write, as when HA servers start together) is
    read and tried again, as client-go's ``RetryOnConflict``."""
    for res, obj in objs:
        md = obj["metadata"]
        try:
            await client.create(res, obj, md.get("namespace"))
            continue
        except ApiStatusError as e:
            if not e.already_exists:
                raise
        for attempt in range(CONFLICT_RETRIES):
            cur = await client.get(res, md["name"], md.get("namespace"))
            want = dict(obj)
            if res is R.SERVICES:  # keep the allocated clusterIP
                want["spec"] = {**(cur.get("spec") or {}), **obj["spec"]}
            want["metadata"] = {**md, "resourceVersion": cur["metadata"]["resourceVersion"]}
            try:
                await client.update(res, want)
                break
            except ApiStatusError as e:
                if not e.conflict or attempt == CONFLICT_RETRIES - 1:
                    raise
