"""Validation rules of the networking kinds (Kubernetes 1.32): ``discovery.k8s.io/v1``
EndpointSlice (``pkg/apis/discovery/validation``) and ``networking.k8s.io/v1`` NetworkPolicy
(``pkg/apis/networking/validation``), with Kubernetes' field paths and messages. A manual
slice with a bad address, a duplicate port name or a loopback endpoint is a 422 here rather
than rules the service proxy cannot program. ``rules.py`` maps the kinds to them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from controlplane.apiserver.meta.names import (
    Errors, dns1123_label_error, dns1123_subdomain_error, qualified_name_error,
)
from controlplane.apiserver.validation import pods
from controlplane.machinery.selectors import LabelSelector

Obj = dict[str, Any]

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ENDPOINTS = 1000
MAX_PORTS = 20000
MAX_ADDRESSES = 100
POLICY_TYPES = ("Egress", "Ingress")
_LL4 = ipaddress.ip_network("169.254.0.0/16")
_LL_MCAST4 = ipaddress.ip_network("224.0.0.0/24")


def _ip_error(addr: str, family: int) -> str | None:
    """Kubernetes' ValidateEndpointIP plus the address type's family."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return f"must be a valid IPv{family} address"
    if ip.version != family:
        return f"must be a valid IPv{family} address"
    if ip.is_unspecified:
        return f"may not be unspecified ({ip})"
    if ip.is_loopback:
        return "may not be in the loopback range (127.0.0.0/8, ::1/128)"
    if ip.version == 4 and ip in _LL4 or ip.version == 6 and ip.is_link_local:
        return "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
    if ip.version == 4 and ip in _LL_MCAST4 or ip.version == 6 and int(ip) >> 112 == 0xFF02:
        return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
    return None


def endpoint_slice(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    at = obj.get("addressType")
    if not at:
        errs.required("addressType", "")
    elif at not in ADDRESS_TYPES:
        errs.not_supported("addressType", at, ADDRESS_TYPES)
    if update and old.get("addressType") and at != old.get("addressType"):
        errs.invalid("addressType", at, "field is immutable")
    eps = obj.get("endpoints") or []
    if len(eps) > MAX_ENDPOINTS:
        errs.add("FieldValueTooMany", "endpoints", f"Too many: {len(eps)}: must have at most {MAX_ENDPOINTS} items")
    for i, ep in enumerate(eps):
        if not isinstance(ep, dict):
            continue
        path = f"endpoints[{i}]"
        addrs = ep.get("addresses") or []
        if not addrs:
            errs.required(f"{path}.addresses", "must contain at least 1 address")
        elif len(addrs) > MAX_ADDRESSES:
            errs.add("FieldValueTooMany", f"{path}.addresses",
                     f"Too many: {len(addrs)}: must have at most {MAX_ADDRESSES} items")
        for j, a in enumerate(addrs):
            apath = f"{path}.addresses[{j}]"
            if at in ("IPv4", "IPv6"):
                msg = _ip_error(a, 4 if at == "IPv4" else 6) if isinstance(a, str) else "must be a string"
            elif at == "FQDN":
                msg = dns1123_subdomain_error(a)
            else:
                msg = None
            if msg:
                errs.invalid(apath, a, msg)
        if ep.get("hostname") is not None:
            msg = dns1123_label_error(ep["hostname"])
            if msg:
                errs.invalid(f"{path}.hostname", ep["hostname"], msg)
        if ep.get("nodeName"):
            msg = dns1123_subdomain_error(ep["nodeName"])
            if msg:
                errs.invalid(f"{path}.nodeName", ep["nodeName"], msg)
    ports = obj.get("ports") or []
    if len(ports) > MAX_PORTS:
        errs.add("FieldValueTooMany", "ports", f"Too many: {len(ports)}: must have at most {MAX_PORTS} items")
    names: set[str] = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        path = f"ports[{i}]"
        name = p.get("name")
        if name:
            msg = dns1123_label_error(name)
            if msg:
                errs.invalid(f"{path}.name", name, msg)
        if (name or "") in names:
            errs.duplicate(f"{path}.name", name or "")
        names.add(name or "")
        proto = p.get("protocol")
        if proto is None:
            errs.required(f"{path}.protocol", "")
        else:
            pods.protocol(errs, f"{path}.protocol", proto)
        pods.port_number(errs, f"{path}.port", p.get("port"))
        ap = p.get("appProtocol")
        if ap:
            msg = qualified_name_error(ap.split("/", 1)[-1])
            if msg:
                errs.invalid(f"{path}.appProtocol", ap, msg)


def _selector(errs: Errors, path: str, sel: Any) -> None:
    if sel is None:
        return
    try:
        LabelSelector.from_dict(sel)
    except ValueError as e:
        errs.invalid(path, sel, str(e))


def _policy_port(errs: Errors, path: str, p: Obj) -> None:
    pods.protocol(errs, f"{path}.protocol", p.get("protocol"))
    port, end = p.get("port"), p.get("endPort")
    if isinstance(port, int) and not isinstance(port, bool):
        pods.port_number(errs, f"{path}.port", port)
    elif isinstance(port, str) and not pods.iana_svc_name_ok(port):
        errs.invalid(f"{path}.port", port, pods.IANA_MSG)
    if end is not None:
        if not isinstance(port, int) or isinstance(port, bool):
            errs.forbidden(f"{path}.endPort", "may not be specified when `port` is non-numeric" if port is not None
                           else "may not be specified when `port` is not specified")
        elif end < port:
            errs.invalid(f"{path}.endPort", end, "must be greater than or equal to `port`")
        else:
            pods.port_number(errs, f"{path}.endPort", end)


def _peer(errs: Errors, path: str, peer: Obj) -> None:
    has_block = peer.get("ipBlock") is not None
    has_sel = peer.get("podSelector") is not None or peer.get("namespaceSelector") is not None
    if not has_block and not has_sel:
        errs.required(path, "must specify a peer")
        return
    if has_block and has_sel:
        errs.forbidden(path, "may not specify more than 1 peer type")
        return
    _selector(errs, f"{path}.podSelector", peer.get("podSelector"))
    _selector(errs, f"{path}.namespaceSelector", peer.get("namespaceSelector"))
    if has_block:
        block = peer["ipBlock"] or {}
        cidr = block.get("cidr")
        if not cidr:
            errs.required(f"{path}.ipBlock.cidr", "")
            return
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errs.invalid(f"{path}.ipBlock.cidr", cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
            return
        for i, e in enumerate(block.get("except") or []):
            try:
                ex = ipaddress.ip_network(e, strict=False)
            except ValueError:
                errs.invalid(f"{path}.ipBlock.except[{i}]", e,
                             "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
                continue
            if ex.version != net.version or not ex.subnet_of(net) or ex.prefixlen <= net.prefixlen:  # type: ignore[arg-type]
                errs.invalid(f"{path}.ipBlock.except[{i}]", e, "must be a strict subset of `cidr`")


def network_policy(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec") or {}
    _selector(errs, "spec.podSelector", spec.get("podSelector"))
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            if not isinstance(rule, dict):
                continue
            for j, p in enumerate(rule.get("ports") or []):
                if isinstance(p, dict):
                    _policy_port(errs, f"spec.{direction}[{i}].ports[{j}]", p)
            for j, peer in enumerate(rule.get(peers_key) or []):
                if isinstance(peer, dict):
                    _peer(errs, f"spec.{direction}[{i}].{peers_key}[{j}]", peer)
    types = spec.get("policyTypes") or []
    if len(types) > len(POLICY_TYPES):
        errs.invalid("spec.policyTypes", types, "may not specify more than two policyTypes")
    seen: set[str] = set()
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            errs.not_supported(f"spec.policyTypes[{i}]", t, POLICY_TYPES)
        elif t in seen:
            errs.duplicate(f"spec.policyTypes[{i}]", t)
        seen.add(t)
