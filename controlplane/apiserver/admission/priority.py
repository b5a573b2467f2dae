"""Priority (``plugin/pkg/admission/priority``): a pod's ``priorityClassName`` is resolved to its
``scheduling.k8s.io/v1`` PriorityClass, whose value becomes ``spec.priority`` and whose
``preemptionPolicy`` becomes the pod's; a pod naming no class gets the ``globalDefault`` class
(the lowest-valued one if several) or priority 0 with ``PreemptLowerPriority``. Unknown class:
403 ``no PriorityClass with name x was found``; a priority in the spec that differs from the
class's: 403 as Kubernetes words it. Updates keep the values set at creation. Validating: only
one PriorityClass may be ``globalDefault``. The two system classes (``system-node-critical``,
``system-cluster-critical``) are created by the apiserver at start (``SYSTEM_CLASSES``).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.admission.attributes import CREATE, UPDATE, Attributes, forbidden
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo

Obj = dict[str, Any]

SYSTEM_CLASSES = (
    {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-node-critical"},
     "value": 2000001000, "description": "Used for system critical pods that must not be moved from their current node."},
    {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-cluster-critical"},
     "value": 2000000000, "description": "Used for system critical pods that must run in the cluster, but can be "
                                         "moved to another node if necessary."},
)


class Priority(Plugin):
    name = "Priority"
    mutates = True
    validates = True

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        if info.group == "" and info.plural == "pods":
            return not subresource and operation in (CREATE, UPDATE)
        return info.group == "scheduling.k8s.io" and info.plural == "priorityclasses" and operation in (CREATE, UPDATE)

    def _default_class(self) -> Obj | None:
        best: Obj | None = None
        for pc in self.lookups.list_all("priorityclasses"):
            if pc.get("globalDefault") and (best is None or int(pc.get("value", 0)) < int(best.get("value", 0))):
                best = pc
        return best

    async def admit(self, a: Attributes) -> None:
        if a.info.plural != "pods" or not isinstance(a.obj, dict):
            return
        spec = a.obj.setdefault("spec", {})
        if a.operation == UPDATE:
            old = (a.old or {}).get("spec") or {}
            for k in ("priority", "preemptionPolicy"):
                if spec.get(k) is None and old.get(k) is not None:
                    spec[k] = old[k]
            return
        name = spec.get("priorityClassName")
        if not name:
            pc = self._default_class()
            if pc is not None:
                spec["priorityClassName"] = pc["metadata"]["name"]
        else:
            pc = self.lookups.get("priorityclasses", None, name) or \
                await self.lookups.get_live("priorityclasses", None, name)
            if pc is None:
                raise forbidden(a, f"no PriorityClass with name {name} was found")
        priority = int(pc.get("value", 0)) if pc is not None else 0
        policy = (pc or {}).get("preemptionPolicy") or "PreemptLowerPriority"
        if spec.get("priority") is not None and spec["priority"] != priority:
            raise forbidden(a, f"the integer value of priority ({spec['priority']}) must not be provided in pod spec; "
                               f"priority admission controller computed {priority} from the given PriorityClass name")
        spec["priority"] = priority
        if pc is not None and spec.get("preemptionPolicy") not in (None, policy):
            raise forbidden(a, f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) must not be provided "
                               f"in pod spec; priority admission controller computed {policy} from the given "
                               "PriorityClass name")
        spec["preemptionPolicy"] = spec.get("preemptionPolicy") or policy

    async def validate(self, a: Attributes) -> None:
        if a.info.plural != "priorityclasses" or not isinstance(a.obj, dict) or not a.obj.get("globalDefault"):
            return
        current = self._default_class()
        if current is not None and (a.operation == CREATE or current["metadata"]["name"] != a.object_name()):
            raise forbidden(a, f"PriorityClass {current['metadata']['name']} is already marked as default. "
                               "Only one default can exist")
