"""Pod spec validation (``ValidatePodSpec`` / ``ValidatePodUpdate`` subset of Kubernetes 1.32):
containers (names, images, ports, env, resources, probes, mounts), init containers and sidecars
(``restartPolicy: Always``: ``validateInitContainers``), ephemeral containers
(``validateEphemeralContainers``, ``ValidatePodEphemeralContainersUpdate``), volumes, policies,
topologySpreadConstraints (``validateTopologySpreadConstraints``),
and the pod-update immutability rule. Used for pods and for every pod template (deployments, jobs, …).
Neighbours: ``core.py`` and ``podtemplate.py`` (callers), ``meta/names.py``.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from controlplane.apiserver.meta.names import Errors, dns1123_label_error, dns1123_subdomain_error, qualified_name_error
from controlplane.apiserver.validation import security_context
from controlplane.apiserver.validation.volumes import (
    ENV_FIELD_PATHS, object_field_selector, resource_field_selector, validate_volume_source as volume_source,
    zero_divisors,
)
from controlplane.machinery.quantity import parse_quantity
from controlplane.machinery.selectors import LabelSelector

Obj = dict[str, Any]

IANA_MSG = ("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
_IANA_RE = re.compile(r"^[-a-z0-9]+$")
_ENV_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_PULL = ("Always", "IfNotPresent", "Never")
_DNS = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_MSG_POLICY = ("FallbackToLogsOnError", "File")
_TOLERATION_OPS = ("Equal", "Exists")
_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
_SCHEDULE_ACTIONS = ("DoNotSchedule", "ScheduleAnyway")
_INCLUSION_POLICIES = ("Honor", "Ignore")
_NOT_POSITIVE = "must be greater than zero"
_POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)")


# EphemeralContainerCommon's fields in Go's order, and whether an ephemeral container may set
# them (Kubernetes' ``allowedEphemeralContainerFields``): nothing that makes it part of the
# workload (ports, resources, probes, lifecycle, restart and resize policies).
_EPHEMERAL_FIELDS = (
    ("name", True), ("image", True), ("command", True), ("args", True), ("workingDir", True),
    ("ports", False), ("envFrom", True), ("env", True), ("resources", False), ("resizePolicy", False),
    ("restartPolicy", False), ("volumeMounts", True), ("volumeDevices", True), ("livenessProbe", False),
    ("readinessProbe", False), ("startupProbe", False), ("lifecycle", False),
    ("terminationMessagePath", True), ("terminationMessagePolicy", True), ("imagePullPolicy", True),
    ("securityContext", True), ("stdin", True), ("stdinOnce", True), ("tty", True))
_EPHEMERAL_MSG = "cannot be set for an Ephemeral Container"


def iana_svc_name_ok(name: str) -> bool:
    return (0 < len(name) <= 15 and bool(_IANA_RE.match(name)) and "--" not in name
            and not name.startswith("-") and not name.endswith("-")
            and any(c.isalpha() for c in name))


def port_number(errs: Errors, path: str, value: Any, *, required: bool = False) -> None:
    if value is None:
        if required:
            errs.required(path, "")
        return
    if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 65535:
        errs.invalid(path, value, "must be between 1 and 65535, inclusive")


def protocol(errs: Errors, path: str, value: Any) -> None:
    if value is not None and value not in _PROTOCOLS:
        errs.not_supported(path, value, _PROTOCOLS)


def resources(errs: Errors, path: str, res: Any) -> None:
    """``ValidateResourceRequirements``: quantities, and requests within limits."""
    if not isinstance(res, dict):
        return
    parsed: dict[str, dict[str, Any]] = {}
    for kind in ("limits", "requests"):
        for rname, q in (res.get(kind) or {}).items():
            try:
                v = parse_quantity(q)
            except (ValueError, TypeError, ZeroDivisionError):
                errs.invalid(f"{path}.{kind}[{rname}]", q,
                             "quantities must match the regular expression "
                             "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
                continue
            if v.numerator < 0:  # Fractions keep the sign in the numerator
                errs.invalid(f"{path}.{kind}[{rname}]", q, "must be greater than or equal to 0")
            parsed.setdefault(kind, {})[rname] = v
    limits = parsed.get("limits")
    if not limits:
        return
    for rname, req in parsed.get("requests", {}).items():
        lim = limits.get(rname)
        if lim is not None and req.numerator * lim.denominator > lim.numerator * req.denominator:
            limit_raw = res["limits"][rname]
            errs.invalid(f"{path}.requests", res["requests"][rname],
                         f"must be less than or equal to {rname} limit of {limit_raw}")


def unique_label(errs: Errors, path: str, name: Any, names: set[Any]) -> None:
    """A DNS-1123 label that must not repeat among ``names`` (container names, Service port
    names): kube-apiserver's Invalid and Duplicate causes; ``names`` collects it."""
    msg = dns1123_label_error(name)
    if msg:
        errs.invalid(path, name, msg)
    if name in names:
        errs.duplicate(path, name)
    names.add(name)


def _container(errs: Errors, path: str, c: Any, names: set[str], volumes: set[str],
               is_init: bool = False) -> None:
    # Field paths are built only when an error is reported (this runs for every container).
    if not isinstance(c, dict):
        errs.required(path, "")
        return
    get = c.get
    name = get("name")
    if not name:
        errs.required(f"{path}.name", "")
    else:
        unique_label(errs, f"{path}.name", name, names)
    image = get("image")
    if not image or (isinstance(image, str) and not image.strip()):
        errs.required(f"{path}.image", "")
    v = get("imagePullPolicy")
    if v is not None and v not in _PULL:
        errs.not_supported(f"{path}.imagePullPolicy", v, _PULL)
    v = get("terminationMessagePolicy")
    if v is not None and v not in _MSG_POLICY:
        errs.not_supported(f"{path}.terminationMessagePolicy", v, _MSG_POLICY)
    ports = get("ports")
    if ports:
        _ports(errs, path, ports)
    env = get("env")
    if env:
        _env(errs, path, env)
    res = get("resources")
    if res:
        resources(errs, f"{path}.resources", res)
    mounts = get("volumeMounts")
    if mounts:
        for i, m in enumerate(mounts):
            if not isinstance(m, dict):
                continue
            if not m.get("name"):
                errs.required(f"{path}.volumeMounts[{i}].name", "")
            elif m["name"] not in volumes:
                errs.not_found(f"{path}.volumeMounts[{i}].name", m["name"])
            if not m.get("mountPath"):
                errs.required(f"{path}.volumeMounts[{i}].mountPath", "")
            if m.get("subPath") or m.get("subPathExpr"):
                security_context.mount_sub_paths(errs, f"{path}.volumeMounts[{i}]", m)
    sc = get("securityContext")
    if sc:
        security_context.container_security_context(errs, f"{path}.securityContext", sc)
    if is_init:
        _init_container(errs, path, c)


_SIDECAR_ONLY = ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe")


def _init_container(errs: Errors, path: str, c: Obj) -> None:
    """``validateInitContainers``' own rules: ``restartPolicy`` is only ``Always`` (a sidecar,
    ``validateInitContainerRestartPolicy``); lifecycle hooks and probes only on sidecars."""
    policy = c.get("restartPolicy")
    if policy is not None and policy != "Always":
        errs.not_supported(f"{path}.restartPolicy", policy, ("Always",))
    if policy == "Always":
        return
    for f in _SIDECAR_ONLY:
        if c.get(f) is not None:
            errs.forbidden(f"{path}.{f}", "may not be set for init containers without restartPolicy=Always")


def _ports(errs: Errors, path: str, ports: list[Any]) -> None:
    port_names: set[str] = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        cp = p.get("containerPort")
        if cp is None or (isinstance(cp, int) and not isinstance(cp, bool) and not 1 <= cp <= 65535):
            port_number(errs, f"{path}.ports[{i}].containerPort", cp, required=True)
        hp = p.get("hostPort") or None
        if hp is not None:
            port_number(errs, f"{path}.ports[{i}].hostPort", hp)
        proto = p.get("protocol")
        if proto is not None and proto not in _PROTOCOLS:
            errs.not_supported(f"{path}.ports[{i}].protocol", proto, _PROTOCOLS)
        pname = p.get("name")
        if pname:
            if not iana_svc_name_ok(pname):
                errs.invalid(f"{path}.ports[{i}].name", pname, IANA_MSG if len(pname) <= 15
                             else "must be no more than 15 characters")
            if pname in port_names:
                errs.duplicate(f"{path}.ports[{i}].name", pname)
            port_names.add(pname)


def _env(errs: Errors, path: str, env: list[Any]) -> None:
    for i, e in enumerate(env):
        if not isinstance(e, dict):
            continue
        en = e.get("name")
        if not en:
            errs.required(f"{path}.env[{i}].name", "")
        elif not _ENV_RE.match(en):
            errs.invalid(f"{path}.env[{i}].name", en,
                         "a valid environment variable name must consist of alphabetic characters, "
                         "digits, '_', '-', or '.', and must not start with a digit (e.g. "
                         "'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
                         "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")
        if isinstance(e.get("valueFrom"), dict):
            _value_from(errs, f"{path}.env[{i}].valueFrom", e["valueFrom"], bool(e.get("value")))


_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def _value_from(errs: Errors, path: str, vf: dict[str, Any], has_value: bool) -> None:
    """``validateEnvVarValueFrom``: exactly one source, each checked."""
    n = 0
    if isinstance(vf.get("fieldRef"), dict):
        n += 1
        object_field_selector(errs, f"{path}.fieldRef", vf["fieldRef"], ENV_FIELD_PATHS)
    if isinstance(vf.get("resourceFieldRef"), dict):
        n += 1
        resource_field_selector(errs, f"{path}.resourceFieldRef", vf["resourceFieldRef"], volume=False)
    for kind in ("configMapKeyRef", "secretKeyRef"):
        ref = vf.get(kind)
        if not isinstance(ref, dict):
            continue
        n += 1
        if not ref.get("name"):
            errs.required(f"{path}.{kind}.name", "")
        key = ref.get("key") or ""
        if not key:
            errs.required(f"{path}.{kind}.key", "")
        elif not _CONFIG_KEY.fullmatch(key) or len(key) > 253:
            errs.invalid(f"{path}.{kind}.key", key, CONFIG_KEY_MSG)
    if n == 0:
        errs.invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")
    elif has_value:
        errs.invalid(path, "", "may not be specified when `value` is not empty")
    elif n > 1:
        errs.invalid(path, "", "may not have more than one field specified at a time")


def tolerations(errs: Errors, path: str, items: list[Any]) -> None:
    """``ValidateTolerations``: operators, the value of ``Exists``, effects."""
    for i, t in enumerate(items):
        if not isinstance(t, dict):
            continue
        op = t.get("operator", "Equal")
        if op is not None and op not in _TOLERATION_OPS:
            errs.not_supported(f"{path}[{i}].operator", op, _TOLERATION_OPS)
        if op == "Exists" and t.get("value"):
            errs.invalid(f"{path}[{i}].operator", t["value"], "value must be empty when `operator` is 'Exists'")
        effect = t.get("effect") or None
        if effect is not None and effect not in _EFFECTS:
            errs.not_supported(f"{path}[{i}].effect", effect, _EFFECTS)


def validate_pod_spec(spec: Obj, path: str, errs: Errors) -> None:
    volumes: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or []):
        if not isinstance(v, dict):
            continue
        volume_source(errs, f"{path}.volumes[{i}]", v)  # before the name, as upstream's validateVolumes
        vn = v.get("name")
        if not vn:
            errs.required(f"{path}.volumes[{i}].name", "")
            continue
        msg = dns1123_label_error(vn)
        if msg:
            errs.invalid(f"{path}.volumes[{i}].name", vn, msg)
        if vn in volumes:
            errs.duplicate(f"{path}.volumes[{i}].name", vn)
        volumes.add(vn)
    containers = spec.get("containers")
    if not containers:
        errs.required(f"{path}.containers", "")
    names: set[str] = set()
    init = spec.get("initContainers")
    if init:
        for i, c in enumerate(init):
            _container(errs, f"{path}.initContainers[{i}]", c, names, volumes, is_init=True)
    if containers:
        for i, c in enumerate(containers):
            _container(errs, f"{path}.containers[{i}]", c, names, volumes)
            if isinstance(c, dict) and c.get("restartPolicy") is not None:
                errs.forbidden(f"{path}.containers[{i}].restartPolicy", "may not be set for non-init containers")
    ephemeral = spec.get("ephemeralContainers")
    if ephemeral:
        _ephemeral_containers(errs, f"{path}.ephemeralContainers", ephemeral, names, volumes)
    if spec.get("securityContext"):
        security_context.pod_security_context(errs, f"{path}.securityContext", spec["securityContext"])
    dns = spec.get("dnsPolicy")
    if dns is not None and dns not in _DNS:
        errs.not_supported(f"{path}.dnsPolicy", dns, _DNS)
    v = spec.get("terminationGracePeriodSeconds")
    if isinstance(v, int) and v < 0:
        errs.invalid(f"{path}.terminationGracePeriodSeconds", v, "must be greater than or equal to 0")
    v = spec.get("activeDeadlineSeconds")
    if isinstance(v, int) and v <= 0:
        errs.invalid(f"{path}.activeDeadlineSeconds", v, "must be between 1 and 2147483647, inclusive")
    if spec.get("nodeName"):
        msg = dns1123_subdomain_error(spec["nodeName"])
        if msg:
            errs.invalid(f"{path}.nodeName", spec["nodeName"], msg)
    tolerations(errs, f"{path}.tolerations", spec.get("tolerations") or [])
    if spec.get("runtimeClassName") is not None:
        msg = dns1123_subdomain_error(str(spec["runtimeClassName"]))
        if msg:
            errs.invalid(f"{path}.runtimeClassName", spec["runtimeClassName"], msg)
    if isinstance(spec.get("overhead"), dict):
        resources(errs, f"{path}.overhead", {"limits": spec["overhead"]})
    tsc = spec.get("topologySpreadConstraints")
    if isinstance(tsc, list):
        _topology_spread(errs, f"{path}.topologySpreadConstraints", tsc)


def _topology_spread(errs: Errors, path: str, constraints: list[Any]) -> None:
    """Kubernetes' ``validateTopologySpreadConstraints``, its checks and messages in its order."""
    for i, c in enumerate(constraints):
        if not isinstance(c, dict):
            continue
        p = f"{path}[{i}]"
        skew = c.get("maxSkew") or 0
        if isinstance(skew, int) and skew <= 0:
            errs.invalid(f"{p}.maxSkew", skew, _NOT_POSITIVE)
        key = c.get("topologyKey") or ""
        if not key:
            errs.required(f"{p}.topologyKey", "can not be empty")
        when = c.get("whenUnsatisfiable") or ""
        if when not in _SCHEDULE_ACTIONS:
            errs.not_supported(f"{p}.whenUnsatisfiable", when, _SCHEDULE_ACTIONS)
        for rest in constraints[i + 1:]:  # {topologyKey, whenUnsatisfiable} names one kind of constraint
            if isinstance(rest, dict) and (rest.get("topologyKey") or "") == key and (
                    rest.get("whenUnsatisfiable") or "") == when:
                errs.duplicate(f"{p}.{{topologyKey, whenUnsatisfiable}}", f"{{{key}, {when}}}")
                break
        md = c.get("minDomains")
        if md is not None:
            if isinstance(md, int) and md <= 0:
                errs.invalid(f"{p}.minDomains", md, _NOT_POSITIVE)
            if when != "DoNotSchedule":
                errs.invalid(f"{p}.minDomains", md, f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {when}")
        for pol in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            v = c.get(pol)
            if v is not None and v not in _INCLUSION_POLICIES:
                errs.not_supported(f"{p}.{pol}", v, _INCLUSION_POLICIES)
        sel = c.get("labelSelector")
        keys = c.get("matchLabelKeys")
        if keys:
            in_selector: set[str] = set()
            if isinstance(sel, dict):
                in_selector.update((sel.get("matchLabels") or {}).keys())
                in_selector.update(e.get("key") for e in sel.get("matchExpressions") or [] if isinstance(e, dict))
            else:
                errs.forbidden(f"{p}.matchLabelKeys", "must not be specified when labelSelector is not set")
            for j, k in enumerate(keys):
                msg = qualified_name_error(k)
                if msg:
                    errs.invalid(f"{p}.matchLabelKeys[{j}]", k, msg)
                if k in in_selector:
                    errs.invalid(f"{p}.matchLabelKeys[{j}]", k, "exists in both matchLabelKeys and labelSelector")
        if sel is not None:
            try:
                LabelSelector.from_dict(sel)
            except ValueError as e:
                errs.invalid(f"{p}.labelSelector", sel, str(e))


def _unset(value: Any) -> bool:
    """Go's zero value as JSON shows it (absent, null, false, "", 0, empty list or object)."""
    return value is None or value is False or value == "" or value == 0 or value == [] or value == {}


def _ephemeral_containers(errs: Errors, path: str, containers: list[Any], names: set[str],
                          volumes: set[str]) -> None:
    """``validateEphemeralContainers``: a container's common rules, a name unique across all
    containers of the pod, a ``targetContainerName`` naming a (non-ephemeral) container, only
    the allowed fields, no ``subPath``/``subPathExpr`` mounts. ``names`` holds the names of the
    containers and init containers."""
    others = set(names)
    seen = set(names)
    for i, ec in enumerate(containers):
        ipath = f"{path}[{i}]"
        _container(errs, ipath, ec, set(), volumes)
        if not isinstance(ec, dict):
            continue
        name = ec.get("name")
        if name:
            if name in seen:
                errs.duplicate(f"{ipath}.name", name)
            else:
                seen.add(name)
        target = ec.get("targetContainerName")
        if target and target not in others:
            errs.not_found(f"{ipath}.targetContainerName", target)
        for field, allowed in _EPHEMERAL_FIELDS:
            if not allowed and not _unset(ec.get(field)):
                errs.forbidden(f"{ipath}.{field}", _EPHEMERAL_MSG)
        for j, m in enumerate(ec.get("volumeMounts") or []):
            if not isinstance(m, dict):
                continue
            for k in ("subPath", "subPathExpr"):
                if m.get(k):
                    errs.forbidden(f"{ipath}.volumeMounts[{j}].{k}", _EPHEMERAL_MSG)


def _diff(old: Any, new: Any, path: str = "") -> list[str]:
    """The differing leaves of two JSON values, one ``path: old -> new`` line each (what
    Kubernetes prints with ``cmp.Diff`` after "may not be changed")."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for k in sorted(set(old) | set(new), key=str)
                for line in _diff(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))]
    if old == new:
        return []
    return [f"  {path}: {json.dumps(old)} -> {json.dumps(new)}"]


def validate_ephemeral_containers_update(new: Obj, old: Obj, errs: Errors) -> None:
    """``ValidatePodEphemeralContainersUpdate``, part 2: through ``pods/ephemeralcontainers``
    ephemeral containers may only be added; an existing one may be neither removed nor changed
    (matched by name, as a patch does not keep their order)."""
    by_name = {c.get("name"): c for c in new.get("ephemeralContainers") or [] if isinstance(c, dict)}
    for c in old.get("ephemeralContainers") or []:
        if not isinstance(c, dict):
            continue
        now = by_name.get(c.get("name"))
        if now is None:
            errs.forbidden("spec.ephemeralContainers",
                           f"existing ephemeral containers {json.dumps(c.get('name'))} may not be removed\n")
        elif now != c:
            errs.forbidden("spec.ephemeralContainers",
                           f"existing ephemeral containers {json.dumps(c.get('name'))} may not be changed\n"
                           + "\n".join(_diff(c, now)))


def validate_pod_update(new: Obj, old: Obj, errs: Errors) -> None:
    """Only images, activeDeadlineSeconds, toleration additions, scheduling gates removal (and
    the first binding to a node) may change in a pod spec."""
    a, b = copy.deepcopy(new), copy.deepcopy(old)
    zero_divisors(b)  # a pod stored before divisors were defaulted to "0" is the same pod
    for spec in (a, b):
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                if isinstance(c, dict):
                    c.pop("image", None)
        spec.pop("activeDeadlineSeconds", None)
        spec.pop("tolerations", None)
        spec.pop("schedulingGates", None)
    if not b.get("nodeName"):
        a.pop("nodeName", None)
        b.pop("nodeName", None)
    if a != b:
        errs.forbidden("spec", _POD_UPDATE_MSG)
    def sans_seconds(ts: Any) -> list[Any]:
        return [{k: v for k, v in t.items() if k != "tolerationSeconds"} if isinstance(t, dict) else t
                for t in ts or []]

    old_tol, new_tol = sans_seconds(old.get("tolerations")), sans_seconds(new.get("tolerations"))
    if any(t not in new_tol for t in old_tol):
        errs.forbidden("spec.tolerations", "existing toleration can not be modified except its "
                       "tolerationSeconds")
    old_gates = [g.get("name") for g in old.get("schedulingGates") or [] if isinstance(g, dict)]
    if any(isinstance(g, dict) and g.get("name") not in old_gates for g in new.get("schedulingGates") or []):
        errs.forbidden("spec.schedulingGates", "only deletion is allowed, but found new scheduling gate")
    for key in ("containers", "initContainers"):
        for i, c in enumerate(new.get(key) or []):
            if isinstance(c, dict) and "image" in c and not c["image"]:
                errs.required(f"spec.{key}[{i}].image", "")
