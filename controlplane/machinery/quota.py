"""ResourceQuota accounting (Kubernetes' ``pkg/quota/v1`` evaluators), shared by the apiserver's
ResourceQuota admission plugin and the quota controller: what an object costs (``usage``),
whether a quota's scopes select it (``matches``), which of a quota's resources concern it
(``matching_resources``), the "must specify" constraints on pods, and ResourceList arithmetic
and printing as Kubernetes does (``pretty``: ``pods=1,requests.cpu=500m``).

Costs: pods (``pods``, ``count/pods``, ``requests.*``/``limits.*`` and the bare ``cpu``/
``memory``/``ephemeral-storage`` for requests, extended resources as ``requests.<name>``; the
sum over containers and sidecars, at least each init container with the sidecars before it, plus overhead; finished pods cost
nothing), services (``services``, ``services.nodeports``, ``services.loadbalancers``),
PersistentVolumeClaims (``persistentvolumeclaims``, ``requests.storage``, and per class
``<class>.storageclass.storage.k8s.io/requests.storage`` / ``.../persistentvolumeclaims``), and
one of ``count/<resource>[.<group>]`` for every object (with the legacy names ``configmaps``,
``secrets``, ``replicationcontrollers``, ``resourcequotas``, ``persistentvolumeclaims``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Iterable, Mapping

from controlplane.machinery.podresources import aggregate
from controlplane.machinery.quantity import _split, format_quantity, parse_quantity

Obj = dict[str, Any]
ResourceList = dict[str, Fraction]

LEGACY_COUNTED = {"configmaps", "secrets", "replicationcontrollers", "resourcequotas", "persistentvolumeclaims",
                  "services"}
_COMPUTE = ("cpu", "memory", "ephemeral-storage")
POD_VALIDATION = frozenset({"requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "cpu", "memory"})


def count_name(group: str, resource: str) -> str:
    return f"count/{resource}.{group}" if group else f"count/{resource}"


def _q(v: Any) -> Fraction:
    try:
        return parse_quantity(v)
    except (ValueError, TypeError, ZeroDivisionError):
        return Fraction(0)


def _add(a: ResourceList, k: str, v: Fraction) -> None:
    a[k] = a.get(k, Fraction(0)) + v


def pod_resources(pod: Obj, field: str) -> ResourceList:
    """``resourcehelper.PodRequests``/``PodLimits``: containers and sidecars summed, at least
    each init container next to the sidecars before it (``podresources.aggregate``), plus
    overhead (for limits only where the pod has a limit)."""
    spec = pod.get("spec") or {}
    total: ResourceList = aggregate(spec, field, lambda _k, v: _q(v))
    for k, v in (spec.get("overhead") or {}).items():
        if k in total or field == "requests":
            _add(total, k, _q(v))
    return total


def pod_terminal(pod: Obj) -> bool:
    return ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed")


def pod_usage(pod: Obj) -> ResourceList:
    if pod_terminal(pod):
        return {}
    out: ResourceList = {"pods": Fraction(1), "count/pods": Fraction(1)}
    for k, v in pod_resources(pod, "requests").items():
        if k in _COMPUTE or k.startswith("hugepages-"):
            out[f"requests.{k}"] = v
            if k in _COMPUTE:
                out[k] = v
        elif "/" in k:  # extended resources: only requests are quota'd
            out[f"requests.{k}"] = v
    for k, v in pod_resources(pod, "limits").items():
        if k in _COMPUTE:
            out[f"limits.{k}"] = v
    return out


def service_usage(svc: Obj) -> ResourceList:
    spec = svc.get("spec") or {}
    out: ResourceList = {"services": Fraction(1), "count/services": Fraction(1)}
    stype = spec.get("type") or "ClusterIP"
    if stype == "LoadBalancer":
        out["services.loadbalancers"] = Fraction(1)
    if stype in ("NodePort", "LoadBalancer"):
        out["services.nodeports"] = Fraction(sum(1 for p in spec.get("ports") or [] if isinstance(p, dict)))
    return out


STORAGE_CLASS_INFIX = ".storageclass.storage.k8s.io/"
_PVC_NAMES = ("requests.storage",)


def _is_pvc_name(name: str) -> bool:
    return name in _PVC_NAMES or (STORAGE_CLASS_INFIX in name and
                                   name.endswith(("/requests.storage", "/persistentvolumeclaims")))


def pvc_usage(pvc: Obj) -> ResourceList:
    """Kubernetes' PersistentVolumeClaim evaluator: the count and the storage request, in total
    and per StorageClass."""
    spec = pvc.get("spec") or {}
    storage = _q(((spec.get("resources") or {}).get("requests") or {}).get("storage", 0))
    out: ResourceList = {"persistentvolumeclaims": Fraction(1), "count/persistentvolumeclaims": Fraction(1),
                         "requests.storage": storage}
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    cls = ann.get("volume.beta.kubernetes.io/storage-class") or spec.get("storageClassName") or ""
    if cls:
        out[f"{cls}{STORAGE_CLASS_INFIX}requests.storage"] = storage
        out[f"{cls}{STORAGE_CLASS_INFIX}persistentvolumeclaims"] = Fraction(1)
    return out


def usage(group: str, resource: str, obj: Obj) -> ResourceList:
    """What ``obj`` (of group/resource) costs against a quota."""
    if group == "" and resource == "pods":
        return pod_usage(obj)
    if group == "" and resource == "services":
        return service_usage(obj)
    if group == "" and resource == "persistentvolumeclaims":
        return pvc_usage(obj)
    out: ResourceList = {count_name(group, resource): Fraction(1)}
    if group == "" and resource in LEGACY_COUNTED:
        out[resource] = Fraction(1)
    return out


def matching_resources(group: str, resource: str, names: Iterable[str]) -> list[str]:
    """The quota resource names that the evaluator of group/resource accounts for."""
    out = []
    cn = count_name(group, resource)
    for n in names:
        if n == cn or (group == "" and n == resource and resource in LEGACY_COUNTED):
            out.append(n)
        elif group == "" and resource == "pods" and not _is_pvc_name(n) and (
                n in ("pods",) + _COMPUTE or n.startswith(("requests.", "limits.", "hugepages-"))):
            out.append(n)
        elif group == "" and resource == "persistentvolumeclaims" and _is_pvc_name(n):
            out.append(n)
        elif group == "" and resource == "services" and n in ("services.nodeports", "services.loadbalancers"):
            out.append(n)
    return sorted(out)


def evaluator_for(name: str) -> tuple[str, str] | None:
    """The (group, resource) whose objects a quota resource name counts (None: not countable)."""
    if name.startswith("count/"):
        rest = name[len("count/"):]
        plural, _, group = rest.partition(".")
        return (group, plural) if plural else None
    if _is_pvc_name(name):
        return "", "persistentvolumeclaims"
    if name in ("pods",) + _COMPUTE or name.startswith(("requests.", "limits.", "hugepages-")):
        return "", "pods"
    if name in ("services", "services.nodeports", "services.loadbalancers"):
        return "", "services"
    if name in LEGACY_COUNTED:
        return "", name
    return None


def _qos_best_effort(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            res = (c.get("resources") or {}) if isinstance(c, dict) else {}
            for field in ("requests", "limits"):
                if any(k in ("cpu", "memory") for k in (res.get(field) or {})):
                    return False
    return True


def _scope_matches(scope: str, operator: str, values: list[str], pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] >= 0
    if scope == "NotTerminating":
        return spec.get("activeDeadlineSeconds") is None or spec["activeDeadlineSeconds"] < 0
    if scope == "BestEffort":
        return _qos_best_effort(pod)
    if scope == "NotBestEffort":
        return not _qos_best_effort(pod)
    if scope == "PriorityClass":
        pc = spec.get("priorityClassName")
        if operator == "Exists":
            return bool(pc)
        if operator == "DoesNotExist":
            return not pc
        if operator == "In":
            return pc in values
        if operator == "NotIn":
            return pc not in values
    if scope == "CrossNamespacePodAffinity":
        aff = spec.get("affinity") or {}
        for kind in ("podAffinity", "podAntiAffinity"):
            a = aff.get(kind) or {}
            terms = list(a.get("requiredDuringSchedulingIgnoredDuringExecution") or []) + \
                [t.get("podAffinityTerm") or {} for t in a.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
            if any(t.get("namespaces") or t.get("namespaceSelector") is not None for t in terms if isinstance(t, dict)):
                return True
        return False
    return False


def scope_selectors(quota: Obj) -> list[tuple[str, str, list[str]]]:
    spec = quota.get("spec") or {}
    out = [(s, "Exists", []) for s in spec.get("scopes") or []]
    for e in ((spec.get("scopeSelector") or {}).get("matchExpressions") or []):
        if isinstance(e, dict):
            out.append((e.get("scopeName", ""), e.get("operator", ""), list(e.get("values") or [])))
    return out


def matches(quota: Obj, group: str, resource: str, obj: Obj) -> bool:
    """Whether the quota's scopes select the object (scoped quotas only ever select pods)."""
    selectors = scope_selectors(quota)
    if not selectors:
        return True
    if not (group == "" and resource == "pods"):
        return False
    return all(_scope_matches(s, op, vals, obj) for s, op, vals in selectors)


def pod_constraints(required: Iterable[str], pod: Obj) -> str | None:
    """``must specify limits.cpu for: c; requests.memory for: c`` when quota'd compute
    resources are not set on every container."""
    req = set(required) & POD_VALIDATION
    if not req:
        return None
    missing: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            res = c.get("resources") or {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            for r in req:
                base = r.split(".", 1)[-1]
                have = limits if r.startswith("limits.") else requests
                if base not in have:
                    missing.setdefault(r, set()).add(c.get("name", ""))
    if not missing:
        return None
    return "must specify " + "; ".join(f"{r} for: {','.join(sorted(missing[r]))}" for r in sorted(missing))


def parse_list(rl: Mapping[str, Any] | None) -> ResourceList:
    return {k: _q(v) for k, v in (rl or {}).items()}


def fmt(value: Fraction, like: Any = None) -> str:
    """A quantity string in the format family of ``like`` (an existing value), else DecimalSI."""
    family = "DecimalSI"
    if isinstance(like, str):
        try:
            family = _split(like)[2]
        except (ValueError, ZeroDivisionError):
            pass
    return format_quantity(value, family)


def fmt_added(value: Fraction, used: Any, hard: Any) -> str:
    """``used`` plus a request, as Kubernetes' ``Quantity.Add`` formats it: in the format of
    the used value, unless that is zero (a zero quantity takes the added one's format; our
    usage is a plain number, so the quota's ``hard`` value stands for it: ``0`` + ``64Mi`` is
    ``64Mi``, not ``67108864``)."""
    try:
        zero = not isinstance(used, str) or parse_quantity(used) == 0
    except (ValueError, ZeroDivisionError):
        zero = True
    return fmt(value, hard if zero else used)


def pretty(rl: Mapping[str, Any], like: Mapping[str, Any] | None = None) -> str:
    """``k=v,...`` sorted; numbers in the format family of ``like[k]`` (a quota's hard value)."""
    return ",".join(f"{k}={v if isinstance(v, str) else fmt(v, (like or {}).get(k))}" for k, v in sorted(rl.items()))
