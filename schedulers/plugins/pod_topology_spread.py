"""PodTopologySpread: ``DoNotSchedule`` constraints as a filter (a node is rejected when
placing the pod there makes its domain exceed ``maxSkew`` over the least-loaded domain), and
``ScheduleAnyway`` constraints as a score: per constraint
``matching_pods_in_domain * ln(domains + 2) + (maxSkew - 1)``, summed, normalised
``100 * (max + min - s) / max`` (fewer matching pods is better). Pods without constraints get
the system defaults (hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway) over the pods that
match Kubernetes' default selector: the selectors of the Services selecting the pod and of
its controller (ReplicationController, ReplicaSet, StatefulSet) merged
(``framework.workloads``); a pod that no Service or such controller selects has none.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from schedulers.framework.interface import FilterResult, Plugin, Status
from schedulers.framework.registry import register
from schedulers.plugins.helpers import label_selector
from schedulers.plugins.node_affinity import required_matches

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
REASON = "node(s) didn't match pod topology spread constraints"
REASON_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"


def constraints(pod, when: str, snap=None) -> list[dict]:
    cons = [c for c in pod.topology_spread if (c.get("whenUnsatisfiable") or "DoNotSchedule") == when]
    if pod.topology_spread or when != "ScheduleAnyway":
        return cons
    workloads = getattr(snap, "workloads", None)
    if workloads is None:
        return []
    sel = workloads.default_selector(pod.namespace, pod.labels,
                                     (pod.obj.get("metadata") or {}).get("ownerReferences") or [])
    if sel is None:
        return []
    return [{"topologyKey": HOSTNAME, "maxSkew": 3, "_selector": sel},
            {"topologyKey": ZONE, "maxSkew": 5, "_selector": sel}]


def _matches(c: dict, pod, other) -> bool:
    if other.namespace != pod.namespace:
        return False
    sel = c.get("_selector")
    return (sel if sel is not None else label_selector(c.get("labelSelector"))).matches(other.labels)


def domain_counts(snap, pod, c: dict) -> tuple[Counter, list[str | None]]:
    """Matching pods per domain value over the nodes eligible for the pod, and each node's
    domain (None: missing key or not eligible)."""
    key = c.get("topologyKey", "")
    node_dom: list[str | None] = []
    counts: Counter = Counter()
    for n in snap.nodes:
        v = n.labels.get(key)
        if v is not None and not required_matches(pod, n):
            v = None
        node_dom.append(v)
        if v is not None:
            counts.setdefault(v, 0)
    for row, other in snap.all_pods():
        v = node_dom[row]
        if v is not None and _matches(c, pod, other):
            counts[v] += 1
    return counts, node_dom


@register
class PodTopologySpread(Plugin):
    name = "PodTopologySpread"
    uniform_raw = 0  # every node's raw score when uniform_score applies
    events = ("Pod/Add", "Pod/Delete", "Node/Add", "Node/Update")

    def pre_filter(self, cs, pod, snap) -> Status | None:
        return None if constraints(pod, "DoNotSchedule") else Status.skip()

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        ok = np.ones(len(idx), dtype=bool)
        reasons: dict[str, np.ndarray] = {}
        for c in constraints(pod, "DoNotSchedule"):
            counts, node_dom = domain_counts(snap, pod, c)
            self_match = 1 if label_selector(c.get("labelSelector")).matches(pod.labels) else 0
            lo = min(counts.values()) if counts else 0
            skew = int(c.get("maxSkew", 1))
            missing = np.array([snap.nodes[i].labels.get(c.get("topologyKey", "")) is None for i in idx], dtype=bool)
            over = np.array([node_dom[i] is not None and counts[node_dom[i]] + self_match - lo > skew for i in idx],
                            dtype=bool)
            for mask, why in ((missing, REASON_LABEL), (over, REASON)):
                new = mask & ok
                if new.any():
                    reasons[why] = reasons.get(why, np.zeros(len(idx), dtype=bool)) | new
                    ok &= ~new
        return FilterResult(ok, reasons=reasons)

    def pre_score(self, cs, pod, snap, idx: np.ndarray) -> None:
        cs[self.name] = constraints(pod, "ScheduleAnyway", snap)

    def uniform_score(self, cs, pod, snap) -> int | None:
        cons = cs.get(self.name)
        if cons is None:
            cons = constraints(pod, "ScheduleAnyway", snap)
        return None if cons else 100  # no constraint: all zero, normalised to 100

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        cons = cs.get(self.name)
        if cons is None:
            cons = constraints(pod, "ScheduleAnyway", snap)
        out = np.zeros(len(idx), dtype=np.float64)
        for c in cons:
            counts, node_dom = domain_counts(snap, pod, c)
            w = math.log(len(counts) + 2)
            skew = int(c.get("maxSkew", 1))
            out += np.array([counts[node_dom[i]] * w + (skew - 1) if node_dom[i] is not None else 0.0 for i in idx])
        return np.round(out).astype(np.int64)

    def normalize(self, cs, pod, snap, idx, scores: np.ndarray) -> np.ndarray:
        if not len(scores):
            return scores
        mx, mn = scores.max(), scores.min()
        if mx == 0:
            return np.full(len(scores), 100, dtype=np.int64)
        return (100 * (mx + mn - scores) // mx).astype(np.int64)
