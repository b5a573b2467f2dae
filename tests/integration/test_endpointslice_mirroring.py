"""EndpointSliceMirroring end to end with the real apiserver, controller-manager and kubectl:
a Service without a selector and an Endpoints written by hand (``kubectl apply``) are mirrored
into an EndpointSlice that ``kubectl get endpointslices`` lists, kept in sync through updates
(addresses, readiness, ports, labels), and removed when the Endpoints is deleted, when it gets
``skip-mirror``, when the Service gets a selector and when the Service is deleted; addresses
past ``--mirroring-max-endpoints-per-subset`` (3 here) or that no slice can hold are skipped
with Kubernetes' Warning Events; the Endpoints controller's own Endpoints carry ``skip-mirror``
and are never mirrored. The addresses are documentation addresses (192.0.2.0/24): nothing
here sends traffic (no proxy runs); the datapath through a ClusterIP is
``test_network_cluster.py::test_selectorless_service_with_manual_endpoints``."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from controlplane.client import resources as R
from controlplane.client.rest import RestClient
from tests.fixtures.controllers import JOB_BACKOFF_ARGS
from tests.integration.test_controllers_deployment import eventually, new_namespace

pytestmark = pytest.mark.integration

controller_manager_args = [*JOB_BACKOFF_ARGS, "--mirroring-max-endpoints-per-subset", "3"]
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MIRRORING = "endpointslicemirroring-controller.k8s.io"


def service(name: str, selector: dict | None = None) -> dict:
    spec: dict = {"ports": [{"name": "pg", "port": 5432, "targetPort": 5432}]}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def manual_endpoints(name: str, ready: list[str], not_ready: list[str] = (), ports: list | None = None,
                     labels: dict | None = None, extra: list | None = None) -> dict:
    subset: dict = {"ports": ports or [{"name": "pg", "port": 5432, "protocol": "TCP"}]}
    if ready:
        subset["addresses"] = [{"ip": ip} for ip in ready]
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "labels": labels or {"app": name}}, "subsets": [subset, *(extra or [])]}


def apply(kubectl, ns: str, *docs: dict):  # type: ignore[no-untyped-def]
    return kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(list(docs)))


async def mirrored(client: RestClient, ns: str, name: str) -> list[dict]:
    items = (await client.list(R.ENDPOINTSLICES, ns, label_selector=f"kubernetes.io/service-name={name}"))["items"]
    return sorted([s for s in items if s["metadata"]["labels"].get(MANAGED_BY) == MIRRORING],
                  key=lambda s: [p["port"] for p in s.get("ports") or []])


def content(slices: list[dict]) -> list[tuple]:
    return [(tuple(p["port"] for p in s["ports"]),
             tuple((e["addresses"][0], e["conditions"]["ready"]) for e in s["endpoints"])) for s in slices]


async def wait_content(client: RestClient, ns: str, name: str, want: list[tuple]) -> list[dict]:
    seen: list = []

    async def check():
        slices = await mirrored(client, ns, name)
        seen[:] = [content(slices)]
        return (slices,) if content(slices) == want else None  # a tuple: no slices is an answer too
    try:
        return (await eventually(check))[0]
    except AssertionError:
        ep = await client.get(R.ENDPOINTS, name, ns) if want else None
        raise AssertionError(f"mirrored slices of {ns}/{name}: {seen} (want {want}); Endpoints: {ep}") from None


async def test_manual_endpoints_mirrored_kept_in_sync_and_removed(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "mirror")
    await asyncio.to_thread(apply, kubectl, ns, service("db"), manual_endpoints("db", ["192.0.2.10"], ["192.0.2.11"]))
    (sl,) = await wait_content(client, ns, "db", [((5432,), (("192.0.2.10", True), ("192.0.2.11", False)))])
    md = sl["metadata"]
    ep = await client.get(R.ENDPOINTS, "db", ns)
    assert md["generateName"] == "db-" and md["labels"] == {
        "app": "db", "kubernetes.io/service-name": "db", MANAGED_BY: MIRRORING}
    # kubectl's last-applied configuration stays on the Endpoints
    assert "kubectl.kubernetes.io/last-applied-configuration" in ep["metadata"]["annotations"]
    assert not (md.get("annotations") or {})
    assert md["ownerReferences"] == [{"apiVersion": "v1", "kind": "Endpoints", "name": "db",
                                      "uid": ep["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert sl["addressType"] == "IPv4" and sl["ports"] == [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    table = (await asyncio.to_thread(kubectl, "get", "endpointslices", "-n", ns)).stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert table[1].split()[:4] == [md["name"], "IPv4", "5432", "192.0.2.10,192.0.2.11"]
    # the endpoints controller leaves a selector-less Service's Endpoints alone
    assert "endpoints.controlplane/managed" not in ep["metadata"]["labels"]

    # updates: an address ready now, one more, a label; the slice is updated in place
    await asyncio.to_thread(apply, kubectl, ns, manual_endpoints(
        "db", ["192.0.2.10", "192.0.2.11", "192.0.2.12"], labels={"app": "db", "tier": "data"}))
    (sl2,) = await wait_content(client, ns, "db", [((5432,), (("192.0.2.10", True), ("192.0.2.11", True),
                                                              ("192.0.2.12", True)))])
    assert sl2["metadata"]["name"] == md["name"]
    await eventually(lambda: _label(client, ns, md["name"], "tier", "data"))
    # a second port offered by other addresses: a second slice
    extra = [{"addresses": [{"ip": "192.0.2.20"}], "ports": [{"name": "metrics", "port": 9187, "protocol": "TCP"}]}]
    await asyncio.to_thread(apply, kubectl, ns, manual_endpoints("db", ["192.0.2.10"], extra=extra))
    await wait_content(client, ns, "db", [((5432,), (("192.0.2.10", True),)), ((9187,), (("192.0.2.20", True),))])

    # deleting the Endpoints removes its slices
    await asyncio.to_thread(kubectl, "delete", "endpoints", "db", "-n", ns)
    await wait_content(client, ns, "db", [])

    # the skip-mirror label removes them; taking it off brings them back
    await asyncio.to_thread(apply, kubectl, ns, manual_endpoints("db", ["192.0.2.10"]))
    await wait_content(client, ns, "db", [((5432,), (("192.0.2.10", True),))])
    await asyncio.to_thread(kubectl, "label", "endpoints", "db", "-n", ns,
                            "endpointslice.kubernetes.io/skip-mirror=true")
    await wait_content(client, ns, "db", [])
    await asyncio.to_thread(kubectl, "label", "endpoints", "db", "-n", ns, "endpointslice.kubernetes.io/skip-mirror-")
    await wait_content(client, ns, "db", [((5432,), (("192.0.2.10", True),))])

    # deleting the Service removes them (the Endpoints stays: it is the user's)
    await asyncio.to_thread(kubectl, "delete", "service", "db", "-n", ns)
    await wait_content(client, ns, "db", [])
    assert await client.get(R.ENDPOINTS, "db", ns)


async def _label(client: RestClient, ns: str, name: str, key: str, value: str) -> bool:
    return (await client.get(R.ENDPOINTSLICES, name, ns))["metadata"]["labels"].get(key) == value


async def test_a_selector_hands_the_service_to_the_endpointslice_controller(apiserver, controller_manager, kubectl,
                                                                            client):
    ns = await new_namespace(client, "mirror-sel")
    await asyncio.to_thread(apply, kubectl, ns, service("cache"), manual_endpoints("cache", ["192.0.2.30"]))
    await wait_content(client, ns, "cache", [((5432,), (("192.0.2.30", True),))])
    await asyncio.to_thread(apply, kubectl, ns, service("cache", {"app": "cache"}))
    await wait_content(client, ns, "cache", [])

    async def taken_over():
        ep = await client.get(R.ENDPOINTS, "cache", ns)
        items = (await client.list(R.ENDPOINTSLICES, ns))["items"]
        own = [s for s in items if s["metadata"]["labels"].get(MANAGED_BY) == "endpointslice-controller.k8s.io"]
        # the endpoints controller rewrote the Endpoints (no pod matches) and labelled it skip-mirror
        return (ep["metadata"]["labels"].get("endpointslice.kubernetes.io/skip-mirror") == "true"
                and not ep.get("subsets") and len(own) == 1)
    await eventually(taken_over)
    assert await mirrored(client, ns, "cache") == []


async def test_skipped_addresses_are_warned_about(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "mirror-warn")
    ready = [f"192.0.2.{i}" for i in range(40, 45)]  # five: two past the limit of 3
    # addresses are sorted before the limit applies: the loopback one is looked at (and
    # skipped), the IPv6 one of the second subset too
    extra = [{"addresses": [{"ip": "fd00::1"}, {"ip": "192.0.2.50"}],
              "ports": [{"name": "metrics", "port": 9187, "protocol": "TCP"}]}]
    ep = manual_endpoints("ext", ready + ["127.0.0.1"], extra=extra)
    await asyncio.to_thread(apply, kubectl, ns, service("ext"), ep)
    await wait_content(client, ns, "ext", [((5432,), tuple((ip, True) for ip in ready[:3])),
                                           ((9187,), (("192.0.2.50", True),))])

    seen: list = []

    async def warnings():
        out = await asyncio.to_thread(kubectl, "get", "events", "-n", ns, "-o", "json")
        seen[:] = json.loads(out.stdout)["items"]
        evs = {e["reason"]: e for e in seen if e["involvedObject"]["kind"] == "Endpoints" and e["type"] == "Warning"}
        return evs if {"InvalidIPAddress", "UnsupportedAddressType", "TooManyAddressesToMirror"} <= set(evs) else None
    try:
        evs = await eventually(warnings)
    except AssertionError:
        raise AssertionError(f"events of {ns}: {seen}\ncontroller-manager:\n{controller_manager.log_tail()}") from None
    assert evs["InvalidIPAddress"]["message"] == "Skipped 1 invalid IP addresses when mirroring to EndpointSlices"
    assert evs["UnsupportedAddressType"]["message"] == (
        "Skipped 1 IPv6 addresses when mirroring to EndpointSlices: this cluster is IPv4 only")
    assert evs["TooManyAddressesToMirror"]["message"] == (
        "A max of 3 addresses can be mirrored to EndpointSlices per Endpoints subset. 2 addresses were skipped")
    assert evs["TooManyAddressesToMirror"]["source"]["component"] == "endpoint-slice-mirroring-controller"
