"""DefaultPreemption (post-filter): when no node fits, find a node where evicting pods of
lower priority makes room. Per candidate node (one rejected with a resolvable reason): remove
every lower-priority pod, check the pod fits, then reprieve victims from the highest priority
down while it still fits. Pick the node whose victims have the lowest highest-priority, then
the lowest priority sum, then the fewest victims. Pods already terminating are no victims
(they are going anyway). The scheduler evicts the victims and nominates the node
(``status.nominatedNodeName``); the victims keep their resources in the scheduler's cache
while they terminate, so the pod is bound only once they are gone (``Pod/Delete``), and
meanwhile it does not preempt again (kube-scheduler's ``podEligibleToPreemptOthers``)."""

from __future__ import annotations

from schedulers.framework.interface import Diagnosis, Plugin, PostFilterResult
from schedulers.framework.registry import register


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
                for p in sorted(lower, key=lambda p: -p.priority):
                    snap.add_pod(p, node.name)
                    if not fits(row):
                        snap.remove_pod(p.uid)
                        victims.append(p)
            finally:
                for p in lower:
                    if p.uid not in snap.pod_node:
                        snap.add_pod(p, node.name)
            key = (max(p.priority for p in victims), sum(p.priority for p in victims), len(victims))
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
