"""Pure DaemonSet decisions, ported from kube-controller-manager's ``daemon`` package (1.32):
which nodes should run a daemon pod and which may keep one (``NodeShouldRunDaemonPod``), what
to create and delete on one node (``podsShouldBeOnNode``), the RollingUpdate step with and
without ``maxSurge`` (``rollingUpdate``), the status counts (``updateDaemonSetStatus``) and
the failed-pod back-off (``flowcontrol.Backoff``). No I/O: ``daemonset`` reads the caches,
calls these and acts on the answers; ``tests/unit/test_daemonset_logic.py`` checks them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from controlplane.controllers import controllerutil as cu
from controlplane.controllers import deploymentutil as du
from controlplane.controllers import podutil as pu
from controlplane.machinery.scheduling import find_untolerated_taint, required_node_affinity_matches

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

# ``AddOrUpdateDaemonPodTolerations`` (``network-unavailable`` only for hostNetwork pods)
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
NETWORK_UNAVAILABLE = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}


def daemon_tolerations(spec: dict) -> list[dict]:
    """The tolerations a daemon pod with this spec gets on top of its own."""
    return DAEMON_TOLERATIONS + ([NETWORK_UNAVAILABLE] if spec.get("hostNetwork") else [])


def node_should_run(template_spec: dict, node: dict) -> tuple[bool, bool]:
    """``NodeShouldRunDaemonPod``: (should run, should continue running). A node the pod's
    ``nodeName``, node selector or required node affinity does not fit gets neither; a node
    with an untolerated NoSchedule/NoExecute taint gets no new pod, but a pod already there
    keeps running unless one of those taints is NoExecute."""
    name = node["metadata"]["name"]
    if template_spec.get("nodeName") not in (None, "", name):
        return False, False
    if not required_node_affinity_matches(template_spec, cu.labels_of(node), name):
        return False, False
    tols = list(template_spec.get("tolerations") or []) + daemon_tolerations(template_spec)
    taints = (node.get("spec") or {}).get("taints")
    if find_untolerated_taint(taints, tols) is None:
        return True, True
    return False, find_untolerated_taint(taints, tols, ("NoExecute",)) is None


def pin_to_node(spec: dict, node_name: str) -> dict:
    """The pod spec with its required node affinity replaced by ``metadata.name In [node]``
    (``ReplaceDaemonSetPodNodeNameNodeAffinity``) and the daemon tolerations added."""
    spec = copy.deepcopy(spec)
    aff = spec.setdefault("affinity", {})
    na = aff.setdefault("nodeAffinity", {})
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    tols = list(spec.get("tolerations") or [])
    for t in daemon_tolerations(spec):
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
            tols.append(dict(t))
    spec["tolerations"] = tols
    return spec


def pod_node(pod: dict) -> str | None:
    """``GetTargetNodeName``: ``spec.nodeName``, else the node of its ``matchFields`` pin."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    for t in terms:
        for f in t.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and f.get("values"):
                return f["values"][0]
    return None


def by_creation(pods: list[dict]) -> list[dict]:
    """``podByCreationTimestampAndPhase``: scheduled pods first, then oldest, then by name."""
    return sorted(pods, key=lambda p: (not (p.get("spec") or {}).get("nodeName"),
                                       p["metadata"].get("creationTimestamp") or "", p["metadata"].get("name", "")))


def nodes_to_pods(pods: list[dict]) -> dict[str, list[dict]]:
    """``getNodesToDaemonPods``: the pods by target node, oldest first; finished pods already
    being deleted are left out (the controller has nothing more to do with them)."""
    out: dict[str, list[dict]] = {}
    for p in by_creation(pods):
        if pu.phase(p) in ("Succeeded", "Failed") and pu.is_terminating(p):
            continue
        node = pod_node(p)
        if node is not None:
            out.setdefault(node, []).append(p)
    return out


def _strategy(ds: dict) -> dict:
    return (ds.get("spec") or {}).get("updateStrategy") or {"type": "RollingUpdate"}


def max_surge(ds: dict, desired: int) -> int:
    """``SurgeCount``: RollingUpdate's ``maxSurge`` scaled against the desired pods, rounded
    up; 0 (no surge) for OnDelete or when unset."""
    strategy = _strategy(ds)
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    return du.int_or_percent((strategy.get("rollingUpdate") or {}).get("maxSurge"), desired, True, default="0")


def max_unavailable(ds: dict, desired: int) -> int:
    """``UnavailableCount``: ``maxUnavailable`` scaled against the desired pods, rounded up."""
    strategy = _strategy(ds)
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    return du.int_or_percent((strategy.get("rollingUpdate") or {}).get("maxUnavailable"), desired, True, default="0")


def allows_surge(ds: dict) -> bool:
    """``AllowsSurge``: a non-zero ``maxSurge`` (scaled against one pod)."""
    return max_surge(ds, 1) != 0


def template_generation(ds: dict) -> str | None:
    """``GetTemplateGeneration``: the ``deprecated.daemonset.template.generation`` annotation."""
    return ((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION)


def is_updated(pod: dict, h: str, generation: str | None) -> bool:
    """``IsPodUpdated``: the pod carries the template's hash, or its template generation."""
    labels = cu.labels_of(pod)
    return (bool(h) and labels.get(HASH_LABEL) == h) or (generation is not None and labels.get(GENERATION_LABEL) == generation)


@dataclass
class NodeActions:
    """What ``pods_should_be_on_node`` asks for one node."""

    create: bool = False
    delete: list[dict] = field(default_factory=list)  # excess, misplaced or succeeded pods
    failed: list[dict] = field(default_factory=list)  # failed pods (deleted under a back-off)
    succeeded: list[dict] = field(default_factory=list)  # (also in ``delete``: for the Event)


def pods_should_be_on_node(should_run: bool, should_continue: bool, pods: list[dict], h: str,
                           generation: str | None, surge: bool, min_ready: int, now: float) -> NodeActions:
    """``podsShouldBeOnNode`` for one node and its daemon pods (oldest first). A node that
    should run one and has none gets one. A node where the pods may continue: failed pods are
    handed back for deletion under the back-off, succeeded ones deleted; without surge all but
    the oldest running pod go (a replacement waits for a node without pods, so not while one
    is terminating); with surge a node left without a running pod gets one at once, and the
    oldest new and oldest old pod both stay only while the old one is ready and the new one
    not yet available. A node where they may not continue loses all of its pods."""
    out = NodeActions()
    if should_run and not pods:
        out.create = True
        return out
    if should_continue:
        running = []
        for p in pods:
            if pu.is_terminating(p):
                continue
            if pu.phase(p) == "Failed":
                out.failed.append(p)
            elif pu.phase(p) == "Succeeded":
                out.succeeded.append(p)
                out.delete.append(p)
            else:
                running.append(p)
        running = by_creation(running)
        if not surge:
            out.delete += running[1:]
            return out
        if len(running) <= 1:
            out.create = not running and should_run
            return out
        oldest_new = oldest_old = None
        for p in running:
            if is_updated(p, h, generation):
                if oldest_new is None:
                    oldest_new = p
                    continue
            elif oldest_old is None:
                oldest_old = p
                continue
            out.delete.append(p)
        if oldest_new is not None and oldest_old is not None and (
                not pu.is_pod_ready(oldest_old) or pu.is_pod_available(oldest_new, min_ready, now)):
            out.delete.append(oldest_old)
        return out
    out.delete = [p for p in pods if not pu.is_terminating(p)]
    return out


def unscheduled_without_node(existing: set[str], by_node: dict[str, list[dict]]) -> list[dict]:
    """``getUnscheduledPodsWithoutNode``: pods pinned to a node that is gone and never bound
    (nothing else would remove them; bound ones are podgc's)."""
    return [p for n, ps in by_node.items() if n not in existing for p in ps
            if not (p.get("spec") or {}).get("nodeName") and not pu.is_terminating(p)]


def updated_pods_on_node(pods: list[dict], h: str, generation: str | None) -> tuple[dict | None, dict | None, bool]:
    """``findUpdatedPodsOnNode``: (new pod, old pod, ok); not ok with two of either kind."""
    new = old = None
    for p in pods:
        if pu.is_terminating(p):
            continue
        if is_updated(p, h, generation):
            if new is not None:
                return None, None, False
            new = p
        else:
            if old is not None:
                return None, None, False
            old = p
    return new, old, True


def rolling_update(by_node: dict[str, list[dict]], should_run: dict[str, bool], h: str, generation: str | None,
                   surge: int, unavailable: int, min_ready: int, now: float) -> tuple[list[dict], list[str]]:
    """``rollingUpdate``: (old pods to delete, nodes to create a new pod on). ``by_node`` holds
    every node with daemon pods, ``should_run`` every existing node (a node missing from it is
    treated as one that should not run the pod).

    Without surge, old pods are deleted while the unavailable ones stay within
    ``unavailable`` (unavailable old pods at once); the next pass creates their replacements.
    With surge, a node whose old pod is unavailable gets its new pod at once, up to ``surge``
    nodes with an available old pod get one beside it, and an old pod goes once the new one
    beside it is available. An old pod on a node that should no longer get one (an untolerated
    NoSchedule taint) goes at once when unavailable, else only while more pods are available
    than desired: under surge the application keeps its full availability."""
    desired = sum(1 for run in should_run.values() if run)
    nodes = dict(by_node)
    for n, run in should_run.items():
        if run:
            nodes.setdefault(n, [])
    if desired > 0 and unavailable == 0 and surge == 0:
        unavailable = 1
    if surge == 0:
        num_unavailable = 0
        allowed: list[dict] = []
        candidates: list[dict] = []
        for n in sorted(nodes):
            new, old, ok = updated_pods_on_node(nodes[n], h, generation)
            if not ok or (old is None) == (new is None):
                num_unavailable += 1
            elif new is not None:
                if not pu.is_pod_available(new, min_ready, now):
                    num_unavailable += 1
            elif old is not None and not pu.is_pod_available(old, min_ready, now):
                allowed.append(old)
                num_unavailable += 1
            elif num_unavailable < unavailable:
                candidates.append(old)
        remaining = min(max(unavailable - num_unavailable, 0), len(candidates))
        return allowed + candidates[:remaining], []
    delete: list[dict] = []
    should_not_run: list[dict] = []
    allowed_nodes: list[str] = []
    candidate_nodes: list[str] = []
    num_surge = num_available = 0
    for n in sorted(nodes):
        new, old, ok = updated_pods_on_node(nodes[n], h, generation)
        if not ok:
            num_surge += 1
            continue
        shown = old if old is not None else new
        if shown is not None and pu.is_pod_available(shown, min_ready, now):
            num_available += 1
        if old is None:
            continue
        if new is None:
            if not pu.is_pod_available(old, min_ready, now):
                if not should_run.get(n, False):
                    delete.append(old)
                else:
                    allowed_nodes.append(n)
            elif not should_run.get(n, False):
                should_not_run.append(old)
            elif num_surge < surge:
                candidate_nodes.append(n)
        elif not pu.is_pod_available(new, min_ready, now):
            num_surge += 1
        else:
            delete.append(old)
    deletable = min(max(num_available - desired, 0), len(should_not_run))
    delete += should_not_run[:deletable]
    remaining = min(max(surge - num_surge, 0), len(candidate_nodes))
    return delete, allowed_nodes + candidate_nodes[:remaining]


def status_counts(should_run: dict[str, bool], by_node: dict[str, list[dict]], h: str, generation: str | None,
                  min_ready: int, now: float) -> dict[str, int]:
    """``updateDaemonSetStatus``'s counts: over the nodes that should run a pod, the oldest pod
    of each; the nodes that should not but have pods are misscheduled."""
    desired = current = ready = available = updated = misscheduled = 0
    for n, run in should_run.items():
        pods = by_node.get(n) or []
        if not run:
            misscheduled += bool(pods)
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        first = by_creation(pods)[0]
        if pu.is_pod_ready(first):
            ready += 1
            if pu.is_pod_available(first, min_ready, now):
                available += 1
        if is_updated(first, h, generation):
            updated += 1
    return {"desiredNumberScheduled": desired, "currentNumberScheduled": current, "numberMisscheduled": misscheduled,
            "numberReady": ready, "numberAvailable": available, "updatedNumberScheduled": updated,
            "numberUnavailable": desired - available}


@dataclass
class FailedPodBackoff:
    """client-go's ``flowcontrol.Backoff`` as the daemon controller uses it for failed pods
    (1 s doubling to 15 min per DaemonSet and node): a failed pod is deleted only when the
    node's key is not in back-off since its last deletion; an entry unused for twice the cap
    starts over. ``now`` is passed in (monotonic seconds)."""

    initial: float = 1.0
    cap: float = 900.0
    entries: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (delay, last update)

    def in_backoff(self, key: str, now: float) -> bool:
        e = self.entries.get(key)
        return e is not None and now - e[1] < e[0]

    def delay(self, key: str) -> float:
        e = self.entries.get(key)
        return e[0] if e else 0.0

    def next(self, key: str, now: float) -> None:
        e = self.entries.get(key)
        if e is None or now - e[1] > 2 * self.cap:
            self.entries[key] = (self.initial, now)
        else:
            self.entries[key] = (min(e[0] * 2, self.cap), now)

    def gc(self, now: float) -> None:
        """Drops entries unused for twice the cap (``GC``)."""
        for k in [k for k, (_, t) in self.entries.items() if now - t > 2 * self.cap]:
            del self.entries[k]
