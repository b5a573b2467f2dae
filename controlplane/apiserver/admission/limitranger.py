"""LimitRanger (``plugin/pkg/admission/limitranger``) with the namespace's LimitRange objects.

Mutating, on pod creation: each container gets the ``default`` limits and ``defaultRequest``
requests of the Container-type limits it lacks, and the pod is annotated
``kubernetes.io/limit-ranger: LimitRanger plugin set: cpu, memory request for container c;
cpu limit for container c``. Validating: every Container-type and Pod-type ``min``, ``max`` and
``maxLimitRequestRatio`` is enforced with Kubernetes' messages (``maximum cpu usage per
Container is 500m, but limit is 1``); pods are not re-checked on update (their resources
cannot change). PersistentVolumeClaims (create and update): the PersistentVolumeClaim-type
``min`` and ``max`` against ``spec.resources.requests`` (``minimum storage usage per
PersistentVolumeClaim is 1Gi, but request is 500Mi``), as ``PersistentVolumeClaimValidateLimitFunc``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from controlplane.apiserver.admission.attributes import CREATE, UPDATE, Attributes, forbidden
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.machinery.podresources import aggregate
from controlplane.machinery.quantity import parse_quantity
from controlplane.machinery.quota import fmt as quota_fmt

Obj = dict[str, Any]
ANNOTATION = "kubernetes.io/limit-ranger"


def _q(v: Any) -> Fraction:
    try:
        return parse_quantity(v)
    except (ValueError, TypeError, ZeroDivisionError):
        return Fraction(0)


def _containers(pod: Obj) -> list[tuple[str, Obj]]:
    spec = pod.get("spec") or {}
    out = [("init container", c) for c in spec.get("initContainers") or [] if isinstance(c, dict)]
    return out + [("container", c) for c in spec.get("containers") or [] if isinstance(c, dict)]


def container_defaults(limit_ranges: list[Obj]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(default requests, default limits) of the Container-type items, first LimitRange wins."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for lr in limit_ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if isinstance(item, dict) and item.get("type") == "Container":
                for k, v in (item.get("defaultRequest") or {}).items():
                    requests.setdefault(k, v)
                for k, v in (item.get("default") or {}).items():
                    limits.setdefault(k, v)
    return requests, limits


def apply_defaults(pod: Obj, limit_ranges: list[Obj]) -> None:
    """``mergePodResourceRequirements``: defaults into each container, and the annotation."""
    requests, limits = container_defaults(limit_ranges)
    if not requests and not limits:
        return
    notes: list[str] = []
    for prefix, c in _containers(pod):
        res = c.get("resources")
        if not isinstance(res, dict):
            res = c["resources"] = {}
        lim = res.get("limits") if isinstance(res.get("limits"), dict) else {}
        req = res.get("requests") if isinstance(res.get("requests"), dict) else {}
        set_lim = [k for k in limits if k not in lim]
        set_req = [k for k in requests if k not in req]
        for k in set_lim:
            lim[k] = limits[k]
        for k in set_req:
            req[k] = requests[k]
        if lim:
            res["limits"] = lim
        if req:
            res["requests"] = req
        if set_req:
            notes.append(", ".join(sorted(set_req)) + f" request for {prefix} {c.get('name', '')}")
        if set_lim:
            notes.append(", ".join(sorted(set_lim)) + f" limit for {prefix} {c.get('name', '')}")
    if notes:
        meta = pod.setdefault("metadata", {})
        ann = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
        ann[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
        meta["annotations"] = ann


def _check(kind: str, item: Obj, requests: dict[str, Any], limits: dict[str, Any]) -> list[str]:
    errs: list[str] = []
    for r, enforced in (item.get("min") or {}).items():
        e = _q(enforced)
        if r not in requests:
            errs.append(f"minimum {r} usage per {kind} is {enforced}.  No request is specified")
        elif _q(requests[r]) < e:
            errs.append(f"minimum {r} usage per {kind} is {enforced}, but request is {requests[r]}")
        elif r in limits and _q(limits[r]) < e:
            errs.append(f"minimum {r} usage per {kind} is {enforced}, but limit is {limits[r]}")
    for r, enforced in (item.get("max") or {}).items():
        e = _q(enforced)
        if r not in limits:
            errs.append(f"maximum {r} usage per {kind} is {enforced}.  No limit is specified")
        elif _q(limits[r]) > e:
            errs.append(f"maximum {r} usage per {kind} is {enforced}, but limit is {limits[r]}")
        elif r in requests and _q(requests[r]) > e:
            errs.append(f"maximum {r} usage per {kind} is {enforced}, but request is {requests[r]}")
    for r, enforced in (item.get("maxLimitRequestRatio") or {}).items():
        req, lim = _q(requests.get(r, 0)), _q(limits.get(r, 0))
        if r not in requests or req == 0:
            errs.append(f"{r} max limit to request ratio per {kind} is {enforced}, but no request is specified or "
                        "request is 0")
        elif r not in limits or lim == 0:
            errs.append(f"{r} max limit to request ratio per {kind} is {enforced}, but no limit is specified or "
                        "limit is 0")
        elif lim / req > _q(enforced):
            errs.append(f"{r} max limit to request ratio per {kind} is {enforced}, but provided ratio is "
                        f"{float(lim / req):f}")
    return errs


def _pod_totals(pod: Obj, field: str) -> dict[str, Any]:
    """``podRequests``/``podLimits``: containers and sidecars summed, at least each init
    container with the sidecars before it (``podresources.aggregate``), printed in the format
    of the first value seen (as Quantity arithmetic keeps it)."""
    spec = pod.get("spec") or {}
    like: dict[str, Any] = {}
    total = aggregate(spec, field, lambda _k, v: _q(v), seen=lambda k, v: like.setdefault(k, v))
    return {k: quota_fmt(v, like[k]) for k, v in total.items()}


def violations(pod: Obj, limit_ranges: list[Obj]) -> list[str]:
    errs: list[str] = []
    for lr in limit_ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "Container":
                for _, c in _containers(pod):
                    res = c.get("resources") or {}
                    errs += _check("Container", item, res.get("requests") or {}, res.get("limits") or {})
            elif item.get("type") == "Pod":
                errs += _check("Pod", item, _pod_totals(pod, "requests"), _pod_totals(pod, "limits"))
    return errs


def claim_violations(claim: Obj, limit_ranges: list[Obj]) -> list[str]:
    """``PersistentVolumeClaimValidateLimitFunc``: min and max against the claim's requests."""
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    kind = "PersistentVolumeClaim"
    errs: list[str] = []
    for lr in limit_ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if not isinstance(item, dict) or item.get("type") != kind:
                continue
            for r, enforced in (item.get("min") or {}).items():
                if r not in requests:
                    errs.append(f"minimum {r} usage per {kind} is {enforced}.  No request is specified")
                elif _q(requests[r]) < _q(enforced):
                    errs.append(f"minimum {r} usage per {kind} is {enforced}, but request is {requests[r]}")
            for r, enforced in (item.get("max") or {}).items():
                if r not in requests:
                    errs.append(f"maximum {r} usage per {kind} is {enforced}.  No request is specified")
                elif _q(requests[r]) > _q(enforced):
                    errs.append(f"maximum {r} usage per {kind} is {enforced}, but request is {requests[r]}")
    return errs


class LimitRanger(Plugin):
    name = "LimitRanger"
    mutates = True
    validates = True

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        if info.group == "" and info.plural == "persistentvolumeclaims" and not subresource:
            return operation in (CREATE, UPDATE)
        return info.group == "" and info.plural == "pods" and not subresource and operation == CREATE

    def active(self, namespace: str) -> bool:
        return self.lookups.has_any_in("limitranges", namespace)

    async def admit(self, a: Attributes) -> None:
        if isinstance(a.obj, dict) and a.info.plural == "pods":
            apply_defaults(a.obj, self.lookups.list_in("limitranges", a.namespace))

    async def validate(self, a: Attributes) -> None:
        if not isinstance(a.obj, dict):
            return
        if (a.obj.get("metadata") or {}).get("deletionTimestamp"):
            return  # objects marked for deletion are left alone (their finalizers must come off)
        ranges = self.lookups.list_in("limitranges", a.namespace)
        errs = claim_violations(a.obj, ranges) if a.info.plural == "persistentvolumeclaims" else violations(a.obj, ranges)
        if errs:
            raise forbidden(a, errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
