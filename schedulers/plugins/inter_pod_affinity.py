"""InterPodAffinity: required pod affinity / anti-affinity as a filter (including the
anti-affinity of pods already running, which must not be violated by the newcomer), and a
score as Kubernetes': for each topology domain, the incoming pod's preferred terms (weight per
matching existing pod, anti-affinity negative) plus the existing pods' terms that match the
incoming pod (their preferred affinity +weight, preferred anti-affinity -weight, required
affinity +``hardPodAffinityWeight``, default 1), normalised ``100 * (s - min) / (max - min)``.
Terms select namespaces by ``namespaces`` and ``namespaceSelector`` (the scheduler's
Namespace informer gives the labels)."""

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


HARD_POD_AFFINITY_WEIGHT = 1  # kube-scheduler's InterPodAffinityArgs default


def _count_matching(snap, term: dict, owner_ns: str) -> Counter:
    """topology value -> number of existing pods matching ``term``."""
    key = term.get("topologyKey", "")
    out: Counter = Counter()
    ns_labels = getattr(snap, "ns_labels", None)
    for row, p in snap.all_pods():
        if affinity_term_matches(term, owner_ns, p.namespace, p.labels, ns_labels):
            v = snap.nodes[row].labels.get(key)
            if v is not None:
                out[v] += 1
    return out


@register
class InterPodAffinity(Plugin):
    name = "InterPodAffinity"
    uniform_raw = 0  # every node's raw score when uniform_score applies
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

        ns_labels = getattr(snap, "ns_labels", None)
        # existing pods' required anti-affinity against the incoming pod
        for row, other in list(snap.anti_affinity_pods.values()):
            for t in _terms(other, "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
                if affinity_term_matches(t, other.namespace, pod.namespace, pod.labels, ns_labels):
                    key = t.get("topologyKey", "")
                    v = snap.nodes[row].labels.get(key)
                    if v is not None:
                        reject(np.array([d == v for d in _domains(snap, key, idx)], dtype=bool), R_EXISTING)
        for t in _terms(pod, "podAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
            counts = _count_matching(snap, t, pod.namespace)
            key = t.get("topologyKey", "")
            if not counts and affinity_term_matches(t, pod.namespace, pod.namespace, pod.labels, ns_labels):
                # the first pod of a group that selects itself may go anywhere with the key
                reject(np.array([d is None for d in _domains(snap, key, idx)], dtype=bool), R_AFF)
                continue
            reject(np.array([d is None or counts.get(d, 0) == 0 for d in _domains(snap, key, idx)], dtype=bool), R_AFF)
        for t in _terms(pod, "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
            counts = _count_matching(snap, t, pod.namespace)
            key = t.get("topologyKey", "")
            reject(np.array([d is not None and counts.get(d, 0) > 0 for d in _domains(snap, key, idx)], dtype=bool), R_ANTI)
        return FilterResult(ok, reasons=reasons)

    def __init__(self, args=None, handle=None) -> None:
        super().__init__(args, handle)
        self.hard_weight = int(self.args.get("hardPodAffinityWeight", HARD_POD_AFFINITY_WEIGHT))

    def uniform_score(self, cs, pod, snap) -> int | None:
        if (_terms(pod, "podAffinity", "preferredDuringSchedulingIgnoredDuringExecution")
                or _terms(pod, "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution")
                or self._existing_terms(snap, pod)):
            return None
        return 0  # all zero: normalises to 0

    def _existing_terms(self, snap, pod) -> list[tuple[str, str, int]]:
        """(topology key, the existing pod's domain value, weight) of every term of an existing
        pod that matches the incoming pod: its preferred affinity (+weight) and anti-affinity
        (-weight), its required affinity (+hardPodAffinityWeight)."""
        aff = getattr(snap, "affinity_pods", None)
        if not aff:
            return []
        ns_labels = getattr(snap, "ns_labels", None)
        out = []
        for row, other in aff.values():
            if other.uid == pod.uid:
                continue
            labels = snap.nodes[row].labels
            terms = [(wt.get("podAffinityTerm") or {}, int(wt.get("weight", 0)))
                     for wt in _terms(other, "podAffinity", "preferredDuringSchedulingIgnoredDuringExecution")]
            terms += [(wt.get("podAffinityTerm") or {}, -int(wt.get("weight", 0)))
                      for wt in _terms(other, "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution")]
            if self.hard_weight:
                terms += [(t, self.hard_weight)
                          for t in _terms(other, "podAffinity", "requiredDuringSchedulingIgnoredDuringExecution")]
            for t, w in terms:
                key = t.get("topologyKey", "")
                v = labels.get(key)
                if w and v is not None and affinity_term_matches(t, other.namespace, pod.namespace, pod.labels, ns_labels):
                    out.append((key, v, w))
        return out

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(len(idx), dtype=np.int64)
        by_key: dict[str, Counter] = {}
        for key, v, w in self._existing_terms(snap, pod):
            by_key.setdefault(key, Counter())[v] += w
        for key, per_value in by_key.items():
            out += np.array([per_value.get(d, 0) if d is not None else 0 for d in _domains(snap, key, idx)],
                            dtype=np.int64)
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
