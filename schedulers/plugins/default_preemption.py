"""DefaultPreemption (post-filter): when no node fits, find a node where evicting pods of
lower priority makes room. Per candidate node (one rejected with a resolvable reason): remove
every lower-priority pod, check the pod fits, then reprieve victims while it still fits: first
those whose eviction would violate a PodDisruptionBudget (more victims of a budget than its
``disruptionsAllowed``, pods already in its ``disruptedPods`` not counted), then the others,
each group from the highest priority down (kube-scheduler's ``SelectVictimsOnNode``). Pick the
node with the fewest budget violations, then the lowest highest-priority victim, then the
lowest priority sum, then the fewest victims. Pods already terminating are no victims (they
are going anyway). Budgets are best effort, as in Kubernetes: when only violating victims make
room they are preempted. The scheduler evicts the victims and nominates the node
(``status.nominatedNodeName``); the victims keep their resources in the scheduler's cache
while they terminate, so the pod is bound only once they are gone (``Pod/Delete``), and
meanwhile it does not preempt again (kube-scheduler's ``podEligibleToPreemptOthers``)."""

from __future__ import annotations

from controlplane.machinery.disruption import guards
from schedulers.framework.interface import Diagnosis, Plugin, PostFilterResult
from schedulers.framework.registry import register


def split_by_budget(victims: list, pdbs: list[dict]) -> tuple[list, list]:
    """``filterPodsWithPDBViolation``: (violating, non-violating) victims, each in the given
    order. Each victim a budget guards spends one of its ``disruptionsAllowed`` (unless the
    pod is in its ``disruptedPods``: the apiserver counted it already); a victim that takes a
    budget below zero violates it."""
    allowed = [int((b.get("status") or {}).get("disruptionsAllowed") or 0) for b in pdbs]
    violating, fine = [], []
    for p in victims:
        hit = False
        if p.labels:
            probe = {"metadata": {"namespace": p.namespace, "labels": p.labels}}
            for i, b in enumerate(pdbs):
                if not guards(b, probe) or p.name in ((b.get("status") or {}).get("disruptedPods") or {}):
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    hit = True
        (violating if hit else fine).append(p)
    return violating, fine


@register
class DefaultPreemption(Plugin):
    name = "DefaultPreemption"
    events = ("Pod/Delete",)

    def post_filter(self, cs, pod, snap, diagnosis: Diagnosis, fits) -> tuple[PostFilterResult | None, list, str]:
        """``fits(row) -> bool`` runs the profile's filters on one node of the (mutated) cache.
        Returns (result, victims, message for the FailedScheduling event)."""
        n = snap.n
        if pod.preemption_policy == "Never":
            return None, [], f"0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
        best = None
        no_victims = 0
        for row, node in enumerate(snap.nodes):
            if node.name in diagnosis.unresolvable or node.name not in diagnosis.node_reasons:
                continue
            lower = sorted((p for p in node.pods.values()
                            if p.priority < pod.priority and p.uid not in snap.assumed and not p.terminating),
                           key=lambda p: p.priority)
            if not lower:
                no_victims += 1
                continue
            for p in lower:
                snap.remove_pod(p.uid)
            try:
                if not fits(row):
                    no_victims += 1
                    continue
                victims = []
                violating, fine = split_by_budget(sorted(lower, key=lambda p: -p.priority),
                                                  [b for ns in {p.namespace for p in lower}
                                                   for b in (getattr(snap, "pdbs", None) or {}).get(ns, {}).values()])
                violations = 0
                for group in (violating, fine):
                    for p in group:
                        snap.add_pod(p, node.name)
                        if not fits(row):
                            snap.remove_pod(p.uid)
                            victims.append(p)
                            violations += group is violating
            finally:
                for p in lower:
                    if p.uid not in snap.pod_node:
                        snap.add_pod(p, node.name)
            key = (violations, max(p.priority for p in victims), sum(p.priority for p in victims), len(victims))
            if best is None or key < best[0]:
                best = (key, node.name, victims)
        if best is None:
            unhelpful = n - no_victims
            parts = []
            if no_victims:
                parts.append(f"{no_victims} No preemption victims found for incoming pod")
            if unhelpful:
                parts.append(f"{unhelpful} Preemption is not helpful for scheduling")
            return None, [], f"0/{n} nodes are available: {', '.join(sorted(parts))}."
        return PostFilterResult(nominated_node=best[1]), best[2], ""
