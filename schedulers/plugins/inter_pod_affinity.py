"""InterPodAffinity: required pod affinity / anti-affinity as a filter (including the
anti-affinity of pods already running, which must not be violated by the newcomer), and the
preferred terms as a score (sum of weights of matching pods in the node's topology domain,
anti-affinity negative), normalised ``100 * (s - min) / (max - min)``."""

from __future__ import annotations

from collections import Counter

import numpy as np

from schedulers.framework.interface import FilterResult, Plugin, Status
from schedulers.framework.registry import register
from schedulers.plugins.helpers import affinity_term_matches

R_AFF = "node(s) didn't match pod affinity rules"
R_ANTI = "node(s) didn't match pod anti-affinity rules"
R_EXISTING = "node(s) didn't satisfy existing pods anti-affinity rules"


def _terms(pod, kind: str, mode: str) -> list[dict]:
    return list((pod.affinity.get(kind) or {}).get(mode) or [])


def _domains(snap, key: str, idx: np.ndarray) -> list[str | None]:
    return [snap.nodes[i].labels.get(key) for i in idx]


def _count_matching(snap, term: dict, owner_ns: str) -> Counter:
    """topology value -> number of existing pods matching ``term``."""
    key = term.get("topologyKey", "")
    out: Counter = Counter()
    for row, p in snap.all_pods():
        if affinity_term_matches(term, owner_ns, p.namespace, p.labels):
            v = snap.nodes[row].labels.get(key)
            if v is not None:
                out[v] += 1
    return out


@register
class InterPodAffinity(Plugin):
    name = "InterPodAffinity"
    events = ("Pod/Add", "Pod/Update", "Pod/Delete", "Node/Add", "Node/Update")

    def pre_filter(self, cs, pod, snap) -> Status | None:
        if (not _terms(pod, "podAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
                and not _terms(pod, "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
                and not snap.anti_affinity_pods):
            return Status.skip()
        return None

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        ok = np.ones(len(idx), dtype=bool)
        reasons: dict[str, np.ndarray] = {}

        def reject(mask: np.ndarray, why: str) -> None:
            new = mask & ok
            if new.any():
                reasons[why] = new
                ok[new] = False

        # existing pods' required anti-affinity against the incoming pod
        for row, other in list(snap.anti_affinity_pods.values()):
            for t in _terms(other, "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
                if affinity_term_matches(t, other.namespace, pod.namespace, pod.labels):
                    key = t.get("topologyKey", "")
                    v = snap.nodes[row].labels.get(key)
                    if v is not None:
                        reject(np.array([d == v for d in _domains(snap, key, idx)], dtype=bool), R_EXISTING)
        for t in _terms(pod, "podAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
            counts = _count_matching(snap, t, pod.namespace)
            key = t.get("topologyKey", "")
            if not counts and affinity_term_matches(t, pod.namespace, pod.namespace, pod.labels):
                # the first pod of a group that selects itself may go anywhere with the key
                reject(np.array([d is None for d in _domains(snap, key, idx)], dtype=bool), R_AFF)
                continue
            reject(np.array([d is None or counts.get(d, 0) == 0 for d in _domains(snap, key, idx)], dtype=bool), R_AFF)
        for t in _terms(pod, "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
            counts = _count_matching(snap, t, pod.namespace)
            key = t.get("topologyKey", "")
            reject(np.array([d is not None and counts.get(d, 0) > 0 for d in _domains(snap, key, idx)], dtype=bool), R_ANTI)
        return FilterResult(ok, reasons=reasons)

    def uniform_score(self, cs, pod, snap) -> int | None:
        if (_terms(pod, "podAffinity", "preferredDuringSchedulingIgnoredDuringExecution")
                or _terms(pod, "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution")):
            return None
        return 0  # all zero: normalises to 0

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(len(idx), dtype=np.int64)
        for kind, sign in (("podAffinity", 1), ("podAntiAffinity", -1)):
            for wt in _terms(pod, kind, "preferredDuringSchedulingIgnoredDuringExecution"):
                t = wt.get("podAffinityTerm") or {}
                w = int(wt.get("weight", 0)) * sign
                counts = _count_matching(snap, t, pod.namespace)
                if counts:
                    key = t.get("topologyKey", "")
                    out += np.array([w * counts.get(d, 0) if d is not None else 0 for d in _domains(snap, key, idx)],
                                    dtype=np.int64)
        return out

    def normalize(self, cs, pod, snap, idx, scores: np.ndarray) -> np.ndarray:
        if not len(scores):
            return scores
        lo, hi = scores.min(), scores.max()
        if hi == lo:
            return np.zeros(len(scores), dtype=np.int64)
        return (scores - lo) * 100 // (hi - lo)
