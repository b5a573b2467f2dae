"""RuntimeClass (``plugin/pkg/admission/runtimeclass``): a pod naming a ``node.k8s.io/v1``
RuntimeClass gets the class's ``overhead.podFixed`` as ``spec.overhead`` (which the scheduler,
quota and LimitRanger-free accounting add to the pod's requests) and the class's
``scheduling``: its nodeSelector merged into the pod's (a conflicting value is refused) and its
tolerations merged with the pod's (``tolerations.MergeTolerations``: one that another covers is
dropped). Validating: a pod's overhead must be the class's, and a pod without a class with an
overhead may not set one. Only pod creates concern it, as upstream. Unknown class: 403
``pod rejected: RuntimeClass "x" not found``. The agents resolve the class's ``handler``
(``agent/runtimeclass.py``).
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.apiserver.admission.attributes import CREATE, Attributes, forbidden
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.machinery.quantity import parse_quantity

Obj = dict[str, Any]


def _same_resources(a: Obj | None, b: Obj | None) -> bool:
    """``apiequality.Semantic.DeepEqual`` of two ResourceLists: quantities compared by value."""
    a, b = a or {}, b or {}
    if set(a) != set(b):
        return False
    try:
        return all(parse_quantity(a[k]) == parse_quantity(b[k]) for k in a)
    except (ValueError, TypeError, ZeroDivisionError):
        return a == b


def _equal(a: Obj, b: Obj) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def is_superset(ss: Obj, t: Obj) -> bool:
    """Whether toleration ``ss`` tolerates everything ``t`` does (``tolerations.isSuperset``)."""
    if _equal(ss, t):
        return True
    if t.get("key", "") != ss.get("key", "") and (ss.get("key", "") != "" or ss.get("operator") != "Exists"):
        return False
    if t.get("effect", "") != ss.get("effect", "") and ss.get("effect", ""):
        return False
    if ss.get("effect") == "NoExecute" and ss.get("tolerationSeconds") is not None:
        if t.get("tolerationSeconds") is None or t["tolerationSeconds"] > ss["tolerationSeconds"]:
            return False
    op = ss.get("operator") or "Equal"
    if op == "Equal":
        return (t.get("operator") or "Equal") == "Equal" and t.get("value", "") == ss.get("value", "")
    return op == "Exists"


def merge_tolerations(first: list[Obj], second: list[Obj]) -> list[Obj]:
    """``tolerations.MergeTolerations``: both lists, without a toleration another one covers
    (of equal ones the first is kept)."""
    every = [t for t in [*first, *second] if isinstance(t, dict)]
    merged: list[Obj] = []
    for i, t in enumerate(every):
        if any(is_superset(m, t) for m in merged):
            continue
        if any(not _equal(t, t2) and is_superset(t2, t) for t2 in every[i + 1:]):
            continue
        merged.append(t)
    return merged


class RuntimeClass(Plugin):
    name = "RuntimeClass"
    mutates = True
    validates = True

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return info.group == "" and info.plural == "pods" and not subresource and operation == CREATE

    async def _class(self, a: Attributes, spec: Obj) -> Obj | None:
        name = spec.get("runtimeClassName")
        if not name:
            return None
        rc = self.lookups.get("runtimeclasses", None, name) or await self.lookups.get_live("runtimeclasses", None, name)
        if rc is None:
            raise forbidden(a, f'pod rejected: RuntimeClass "{name}" not found')
        return rc

    async def admit(self, a: Attributes) -> None:
        if not isinstance(a.obj, dict) or not isinstance(a.obj.get("spec"), dict):
            return
        spec = a.obj["spec"]
        rc = await self._class(a, spec)
        if rc is None:
            return
        fixed = (rc.get("overhead") or {}).get("podFixed")
        if rc.get("overhead") is not None:
            if spec.get("overhead") and not _same_resources(fixed, spec["overhead"]):
                raise forbidden(a, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
            spec["overhead"] = dict(fixed or {})
        scheduling = rc.get("scheduling")
        if not isinstance(scheduling, dict):
            return
        selector = spec.get("nodeSelector")
        wanted = scheduling.get("nodeSelector") or {}
        if selector is None:
            selector = dict(wanted) if wanted else None
        else:
            for key, value in wanted.items():
                if key in selector and selector[key] != value:
                    raise forbidden(a, f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; "
                                       f"pod.spec.nodeSelector[{key}] = {selector[key]}")
                selector[key] = value
        if selector is not None:
            spec["nodeSelector"] = selector
        merged = merge_tolerations(spec.get("tolerations") or [], scheduling.get("tolerations") or [])
        if merged or spec.get("tolerations") is not None:
            spec["tolerations"] = merged

    async def validate(self, a: Attributes) -> None:
        if not isinstance(a.obj, dict) or not isinstance(a.obj.get("spec"), dict):
            return
        spec = a.obj["spec"]
        rc = await self._class(a, spec)
        if rc is not None and rc.get("overhead") is not None:
            if not _same_resources((rc.get("overhead") or {}).get("podFixed"), spec.get("overhead")):
                raise forbidden(a, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
        elif spec.get("overhead"):
            raise forbidden(a, "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
