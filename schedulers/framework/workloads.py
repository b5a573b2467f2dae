"""What kube-scheduler's listers give the default topology spreading: the selectors of the
Services, ReplicationControllers, ReplicaSets and StatefulSets of each namespace, and
:meth:`WorkloadSelectors.default_selector` = Kubernetes' ``helper.DefaultSelector``: the
merged selectors of every Service selecting the pod, plus the selector of the pod's
controller when it is a ReplicationController, ReplicaSet or StatefulSet. The scheduler feeds
it from its informers (``scheduler``); ``PodTopologySpread`` counts the pods matching that
selector for its system default constraints. Neighbours: ``cache`` (holds one),
``plugins/pod_topology_spread``.
"""

from __future__ import annotations

from controlplane.machinery.selectors import EQUALS, LabelSelector, Requirement

# kind -> whose controllerRef is looked up by name (a Service selects pods by labels instead)
CONTROLLER_KINDS = {("v1", "ReplicationController"), ("apps/v1", "ReplicaSet"), ("apps/v1", "StatefulSet")}


class WorkloadSelectors:
    def __init__(self) -> None:
        # namespace -> name -> Service selector (a label map; Services without one select nothing)
        self.services: dict[str, dict[str, dict[str, str]]] = {}
        # (kind, namespace, name) -> requirements of the controller's selector
        self.controllers: dict[tuple[str, str, str], tuple[Requirement, ...]] = {}

    def set(self, kind: str, obj: dict) -> None:
        md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        ns, name = md.get("namespace") or "default", md.get("name") or ""
        sel = spec.get("selector")
        if kind == "Service":
            if sel:
                self.services.setdefault(ns, {})[name] = dict(sel)
            else:
                self.delete(kind, ns, name)
            return
        if kind == "ReplicationController":
            reqs = tuple(Requirement(k, EQUALS, (str(v),)) for k, v in sorted((sel or {}).items()))
        else:
            try:
                reqs = LabelSelector.from_dict(sel).requirements if sel is not None else ()
            except ValueError:
                reqs = ()
        self.controllers[(kind, ns, name)] = reqs

    def delete(self, kind: str, ns: str, name: str) -> None:
        if kind == "Service":
            self.services.get(ns, {}).pop(name, None)
        else:
            self.controllers.pop((kind, ns, name), None)

    def default_selector(self, namespace: str, labels: dict[str, str], owner_refs: list[dict]) -> LabelSelector | None:
        """The pod's default spreading selector, or ``None`` when it is empty (then no default
        constraint applies, as in Kubernetes)."""
        merged: dict[str, str] = {}
        for sel in self.services.get(namespace, {}).values():
            if all(labels.get(k) == v for k, v in sel.items()):
                merged.update(sel)
        reqs = [Requirement(k, EQUALS, (v,)) for k, v in sorted(merged.items())]
        owner = next((o for o in owner_refs if o.get("controller")), None)
        if owner is not None and (owner.get("apiVersion"), owner.get("kind")) in CONTROLLER_KINDS:
            got = self.controllers.get((owner["kind"], namespace, owner.get("name", "")))
            if got:
                if owner["kind"] == "ReplicationController":  # labels.Merge: a map, the RC's values win
                    keys = {r.key for r in got}
                    reqs = [r for r in reqs if r.key not in keys] + list(got)
                else:
                    reqs += list(got)
        return LabelSelector(tuple(reqs)) if reqs else None
