"""NodeAffinity: ``nodeSelector`` and required node affinity as a filter, preferred terms as a
score (sum of matched term weights, normalised ``100 * s / max``)."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import FilterResult, Plugin, Status
from schedulers.framework.registry import register
from schedulers.plugins.helpers import node_selector_matches, term_matches

REASON = "node(s) didn't match Pod's node affinity/selector"


def required_matches(pod, node) -> bool:
    labels = node.labels
    for k, v in pod.node_selector.items():
        if labels.get(k) != v:
            return False
    req = ((pod.affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution"))
    return node_selector_matches(req, labels, node.name)


@register
class NodeAffinity(Plugin):
    name = "NodeAffinity"
    uniform_raw = 0  # every node's raw score when uniform_score applies
    events = ("Node/Add", "Node/Update")

    def pre_filter(self, cs, pod, snap) -> Status | None:
        na = pod.affinity.get("nodeAffinity") or {}
        if not pod.node_selector and not na.get("requiredDuringSchedulingIgnoredDuringExecution"):
            return Status.skip()
        return None

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        ok = np.fromiter((required_matches(pod, snap.nodes[i]) for i in idx), dtype=bool, count=len(idx))
        return FilterResult(ok, REASON, unresolvable=True)

    def uniform_score(self, cs, pod, snap) -> int | None:
        na = pod.affinity.get("nodeAffinity") or {}
        return None if na.get("preferredDuringSchedulingIgnoredDuringExecution") else 0

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        terms = (pod.affinity.get("nodeAffinity") or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or []
        out = np.zeros(len(idx), dtype=np.int64)
        for t in terms:
            w = int(t.get("weight", 0))
            pref = t.get("preference") or {}
            out += np.fromiter((w if term_matches(pref, snap.nodes[i].labels, snap.nodes[i].name) else 0
                                for i in idx), dtype=np.int64, count=len(idx))
        return out

    def normalize(self, cs, pod, snap, idx, scores: np.ndarray) -> np.ndarray:
        mx = scores.max() if len(scores) else 0
        return scores * 100 // mx if mx > 0 else scores
