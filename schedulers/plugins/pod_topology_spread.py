"""PodTopologySpread, as kube-scheduler 1.32's plugin: ``DoNotSchedule`` constraints as a filter,
``ScheduleAnyway`` constraints as a score.

A pod's constraint is resolved once per cycle into a :class:`Constraint`: its selector is
``labelSelector`` ANDed with ``key=value`` for each of ``matchLabelKeys`` the pod has (keys the
pod lacks are ignored), ``minDomains`` defaults to 1, ``nodeAffinityPolicy`` to ``Honor``
(only nodes matching the pod's nodeSelector / required node affinity count) and
``nodeTaintsPolicy`` to ``Ignore`` (``Honor``: nodes with a NoSchedule/NoExecute taint the pod
does not tolerate do not count). Only nodes carrying every constraint's topology key count;
terminating pods and pods of other namespaces never match; an empty selector (``{}``) counts
no pods, as Kubernetes' ``countPodsMatchSelector``.

- PreFilter counts the matching pods per domain over the counting nodes (``_FilterState``);
  the global minimum is 0 while fewer than ``minDomains`` domains exist. Filter rejects a
  node without a topology key (unresolvable) or where ``count + selfMatch - min > maxSkew``.
- PreScore registers the domains of the scored nodes (a node missing a key of the pod's own
  constraints is ignored: score 0) and counts pods over all counting nodes; Score is
  ``sum(count * ln(domains + 2) + maxSkew - 1)`` (per-node counts for the hostname key,
  ``domains`` = the scored nodes), rounded half away from zero; NormalizeScore
  ``100 * (max + min - s) / max`` over the nodes not ignored.

Pods without constraints get the system defaults (hostname maxSkew 3, zone maxSkew 5,
ScheduleAnyway) over the pods matching Kubernetes' default selector (the selectors of the
Services selecting the pod and of its controller, ``framework.workloads``); a pod no Service
or such controller selects has none. Such a pod's cost is one truthiness test at PreFilter and
the default-selector look-up at PreScore. Neighbours: ``node_affinity.required_matches`` and
``machinery.scheduling.find_untolerated_taint`` (the inclusion policies), ``framework.workloads`` (defaults).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from controlplane.machinery.scheduling import find_untolerated_taint
from controlplane.machinery.selectors import EQUALS, LabelSelector, Requirement
from schedulers.framework.interface import FilterResult, Plugin, Status
from schedulers.framework.registry import register
from schedulers.plugins.helpers import label_selector
from schedulers.plugins.node_affinity import required_matches

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
REASON = "node(s) didn't match pod topology spread constraints"
REASON_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
PRE_FILTER_KEY = "PreFilterPodTopologySpread"
PRE_SCORE_KEY = "PreScorePodTopologySpread"
_UNSET = object()


@dataclass(frozen=True, slots=True)
class Constraint:
    """kube-scheduler's ``topologySpreadConstraint``: one constraint of a pod, resolved."""

    max_skew: int
    key: str
    selector: LabelSelector
    min_domains: int = 1
    honor_affinity: bool = True  # nodeAffinityPolicy (default Honor)
    honor_taints: bool = False  # nodeTaintsPolicy (default Ignore)


def merged_selector(c: dict, pod_labels: dict[str, str]) -> LabelSelector:
    """``labelSelector`` ANDed with the pod's values of ``matchLabelKeys`` (missing keys
    ignored; a nil selector stays one that matches nothing, as ``mergeLabelSetWithSelector``)."""
    sel = label_selector(c.get("labelSelector"))
    keys = c.get("matchLabelKeys")
    if not keys or sel.match_nothing:
        return sel
    extra = [Requirement(k, EQUALS, (pod_labels[k],)) for k in keys if k in pod_labels]
    if not extra:
        return sel
    return LabelSelector(tuple(sorted((*extra, *sel.requirements), key=lambda r: r.key)))


def resolve(c: dict, pod_labels: dict[str, str]) -> Constraint:
    """ValueError for a selector the apiserver would have refused."""
    md = c.get("minDomains")
    return Constraint(int(c.get("maxSkew") or 0), c.get("topologyKey") or "", merged_selector(c, pod_labels),
                      int(md) if md is not None else 1,
                      (c.get("nodeAffinityPolicy") or "Honor") == "Honor",
                      (c.get("nodeTaintsPolicy") or "Ignore") == "Honor")


def constraints(pod, when: str, snap=None) -> list[Constraint]:
    """The pod's constraints of one ``whenUnsatisfiable``; without any, the system defaults
    (ScheduleAnyway only, and only when ``snap`` knows the pod's workloads)."""
    if pod.topology_spread:
        return [resolve(c, pod.labels) for c in pod.topology_spread
                if (c.get("whenUnsatisfiable") or "DoNotSchedule") == when]
    if when != "ScheduleAnyway":
        return []
    workloads = getattr(snap, "workloads", None)
    if workloads is None:
        return []
    sel = workloads.default_selector(pod.namespace, pod.labels,
                                     (pod.obj.get("metadata") or {}).get("ownerReferences") or [])
    if sel is None:
        return []
    return [Constraint(3, HOSTNAME, sel), Constraint(5, ZONE, sel)]


def count_matching(pod, sel: LabelSelector, pods: dict) -> int:
    """Kubernetes' countPodsMatchSelector over one node's pods."""
    if sel.empty:
        return 0
    ns = pod.namespace
    return sum(1 for p in pods.values() if not p.terminating and p.namespace == ns and sel.matches(p.labels))


class _Inclusion:
    """matchNodeInclusionPolicies for one node, the affinity and taint checks done at most once."""

    __slots__ = ("pod", "node", "_aff", "_taints")

    def __init__(self, pod, node) -> None:
        self.pod, self.node, self._aff, self._taints = pod, node, None, None

    def includes(self, c: Constraint) -> bool:
        if c.honor_affinity:
            if self._aff is None:
                self._aff = required_matches(self.pod, self.node)
            if not self._aff:
                return False
        if c.honor_taints and self.node.taints:
            if self._taints is None:
                self._taints = find_untolerated_taint(self.node.taints, self.pod.tolerations) is not None
            if self._taints:
                return False
        return True


@dataclass
class _FilterState:
    cons: list[Constraint]
    counts: list[dict[str, int]]  # per constraint: domain -> matching pods
    mins: list[int]  # per constraint: the global minimum (0 below minDomains domains)
    self_match: list[int]


def filter_state(pod, snap, cons: list[Constraint]) -> _FilterState:
    counts: list[dict[str, int]] = [{} for _ in cons]
    keys = [c.key for c in cons]
    for n in snap.nodes:
        labels = n.labels
        if any(k not in labels for k in keys):
            continue
        inc = _Inclusion(pod, n)
        for i, c in enumerate(cons):
            if inc.includes(c):
                v = labels[c.key]
                counts[i][v] = counts[i].get(v, 0) + count_matching(pod, c.selector, n.pods)
    mins = [min(d.values()) if d and len(d) >= c.min_domains else 0 for c, d in zip(cons, counts)]
    return _FilterState(cons, counts, mins, [1 if c.selector.matches(pod.labels) else 0 for c in cons])


@dataclass
class _ScoreState:
    cons: list[Constraint]
    ignored: set[int] = field(default_factory=set)  # node rows missing a topology key
    counts: list[dict[str, int]] = field(default_factory=list)  # per constraint but hostname's
    weights: list[float] = field(default_factory=list)


def score_state(pod, snap, cons: list[Constraint], idx: np.ndarray) -> _ScoreState:
    st = _ScoreState(cons, counts=[{} for _ in cons])
    # only the pod's own constraints need every key (kube-scheduler's requireAllTopologies with
    # the system defaults): a node without a zone still gets hostname spreading
    require_all = bool(pod.topology_spread)
    keys = [c.key for c in cons]
    nodes = snap.nodes
    for r in idx:
        labels = nodes[r].labels
        if require_all and any(k not in labels for k in keys):
            st.ignored.add(int(r))
            continue
        for i, c in enumerate(cons):
            if c.key != HOSTNAME:
                st.counts[i].setdefault(labels.get(c.key, ""), 0)
    scored = len(idx) - len(st.ignored)
    st.weights = [math.log((scored if c.key == HOSTNAME else len(st.counts[i])) + 2) for i, c in enumerate(cons)]
    if not any(st.counts):
        return st
    for n in nodes:
        labels = n.labels
        if require_all and any(k not in labels for k in keys):
            continue
        inc = _Inclusion(pod, n)
        for i, c in enumerate(cons):
            d = st.counts[i]
            v = labels.get(c.key, "")
            if v in d and inc.includes(c):
                d[v] += count_matching(pod, c.selector, n.pods)
    return st


@register
class PodTopologySpread(Plugin):
    name = "PodTopologySpread"
    uniform_raw = 0  # every node's raw score when uniform_score applies
    events = ("Pod/Add", "Pod/Delete", "Node/Add", "Node/Update")

    def _filter_state(self, cs, pod, snap) -> _FilterState:
        st = cs.get(PRE_FILTER_KEY)
        if st is None:  # a Filter without PreFilter (preemption's what-if runs on a fresh state)
            st = cs[PRE_FILTER_KEY] = filter_state(pod, snap, constraints(pod, "DoNotSchedule"))
        return st

    def pre_filter(self, cs, pod, snap) -> Status | None:
        if not pod.topology_spread:
            return Status.skip()
        try:
            cons = constraints(pod, "DoNotSchedule")
        except ValueError as e:  # kube-scheduler fails the cycle on a selector it cannot parse
            return Status.error(f'running PreFilter plugin "{self.name}": {e}')
        if not cons:
            return Status.skip()
        cs[PRE_FILTER_KEY] = filter_state(pod, snap, cons)
        return None

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        st = self._filter_state(cs, pod, snap)
        n = len(idx)
        missing = np.zeros(n, dtype=bool)
        over = np.zeros(n, dtype=bool)
        nodes = snap.nodes
        for k, r in enumerate(idx):
            labels = nodes[r].labels
            for i, c in enumerate(st.cons):
                v = labels.get(c.key)
                if v is None:
                    missing[k] = True
                    break
                if st.counts[i].get(v, 0) + st.self_match[i] - st.mins[i] > c.max_skew:
                    over[k] = True
                    break
        reasons = {why: m for why, m in ((REASON_LABEL, missing), (REASON, over)) if m.any()}
        return FilterResult(~(missing | over), reasons=reasons, unresolvable_reasons=frozenset((REASON_LABEL,)))

    def pre_score(self, cs, pod, snap, idx: np.ndarray) -> None:
        cons = constraints(pod, "ScheduleAnyway", snap)
        cs[PRE_SCORE_KEY] = score_state(pod, snap, cons, idx) if cons else None

    def _score_state(self, cs, pod, snap, idx) -> _ScoreState | None:
        st = cs.get(PRE_SCORE_KEY, _UNSET)
        if st is _UNSET:
            self.pre_score(cs, pod, snap, idx)
            st = cs[PRE_SCORE_KEY]
        return st  # type: ignore[return-value]

    def uniform_score(self, cs, pod, snap) -> int | None:
        st = cs.get(PRE_SCORE_KEY, _UNSET)
        if st is _UNSET:
            return None if constraints(pod, "ScheduleAnyway", snap) else 100
        return None if st is not None else 100  # no constraint: all zero, normalised to 100

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        st = self._score_state(cs, pod, snap, idx)
        out = np.zeros(len(idx), dtype=np.int64)
        if st is None:
            return out
        nodes = snap.nodes
        for k, r in enumerate(idx):
            if int(r) in st.ignored:
                continue
            node = nodes[r]
            s = 0.0
            for i, c in enumerate(st.cons):
                v = node.labels.get(c.key)
                if v is None:
                    continue
                cnt = count_matching(pod, c.selector, node.pods) if c.key == HOSTNAME else st.counts[i].get(v, 0)
                s += cnt * st.weights[i] + (c.max_skew - 1)
            out[k] = math.floor(s + 0.5)  # Go's math.Round (half away from zero; s >= 0)
        return out

    def normalize(self, cs, pod, snap, idx, scores: np.ndarray) -> np.ndarray:
        if not len(scores):
            return scores
        st = cs.get(PRE_SCORE_KEY)
        ignored = (np.fromiter((int(r) in st.ignored for r in idx), dtype=bool, count=len(idx))
                   if st is not None and st.ignored else None)
        valid = scores if ignored is None else scores[~ignored]
        if not len(valid):
            return np.zeros(len(scores), dtype=np.int64)
        mx, mn = valid.max(), valid.min()
        out = (np.full(len(scores), 100, dtype=np.int64) if mx == 0
               else (100 * (mx + mn - scores) // mx).astype(np.int64))
        if ignored is not None:
            out[ignored] = 0
        return out
