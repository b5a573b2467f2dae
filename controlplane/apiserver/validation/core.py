"""Validation rules of the core/v1 kinds (``pkg/apis/core/validation`` of Kubernetes 1.32):
Service, ConfigMap, Secret, Pod (the pod spec itself in ``pods.py``), ReplicationController,
Namespace, Lease (Events: ``event.py``).
Each rule appends Kubernetes' field errors to an ``Errors``; ``rules.py`` maps kinds to them.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from typing import Any

from controlplane.apiserver.meta.names import (
    Errors, dns1123_subdomain_error, qualified_name_error, validate_labels,
)
from controlplane.apiserver.validation import pods
from controlplane.apiserver.validation.podtemplate import go_map, immutable, nonneg, spec_of

Obj = dict[str, Any]

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


_SVC_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_TRAFFIC_POLICIES = ("Cluster", "Local")
MAX_AFFINITY_SECONDS = 86400  # core.MaxClientIPServiceAffinitySeconds
KUBELET_PORT = 10250
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def externally_accessible(spec: Obj) -> bool:
    """``service.ExternallyAccessible``: NodePort and LoadBalancer, or a ClusterIP with externalIPs."""
    stype = spec.get("type", "ClusterIP")
    return stype in ("NodePort", "LoadBalancer") or (stype == "ClusterIP" and bool(spec.get("externalIPs")))


def go_service_port(protocol: Any, port: Any) -> str:
    """Go's ``%#v`` of the ``core.ServicePort`` key ValidateService reports a duplicate port with."""
    return (f'core.ServicePort{{Name:"", Protocol:"{protocol}", AppProtocol:(*string)(nil), Port:{port}, '
            'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')


def non_special_ip(errs: Errors, path: str, value: Any) -> None:
    """``IsValidIP`` then ``ValidateNonSpecialIP`` (externalIPs)."""
    try:
        ip = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        ip = None
    if ip is None:
        errs.invalid(path, value, IP_MSG)
        return
    if ip.is_unspecified:
        errs.invalid(path, value, f"may not be unspecified ({value})")
    if ip.is_loopback:
        errs.invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if ip.is_link_local:
        errs.invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    if ip in ipaddress.ip_network("224.0.0.0/24") or (ip.version == 6 and int(ip) >> 112 == 0xFF02):
        errs.invalid(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")


def _service_port(errs: Errors, p: Obj, path: str, require_name: bool, names: set[str]) -> None:
    """``validateServicePort``."""
    pname = p.get("name")
    if require_name and not pname:
        errs.required(f"{path}.name", "")
    elif pname:
        pods.unique_label(errs, f"{path}.name", pname, names)
    pods.port_number(errs, f"{path}.port", p.get("port"), required=True)
    tp = p.get("targetPort")
    if isinstance(tp, int):
        pods.port_number(errs, f"{path}.targetPort", tp)
    elif isinstance(tp, str) and tp and not pods.iana_svc_name_ok(tp):
        errs.invalid(f"{path}.targetPort", tp, pods.IANA_MSG)
    pods.protocol(errs, f"{path}.protocol", p.get("protocol"))
    ap = p.get("appProtocol")
    if isinstance(ap, str):
        msg = qualified_name_error(ap)
        if msg:
            errs.invalid(f"{path}.appProtocol", ap, msg)


def service(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    """``ValidateService`` (and the update's clusterIP rule) of Kubernetes 1.32, messages included."""
    spec = spec_of(obj)
    stype = spec.get("type", "ClusterIP")
    if update:  # ValidateServiceUpdate: the update's rules come before ValidateService's
        _cluster_ips_update(spec, spec_of(old), errs)
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    headless = spec.get("clusterIP") == "None"
    if not ports and stype != "ExternalName" and not headless:
        errs.required("spec.ports", "")
    if stype in ("LoadBalancer", "NodePort") and headless:
        errs.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {stype} services")
    if stype == "LoadBalancer":
        for i, p in enumerate(ports):
            if p.get("port") == KUBELET_PORT:
                errs.invalid(f"spec.ports[{i}]", KUBELET_PORT,
                             f"may not expose port {KUBELET_PORT} externally since it is used by kubelet")
    if stype == "ExternalName":
        if spec.get("clusterIP") or spec.get("clusterIPs"):
            errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
        if spec.get("ipFamilies"):
            errs.forbidden("spec.ipFamilies", "may not be set for ExternalName services")
        if spec.get("ipFamilyPolicy") is not None:
            errs.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services")
        cname = (spec.get("externalName") or "").removesuffix(".") if isinstance(spec.get("externalName"), str) else ""
        if cname:
            msg = dns1123_subdomain_error(cname)
            if msg:
                errs.invalid("spec.externalName", cname, msg)
        else:
            errs.required("spec.externalName", "")
    names: set[str] = set()
    for i, p in enumerate(ports):
        _service_port(errs, p, f"spec.ports[{i}]", len(ports) > 1, names)
    validate_labels(spec.get("selector"), "spec.selector", errs)
    sa = spec.get("sessionAffinity")  # (Required in Kubernetes too, but the defaults always set it)
    if sa and sa not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", sa, ("ClientIP", "None"))
    sac = spec.get("sessionAffinityConfig")
    if sa == "ClientIP":
        when = "when session affinity type is ClientIP"
        if not isinstance(sac, dict):
            errs.required("spec.sessionAffinityConfig", when)
        elif not isinstance(sac.get("clientIP"), dict):
            errs.required("spec.sessionAffinityConfig.clientIP", when)
        elif sac["clientIP"].get("timeoutSeconds") is None:
            errs.required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", when)
        else:
            t = sac["clientIP"]["timeoutSeconds"]
            if isinstance(t, int) and not 0 < t <= MAX_AFFINITY_SECONDS:
                errs.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t,
                             f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}")
    elif sa == "None" and sac is not None:
        errs.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
    for i, ip in enumerate(spec.get("externalIPs") or []):
        non_special_ip(errs, f"spec.externalIPs[{i}]", ip)
    if stype not in _SVC_TYPES:
        errs.not_supported("spec.type", stype, _SVC_TYPES)
    if stype == "ClusterIP":
        for i, p in enumerate(ports):
            if p.get("nodePort"):
                errs.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
    seen_node_ports: set[tuple[Any, Any]] = set()
    for i, p in enumerate(ports):
        if not p.get("nodePort"):
            continue
        key = (p.get("protocol"), p.get("nodePort"))
        if key in seen_node_ports:
            errs.duplicate(f"spec.ports[{i}].nodePort", p.get("nodePort"))
        seen_node_ports.add(key)
    seen_ports: set[tuple[Any, Any]] = set()
    for i, p in enumerate(ports):
        key = (p.get("protocol"), p.get("port"))
        if key in seen_ports:
            errs.add("FieldValueDuplicate", f"spec.ports[{i}]", f"Duplicate value: {go_service_port(*key)}")
        seen_ports.add(key)
    ranges = spec.get("loadBalancerSourceRanges") or []
    if ranges:
        if stype != "LoadBalancer":
            errs.forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'")
        for i, r in enumerate(ranges):
            if not _is_cidr(r.strip() if isinstance(r, str) else r):
                errs.invalid(f"spec.LoadBalancerSourceRanges[{i}]", r.strip() if isinstance(r, str) else r, CIDR_MSG)
    _traffic_policies(spec, errs)
    lbc = spec.get("loadBalancerClass")
    if lbc is not None:
        if stype != "LoadBalancer":
            errs.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")
        else:
            msg = qualified_name_error(lbc)
            if msg:
                errs.invalid("spec.loadBalancerClass", lbc, msg)
    if update:
        old_spec = spec_of(old)
        if old_spec.get("type") == "LoadBalancer" and stype == "LoadBalancer" \
                and old_spec.get("loadBalancerClass") != lbc:
            errs.invalid("spec.loadBalancerClass", lbc, "may not change once set")


def _cluster_ips(spec: Obj) -> list[Any]:
    """The cluster IPs as ``normalizeClusterIPs`` leaves them: a changed ``clusterIP`` wins."""
    ips = spec.get("clusterIPs") if isinstance(spec.get("clusterIPs"), list) else []
    ip = spec.get("clusterIP")
    return [ip] if ip and ips[:1] != [ip] else ips


def _cluster_ips_update(spec: Obj, old_spec: Obj, errs: Errors) -> None:
    """``validateUpgradeDowngradeClusterIPs`` (single-stack): the cluster IPs never change, to
    or from ExternalName aside. Omitted ones are kept by the allocator (``patchAllocatedValues``)."""
    if "ExternalName" in (spec.get("type", "ClusterIP"), old_spec.get("type", "ClusterIP")):
        return
    new, old = _cluster_ips(spec), _cluster_ips(old_spec)
    if not new or (new[:1] == ["None"] and old[:1] == ["None"]):
        return
    shown = "[]string{" + ", ".join(f'"{ip}"' for ip in new) + "}"
    for i, ip in enumerate(old[:len(new)] if len(old) >= len(new) else old[:1]):
        if ip != new[i]:
            errs.add("FieldValueInvalid", f"spec.clusterIPs[{i}]", f"Invalid value: {shown}: may not change once set")


def _is_cidr(value: Any) -> bool:
    if not isinstance(value, str) or "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _traffic_policies(spec: Obj, errs: Errors) -> None:
    """``validateServiceExternalTrafficPolicy`` and ``validateServiceInternalTrafficFieldsValue``."""
    etp = spec.get("externalTrafficPolicy")  # (the Required cases of both are filled by the defaults)
    if not externally_accessible(spec):
        if etp:
            errs.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
    elif etp and etp not in _TRAFFIC_POLICIES:
        errs.not_supported("spec.externalTrafficPolicy", etp, _TRAFFIC_POLICIES)
    hc = spec.get("healthCheckNodePort")
    if hc and not (spec.get("type") == "LoadBalancer" and etp == "Local"):
        errs.invalid("spec.healthCheckNodePort", hc,
                     "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")
    itp = spec.get("internalTrafficPolicy")
    if itp is not None and itp not in _TRAFFIC_POLICIES:
        errs.not_supported("spec.internalTrafficPolicy", itp, _TRAFFIC_POLICIES)


def config_key_errors(k: str) -> list[str]:
    """``IsConfigMapKey``: length, characters, and no ``.``/``..``/``..x`` (they would clash
    with the volume's ``..data`` layout)."""
    out = []
    if len(k) > 253:
        out.append("must be no more than 253 characters")
    if not _CONFIG_KEY.fullmatch(k):
        out.append("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                   "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
    if k == ".":
        out.append("must not be '.'")
    elif k == "..":
        out.append("must not be '..'")
    elif k.startswith(".."):
        out.append("must not start with '..'")
    return out


def _config_keys(obj: Obj, errs: Errors, fields: tuple[str, ...]) -> None:
    seen: set[str] = set()
    for f in fields:
        data = obj.get(f)
        if not isinstance(data, dict):
            continue
        for k in data:
            for msg in config_key_errors(k):
                errs.invalid(f"{f}[{k}]", k, msg)
            if k in seen:
                errs.invalid(f"{f}[{k}]", k, "duplicate of key present in data")
            seen.add(k)


def _immutable_data(obj: Obj, errs: Errors, update: bool, old: Obj, fields: tuple[str, ...]) -> None:
    if not update or not old.get("immutable"):
        return
    for f in fields:
        if (obj.get(f) or {}) != (old.get(f) or {}):
            errs.forbidden(f, "field is immutable when `immutable` is set")
    if not obj.get("immutable"):
        errs.forbidden("immutable", "field is immutable when `immutable` is set")


def _json_size_bound(data: Any) -> int | None:
    """An upper bound of ``len(json.dumps(data))`` for a map of strings (None otherwise): with
    ``ensure_ascii`` a character takes at most 12 characters (a surrogate pair of ``\\uXXXX``)."""
    if type(data) is not dict:
        return None
    total = 2
    for k, v in data.items():
        if type(k) is not str or type(v) is not str:
            return None
        total += 12 * (len(k) + len(v)) + 8  # quotes, ": " and ", "
    return total


def _json_size_over(data: Any, binary: Any, limit: int) -> bool:
    """``len(json.dumps(data)) + len(json.dumps(binary)) > limit``, without encoding small maps."""
    a, b = _json_size_bound(data), _json_size_bound(binary)
    if a is not None and b is not None and a + b <= limit:
        return False
    return len(json.dumps(data)) + len(json.dumps(binary)) > limit


def configmap(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    _config_keys(obj, errs, ("data", "binaryData"))
    if _json_size_over(obj.get("data") or {}, obj.get("binaryData") or {}, 1024 * 1024):
        errs.add("FieldValueTooLong", "", "Too long: must have at most 1048576 bytes")
    _immutable_data(obj, errs, update, old, ("data", "binaryData"))


def secret(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    _config_keys(obj, errs, ("data", "stringData"))
    total = sum(len(v or "") * 3 // 4 for v in (obj.get("data") or {}).values())
    if total > 1024 * 1024:
        errs.add("FieldValueTooLong", "data", "Too long: must have at most 1048576 bytes")
    if update:
        immutable(errs, "type", obj.get("type"), old.get("type"))
    _immutable_data(obj, errs, update, old, ("data",))
    _secret_type(obj, errs)


def _secret_value(obj: Obj, key: str) -> bytes | None:
    """A key's bytes (``data`` is base64; ``stringData`` not yet merged counts too)."""
    sd = obj.get("stringData") or {}
    if isinstance(sd, dict) and isinstance(sd.get(key), str):
        return sd[key].encode()
    v = (obj.get("data") or {}).get(key)
    if not isinstance(v, str):
        return None
    try:
        return base64.b64decode(v)
    except ValueError:
        return b""


def go_json_object_error(raw: bytes) -> str | None:
    """What Go's ``json.Unmarshal`` into a ``map[string]interface{}`` says of ``raw`` (the
    common cases: syntax errors name the offending character, a non-object its JSON type)."""
    try:
        v = json.loads(raw)
    except UnicodeDecodeError:
        return "invalid character looking for beginning of value"
    except json.JSONDecodeError as e:
        if e.pos >= len(e.doc):
            return "unexpected end of JSON input"
        c = e.doc[e.pos]
        for lit in ("null", "true", "false"):
            if c == lit[0] and e.msg == "Expecting value":
                rest = e.doc[e.pos:e.pos + len(lit)]
                for i, (got, want) in enumerate(zip(rest, lit)):
                    if got != want:
                        return f"invalid character {got!r} in literal {lit} (expecting {want!r})"
                if len(rest) < len(lit):
                    return "unexpected end of JSON input"
        return f"invalid character {c!r} looking for beginning of value"
    if isinstance(v, dict):
        return None
    kind = ("bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float))
            else "string" if isinstance(v, str) else "array" if isinstance(v, list) else None)
    return None if kind is None else f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"


def _secret_type(obj: Obj, errs: Errors) -> None:
    """``ValidateSecret``'s per-type rules: the keys each built-in type needs."""
    stype = obj.get("type")
    has = lambda k: _secret_value(obj, k) is not None  # noqa: E731
    if stype == "kubernetes.io/service-account-token":
        if not ((obj.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/service-account.name"):
            errs.required("metadata.annotations[kubernetes.io/service-account.name]", "")
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        raw = _secret_value(obj, key)
        if raw is None:
            errs.required(f"data[{key}]", "")
        elif (msg := go_json_object_error(raw)) is not None:
            errs.invalid(f"data[{key}]", "<secret contents redacted>", msg)
    elif stype == "kubernetes.io/basic-auth":
        if not has("username") and not has("password"):  # either may be empty, one must be there
            errs.required("data[username]", "")
            errs.required("data[password]", "")
    elif stype == "kubernetes.io/ssh-auth":
        if not _secret_value(obj, "ssh-privatekey"):
            errs.required("data[ssh-privatekey]", "")
    elif stype == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if not has(k):
                errs.required(f"data[{k}]", "")


def pod(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.containers", "")
        return
    pods.validate_pod_spec(spec, "spec", errs)
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        errs.not_supported("spec.restartPolicy", rp, ("Always", "OnFailure", "Never"))
    if update:
        pods.validate_pod_update(spec, spec_of(old), errs)
    elif spec.get("ephemeralContainers"):  # only through pods/ephemeralcontainers (ValidatePodCreate)
        errs.forbidden("spec.ephemeralContainers", "cannot be set on create")


MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"


def pod_ephemeral_containers(obj: Obj, errs: Errors, old: Obj) -> None:
    """``ValidatePodEphemeralContainersUpdate``: an update through ``pods/ephemeralcontainers``
    (the strategy already kept everything of the old pod but ``spec.ephemeralContainers``): the
    pod spec's rules, then ephemeral containers may only be added. Static pods refuse them."""
    if MIRROR_POD_ANNOTATION in ((old.get("metadata") or {}).get("annotations") or {}):
        errs.forbidden("", "static pods do not support ephemeral containers")
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.containers", "")
        return
    pods.validate_pod_spec(spec, "spec", errs)
    pods.validate_ephemeral_containers_update(spec, spec_of(old), errs)


def namespace(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    for i, f in enumerate(spec_of(obj).get("finalizers") or []):
        msg = qualified_name_error(f) if isinstance(f, str) else "must be a string"
        if msg:
            errs.invalid(f"spec.finalizers[{i}]", f, msg)


def lease(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    for k in ("leaseDurationSeconds", "leaseTransitions"):
        v = spec.get(k)
        if isinstance(v, int) and (v < 0 or (k == "leaseDurationSeconds" and v == 0)):
            errs.invalid(f"spec.{k}", v, "must be greater than 0" if k == "leaseDurationSeconds"
                         else "must be greater than or equal to 0")


def replication_controller(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    """``ValidateReplicationController``: an equality-based selector that is not empty and
    matches the template's labels, an ``Always`` restart policy, no activeDeadlineSeconds."""
    spec = spec_of(obj)
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds")
    selector = spec.get("selector")
    if not selector:
        errs.required("spec.selector", "")
    elif isinstance(selector, dict):
        validate_labels(selector, "spec.selector", errs)
    nonneg(errs, spec, "replicas", "spec.replicas")
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.required("spec.template", "")
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    if isinstance(selector, dict) and selector and any(labels.get(k) != v for k, v in selector.items()):
        errs.invalid("spec.template.metadata.labels", go_map(labels), "`selector` does not match template `labels`")
    validate_labels(labels, "spec.template.metadata.labels", errs)
    tspec = template.get("spec")
    if not isinstance(tspec, dict):
        errs.required("spec.template.spec.containers", "")
        return
    pods.validate_pod_spec(tspec, "spec.template.spec", errs)
    rp = tspec.get("restartPolicy")
    if rp != "Always":
        errs.not_supported("spec.template.spec.restartPolicy", rp, ("Always",))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.forbidden("spec.template.spec.activeDeadlineSeconds",
                       "activeDeadlineSeconds in ReplicationController is not Supported")
