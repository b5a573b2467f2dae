"""The pure half of the EndpointSliceMirroring controller (``endpointslicemirroring``): which
Endpoints are mirrored, Kubernetes' ``RepackSubsets``, the desired endpoints per port list with
the addresses skipped (invalid, IPv6, over ``--mirroring-max-endpoints-per-subset``), the
slices' labels, annotations and owner, and the plan that turns the existing mirrored slices
into the desired ones (kube-controller-manager's ``pkg/controller/endpointslicemirroring``
reconciler: one slice per port list, rewritten in place; a slice that would be deleted is
reused for one to create). Unit-tested on its own
(``tests/unit/test_endpointslice_mirroring.py``); the address rules are
``machinery.services.endpoint_ip_error``, shared with the apiserver's validation.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field

from controlplane.machinery.services import endpoint_ip_error

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SERVICE_NAME = "kubernetes.io/service-name"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
LEADER = "control-plane.alpha.kubernetes.io/leader"
TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_ENDPOINTS_PER_SUBSET = 1000


def should_mirror(ep: dict | None) -> bool:
    md = (ep or {}).get("metadata") or {}
    return ep is not None and (md.get("labels") or {}).get(SKIP_MIRROR) != "true" \
        and LEADER not in (md.get("annotations") or {})


def _port_tuple(p: dict) -> tuple:
    n = p.get("port")
    num = (0, n, "") if isinstance(n, int) and not isinstance(n, bool) else (1, 0, repr(n))  # sortable, bad input too
    return (p.get("name") or "", num, p.get("protocol") or "TCP", p.get("appProtocol") or "")


def ports_key(ports: list[dict]) -> tuple:
    return tuple(sorted(_port_tuple(p) for p in ports or []))


def repack_subsets(subsets: list[dict]) -> list[dict]:
    """Kubernetes' ``RepackSubsets`` (pure): every port mapped to the addresses offering it (an
    address is its IP and targetRef uid; ready wins over not ready), ports with the same address
    map joined in one subset; a subset without ports keeps its addresses. Sorted."""
    addrs: dict[tuple, dict] = {}
    by_port: dict[tuple, dict[tuple, bool]] = {}
    port_of: dict[tuple, dict] = {}
    for s in subsets or []:
        ports = [p for p in s.get("ports") or [] if isinstance(p, dict)]
        keys = [_port_tuple(p) for p in ports] or [None]
        for p in ports:
            port_of.setdefault(_port_tuple(p), p)
        for ready, field_ in ((True, "addresses"), (False, "notReadyAddresses")):
            for a in s.get(field_) or []:
                if not isinstance(a, dict):
                    continue
                ak = (a.get("ip") or "", ((a.get("targetRef") or {}).get("uid") or ""))
                addrs.setdefault(ak, a)
                for k in keys:
                    m = by_port.setdefault(k, {})
                    m[ak] = m.get(ak, False) or ready
    groups: dict[tuple, list] = {}
    for k, m in by_port.items():
        g = groups.setdefault(tuple(sorted(m.items())), [])
        if k is not None:
            g.append(port_of[k])
    out = []
    for amap, ports in groups.items():
        s: dict = {}
        ready = sorted((ak for ak, r in amap if r))
        not_ready = sorted((ak for ak, r in amap if not r))
        if ready:
            s["addresses"] = [addrs[ak] for ak in ready]
        if not_ready:
            s["notReadyAddresses"] = [addrs[ak] for ak in not_ready]
        if ports:
            s["ports"] = sorted(ports, key=_port_tuple)
        out.append(s)
    return sorted(out, key=lambda s: ports_key(s.get("ports") or []))


def slice_ports(ports: list[dict]) -> list[dict]:
    out = []
    for p in ports:
        sp = {"name": p.get("name") or "", "port": p.get("port"), "protocol": p.get("protocol") or "TCP"}
        if p.get("appProtocol"):
            sp["appProtocol"] = p["appProtocol"]
        out.append(sp)
    return out


def endpoint_of(addr: dict, ready: bool) -> dict:
    """Kubernetes' ``addressToEndpoint``."""
    ep: dict = {"addresses": [addr.get("ip")], "conditions": {"ready": ready}}
    if addr.get("hostname"):
        ep["hostname"] = addr["hostname"]
    if addr.get("nodeName"):
        ep["nodeName"] = addr["nodeName"]
    if addr.get("targetRef"):
        ep["targetRef"] = addr["targetRef"]
    return ep


@dataclass
class Desired:
    groups: dict[tuple, tuple[list[dict], list[dict]]] = field(default_factory=dict)  # key -> (ports, endpoints)
    invalid: int = 0
    ipv6: int = 0
    skipped: int = 0  # every address not mirrored (invalid, IPv6, over the limit)


def desired_endpoints(endpoints: dict, max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> Desired:
    """The slices' content of one Endpoints object (pure): per port list, its endpoints."""
    d = Desired()
    for s in repack_subsets(endpoints.get("subsets") or []):
        ports = slice_ports(s.get("ports") or [])
        key = ports_key(ports)
        eps = d.groups.setdefault(key, (ports, []))[1]
        total = len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or [])
        added = 0
        for ready, field_ in ((True, "addresses"), (False, "notReadyAddresses")):
            for a in s.get(field_) or []:
                if added >= max_per_subset:
                    break
                ip = a.get("ip")
                if isinstance(ip, str) and _is_ipv6(ip):
                    d.ipv6 += 1
                elif not isinstance(ip, str) or endpoint_ip_error(ip, 4):
                    d.invalid += 1
                else:
                    eps.append(endpoint_of(a, ready))
                    added += 1
        d.skipped += total - added
    d.groups = {k: v for k, v in d.groups.items() if v[1]}
    return d


def _is_ipv6(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 6
    except ValueError:
        return False


def slice_meta(endpoints: dict) -> tuple[dict, dict]:
    """The labels and annotations of the slices mirroring ``endpoints`` (pure)."""
    md = endpoints.get("metadata") or {}
    labels = {k: v for k, v in (md.get("labels") or {}).items() if k != SKIP_MIRROR}
    labels[SERVICE_NAME] = md.get("name")
    labels[MANAGED_BY] = CONTROLLER_NAME
    annotations = {k: v for k, v in (md.get("annotations") or {}).items() if k not in (TRIGGER, LAST_APPLIED)}
    return labels, annotations


def owner_ref(endpoints: dict) -> dict:
    md = endpoints["metadata"]
    return {"apiVersion": "v1", "kind": "Endpoints", "name": md["name"], "uid": md.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def _ep_key(ep: dict) -> tuple:
    """Kubernetes' endpoint hash: addresses, hostname, targetRef namespace/name."""
    ref = ep.get("targetRef") or {}
    return (tuple(sorted(ep.get("addresses") or [])), ep.get("hostname") or "", ref.get("namespace") or "",
            ref.get("name") or "")


@dataclass
class Plan:
    create: list[tuple[list[dict], list[dict]]] = field(default_factory=list)  # (ports, endpoints)
    update: list[tuple[dict, list[dict], list[dict]]] = field(default_factory=list)  # (slice, ports, endpoints)
    delete: list[dict] = field(default_factory=list)


def plan(desired: dict[tuple, tuple[list[dict], list[dict]]], existing: list[dict]) -> Plan:
    """Turn ``existing`` mirrored slices into ``desired`` (pure), as Kubernetes'
    ``reconcileByPortMapping``: one slice per port list (and address type) holding all its
    endpoints, the first existing one (by name) rewritten and any others deleted, as are
    slices of a port list no longer desired; a slice that would be deleted is reused for one
    to create (``recycleSlices``). Unchanged slices are in ``update`` too: the caller skips
    those equal to what they would become. Duplicate endpoints (same address, hostname and
    target) are kept once, as Kubernetes' EndpointSet."""
    p = Plan()
    by_key: dict[tuple, list[dict]] = {}
    for s in sorted(existing, key=lambda s: s["metadata"].get("name", "")):
        if (s.get("addressType") or "IPv4") == "IPv4":
            by_key.setdefault(ports_key(s.get("ports") or []), []).append(s)
        else:
            p.delete.append(s)
    for key, slices in by_key.items():
        if key not in desired:
            p.delete.extend(slices)
    for key, (ports, eps) in desired.items():
        unique: dict[tuple, dict] = {}
        for e in eps:
            unique.setdefault(_ep_key(e), e)
        slices = by_key.get(key, [])
        if slices:
            p.update.append((slices[0], ports, list(unique.values())))
            p.delete.extend(slices[1:])
        else:
            p.create.append((ports, list(unique.values())))
    while p.create and p.delete:
        ports, eps = p.create.pop(0)
        p.update.append((p.delete.pop(0), ports, eps))
    return p


def build_slice(endpoints: dict, ports: list[dict], eps: list[dict], existing: dict | None = None) -> dict:
    """The slice body: ``existing`` rewritten (name, resourceVersion kept), or a new one."""
    labels, annotations = slice_meta(endpoints)
    md = endpoints["metadata"]
    if existing is not None:
        out = copy.deepcopy(existing)
    else:
        out = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"generateName": f"{md['name'][:57]}-", "namespace": md.get("namespace")}}
    out["metadata"].update({"labels": labels, "annotations": annotations, "ownerReferences": [owner_ref(endpoints)]})
    out["addressType"] = "IPv4"
    out["ports"] = ports
    out["endpoints"] = eps
    return out


def unchanged(existing: dict, body: dict) -> bool:
    """True when writing ``body`` over ``existing`` would change nothing we own."""
    a, b = existing.get("metadata") or {}, body["metadata"]
    return (a.get("labels") or {}) == b["labels"] and (a.get("annotations") or {}) == b["annotations"] \
        and (a.get("ownerReferences") or []) == b["ownerReferences"] \
        and (existing.get("endpoints") or []) == body["endpoints"] \
        and (existing.get("ports") or []) == body["ports"]
