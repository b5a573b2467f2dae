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
from controlplane.machinery.services import endpoint_ip_error

Obj = dict[str, Any]

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ENDPOINTS = 1000
MAX_PORTS = 20000
MAX_ADDRESSES = 100
POLICY_TYPES = ("Egress", "Ingress")


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
                msg = endpoint_ip_error(a, 4 if at == "IPv4" else 6) if isinstance(a, str) else "must be a string"
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


# -- networking.k8s.io/v1 Ingress and IngressClass (``ValidateIngressCreate``, ``ValidateIngressClass``)

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_BAD_PATH_PARTS = ("//", "/./", "/../", "%2f", "%2F")
_BAD_PATH_SUFFIXES = ("/..", "/.")


def _host_errors(errs: Errors, path: str, host: str) -> None:
    """A rule or TLS host: a DNS subdomain, optionally with a leading ``*.`` wildcard, never an
    IP address."""
    try:
        ipaddress.ip_address(host)
        errs.invalid(path, host, "must be a DNS name, not an IP address")
        return
    except ValueError:
        pass
    name = host[2:] if host.startswith("*.") else host
    msg = dns1123_subdomain_error(name)
    if msg:
        if host.startswith("*."):
            msg = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which "
                   "must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric "
                   "character (e.g. '*.example.com', regex used for validation is "
                   "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
        errs.invalid(path, host, msg)


def _ingress_backend(errs: Errors, path: str, backend: Any) -> None:
    if not isinstance(backend, dict):
        errs.required(path, "")
        return
    svc, res = backend.get("service"), backend.get("resource")
    if svc is not None and res is not None:
        errs.invalid(path, "", "cannot set both resource and service backends")
        return
    if svc is None and res is None:
        errs.invalid(path, "", "resource or service backend is required")
        return
    if res is not None:
        if not isinstance(res, dict) or not res.get("kind"):
            errs.required(f"{path}.resource.kind", "")
        if not isinstance(res, dict) or not res.get("name"):
            errs.required(f"{path}.resource.name", "")
        return
    if not isinstance(svc, dict):
        errs.required(f"{path}.service", "")
        return
    name = svc.get("name")
    if not name:
        errs.required(f"{path}.service.name", "")
    elif (msg := dns1123_label_error(name)) is not None:
        errs.invalid(f"{path}.service.name", name, msg)
    port = svc.get("port") if isinstance(svc.get("port"), dict) else {}
    pname, number = port.get("name"), port.get("number")
    if pname and number:
        errs.invalid(f"{path}.service.port", "", "cannot set both port name & port number")
    elif pname:
        if (msg := dns1123_label_error(pname)) is not None:
            errs.invalid(f"{path}.service.port.name", pname, msg)
    elif number is not None and number != 0:
        if not isinstance(number, int) or not 1 <= number <= 65535:
            errs.invalid(f"{path}.service.port.number", number, "must be between 1 and 65535, inclusive")
    else:
        errs.invalid(f"{path}.service.port", "", "port name or number is required")


def ingress(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    rules, default = spec.get("rules") or [], spec.get("defaultBackend")
    if not rules and default is None:
        errs.add("FieldValueInvalid", "spec", "Invalid value: []networking.IngressRule(nil): either `defaultBackend` "
                                              "or `rules` must be specified")
    if default is not None:
        _ingress_backend(errs, "spec.defaultBackend", default)
    cls = spec.get("ingressClassName")
    if cls is not None and (msg := dns1123_subdomain_error(cls)) is not None:
        errs.invalid("spec.ingressClassName", cls, msg)
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate((tls or {}).get("hosts") or []):
            _host_errors(errs, f"spec.tls[{i}].hosts[{j}]", host)
        secret = (tls or {}).get("secretName")
        if secret and (msg := dns1123_subdomain_error(secret)) is not None:
            errs.invalid(f"spec.tls[{i}].secretName", secret, msg)
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        base = f"spec.rules[{i}]"
        if rule.get("host"):
            _host_errors(errs, f"{base}.host", rule["host"])
        http = rule.get("http")
        if http is None:
            continue
        paths = (http or {}).get("paths") or []
        if not paths:
            errs.required(f"{base}.http.paths", "")
        for j, p in enumerate(paths):
            pp = f"{base}.http.paths[{j}]"
            if not isinstance(p, dict):
                continue
            ptype, text = p.get("pathType"), p.get("path") or ""
            if ptype is None:
                errs.required(f"{pp}.pathType", "pathType must be specified")
            elif ptype not in PATH_TYPES:
                errs.not_supported(f"{pp}.pathType", ptype, PATH_TYPES)
            if ptype in ("Exact", "Prefix"):
                if not text.startswith("/"):
                    errs.invalid(f"{pp}.path", text, "must be an absolute path")
                else:
                    bad = next((x for x in _BAD_PATH_PARTS if x in text), None) or \
                        next((x for x in _BAD_PATH_SUFFIXES if text.endswith(x)), None)
                    if bad is not None:
                        errs.invalid(f"{pp}.path", text, f"must not contain '{bad}'" if bad in _BAD_PATH_PARTS
                                     else f"cannot end with '{bad}'")
            elif ptype == "ImplementationSpecific" and text and not text.startswith("/"):
                errs.invalid(f"{pp}.path", text, "must be an absolute path")
            _ingress_backend(errs, f"{pp}.backend", p.get("backend"))


def ingress_class(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    ctl = spec.get("controller")
    if not ctl:
        errs.required("spec.controller", "")
    elif len(ctl) > 250:
        errs.add("FieldValueTooLong", "spec.controller", "Too long: may not be more than 250 bytes")
    elif "/" not in ctl:
        errs.invalid("spec.controller", ctl, 'must be a domain-prefixed path (such as "acme.io/foo")')
    elif (msg := dns1123_subdomain_error(ctl.split("/", 1)[0])) is not None:
        errs.invalid("spec.controller", ctl.split("/", 1)[0], msg)
    if update and old and ((old.get("spec") or {}).get("controller") != ctl):
        errs.invalid("spec.controller", ctl, "field is immutable")
    params = spec.get("parameters")
    if isinstance(params, dict):
        if not params.get("kind"):
            errs.required("spec.parameters.kind", "")
        if not params.get("name"):
            errs.required("spec.parameters.name", "")
        scope = params.get("scope")
        if scope is not None and scope not in ("Cluster", "Namespace"):
            errs.not_supported("spec.parameters.scope", scope, ("Cluster", "Namespace"))
        if scope == "Namespace" and not params.get("namespace"):
            errs.required("spec.parameters.namespace", "`parameters.scope` is set to 'Namespace'")
        if scope in (None, "Cluster") and params.get("namespace"):
            errs.add("FieldValueForbidden", "spec.parameters.namespace",
                     "Forbidden: `parameters.scope` is set to 'Cluster'")
