"""Disruption controller (kube-controller-manager's ``disruption``): keeps each
PodDisruptionBudget's status true, so that the Eviction API (``pods/eviction`` in the
apiserver, and through it ``kubectl drain``) can refuse an eviction that would take an
application below its budget.

For each PDB (``policy/v1``): the pods its selector picks in its namespace (a nil selector picks
none, ``{}`` every pod, as policy/v1 defines), the **expected** pod count and the **desired
healthy** count — an integer ``minAvailable`` is the desired count and the expected count is the
number of pods; a percentage ``minAvailable`` or any ``maxUnavailable`` is scaled (rounded up)
against the summed scale of the pods' controllers (a Deployment through its ReplicaSet, a
ReplicaSet, a ReplicationController, a StatefulSet, or any resource with a ``scale``
subresource); pods without a controller are "unmanaged" and reported in an Event —, the
**current healthy** count (Ready pods that are neither being deleted nor in ``disruptedPods``,
the map the Eviction API writes before it deletes a pod, kept for two minutes) and
``disruptionsAllowed = max(0, currentHealthy - desiredHealthy)`` (0 while no pod is expected),
with the ``DisruptionAllowed`` condition (``SufficientPods`` / ``InsufficientPods``). A budget
whose counts cannot be computed (a controller that cannot be found, a bad percentage) is
failed safe: ``disruptionsAllowed`` 0 and the condition ``SyncFailed`` with the error, and a
Warning Event; the other budgets carry on.

``compute`` is the pure part (table-tested); ``reconcile`` reads the caches, finds the
controllers' scales and writes the status only when it changed. Neighbours: the apiserver's
eviction handler (``apiserver/endpoints/subresources.py``), ``controllerutil`` (owner
references).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import podutil as pu
from controlplane.log import get_logger
from controlplane.machinery.disruption import set_condition
from controlplane.machinery.selectors import LabelSelector
from controlplane.machinery.timestamps import parse_time_or_none

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:disruption-controller (bootstrap_policy)
SERVICE_ACCOUNT = "disruption-controller"

log = get_logger(__name__)

COMPONENT = "controllermanager"  # the Events' source, as kube-controller-manager's disruption controller
DELETION_TIMEOUT = 120.0  # a pod in disruptedPods not deleted by then counts again (Kubernetes' 2 min)
SCALE_DISCOVERY_TTL = 30.0

# (controller UID, its scale) or None when no controller of that reference exists
ScaleOf = Callable[[dict, str], Awaitable["tuple[str, int] | None"]]


class ExpectedCountError(Exception):
    """The expected or desired count cannot be computed (Kubernetes' SyncFailed)."""


def scaled_value(value: Any, total: int) -> int:
    """``intstr.GetScaledValueFromIntOrPercent(value, total, roundUp=true)``."""
    if isinstance(value, bool):
        raise ExpectedCountError(f"invalid value for IntOrString: invalid type: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if not value.endswith("%"):
            raise ExpectedCountError(f"invalid value for IntOrString: invalid type: string is not a percentage")
        try:
            pct = int(value[:-1])
        except ValueError:
            raise ExpectedCountError(f'invalid value "{value}": strconv.Atoi: parsing "{value[:-1]}": invalid syntax') from None
        return math.ceil(pct * total / 100)
    raise ExpectedCountError(f"invalid value for IntOrString: invalid type: {type(value).__name__}")


def pods_for(pdb: dict, pods: list[dict]) -> list[dict]:
    """The pods ``pdb``'s selector picks (nil: none, ``{}``: all; policy/v1). An invalid
    selector raises ``ValueError``."""
    sel = LabelSelector.from_dict((pdb.get("spec") or {}).get("selector"))
    return [p for p in pods if sel.matches((p.get("metadata") or {}).get("labels") or {})]


def disrupted_map(pdb: dict, pods: list[dict], now: float) -> tuple[dict[str, str], float | None, list[dict]]:
    """``buildDisruptedPodMap``: the ``disruptedPods`` entries still pending (pod present, not
    yet being deleted, within ``DELETION_TIMEOUT``), the earliest time one of them expires, and
    the pods that should have been deleted by now but were not."""
    old = (pdb.get("status") or {}).get("disruptedPods") or {}
    out: dict[str, str] = {}
    recheck: float | None = None
    overdue: list[dict] = []
    if not old:
        return out, recheck, overdue
    for p in pods:
        md = p.get("metadata") or {}
        if md.get("deletionTimestamp"):
            continue
        name = md.get("name", "")
        if name not in old:
            continue
        at = parse_time_or_none(old[name])
        if at is None:
            continue
        expires = at + DELETION_TIMEOUT
        if expires < now:
            overdue.append(p)
        else:
            out[name] = old[name]
            recheck = expires if recheck is None else min(recheck, expires)
    return out, recheck, overdue


def count_healthy(pods: list[dict], disrupted: dict[str, str], now: float) -> int:
    """``countHealthyPods``: Ready pods that are not being deleted nor about to be."""
    n = 0
    for p in pods:
        md = p.get("metadata") or {}
        if md.get("deletionTimestamp"):
            continue
        at = parse_time_or_none(disrupted.get(md.get("name", ""))) if md.get("name", "") in disrupted else None
        if at is not None and at + DELETION_TIMEOUT > now:
            continue
        if pu.is_pod_ready(p):
            n += 1
    return n


@dataclass
class Computed:
    """What one sync decided."""

    status: dict
    recheck_at: float | None = None  # when a disruptedPods entry expires
    overdue: list[dict] = field(default_factory=list)  # pods expected deleted that were not
    unmanaged: list[str] = field(default_factory=list)  # pods without a controller


def status_for(pdb: dict, current_healthy: int, desired_healthy: int, expected: int, disrupted: dict[str, str],
               now: float) -> dict:
    """``updatePdbStatus``'s new status (conditions carried over and updated)."""
    allowed = current_healthy - desired_healthy
    if expected <= 0 or allowed <= 0:
        allowed = 0
    old = pdb.get("status") or {}
    generation = int((pdb.get("metadata") or {}).get("generation") or 0)
    conditions = [dict(c) for c in old.get("conditions") or []]
    if allowed > 0:
        set_condition(conditions, "True", "SufficientPods", "", generation, now)
    else:
        set_condition(conditions, "False", "InsufficientPods", "", generation, now)
    st: dict[str, Any] = {"observedGeneration": generation, "disruptionsAllowed": allowed,
                          "currentHealthy": current_healthy, "desiredHealthy": desired_healthy,
                          "expectedPods": expected, "conditions": conditions}
    if disrupted:
        st["disruptedPods"] = dict(disrupted)
    return st


def fail_safe_status(pdb: dict, error: str, now: float) -> dict:
    """``failSafe``: nothing may be disrupted while the budget cannot be computed."""
    old = dict(pdb.get("status") or {})
    conditions = [dict(c) for c in old.get("conditions") or []]
    set_condition(conditions, "False", "SyncFailed", error, int(old.get("observedGeneration") or 0), now)
    for k in ("currentHealthy", "desiredHealthy", "expectedPods"):
        old.setdefault(k, 0)
    old["disruptionsAllowed"] = 0
    old["conditions"] = conditions
    return old


async def compute(pdb: dict, pods: list[dict], scale_of: ScaleOf, now: float) -> Computed:
    """One sync of ``pdb`` over its selected ``pods``; ``ExpectedCountError`` when the counts
    cannot be computed."""
    spec = pdb.get("spec") or {}
    ns = (pdb.get("metadata") or {}).get("namespace") or ""
    unmanaged: list[str] = []

    async def expected_scale() -> int:
        scales: dict[str, int] = {}
        for p in pods:
            ref = cu.controller_ref(p)
            if ref is None:
                unmanaged.append((p.get("metadata") or {}).get("name", ""))
                continue
            if ref.get("uid") in scales:
                continue
            found = await scale_of(ref, ns)
            if found is None:
                raise ExpectedCountError(f'found no controllers for pod "{(p.get("metadata") or {}).get("name", "")}"')
            scales[found[0]] = found[1]
        return sum(scales.values())

    if spec.get("maxUnavailable") is not None:
        expected = await expected_scale()
        desired = max(0, expected - scaled_value(spec["maxUnavailable"], expected))
    elif spec.get("minAvailable") is not None:
        m = spec["minAvailable"]
        if isinstance(m, int) and not isinstance(m, bool):
            desired, expected = m, len(pods)
        else:
            expected = await expected_scale()
            desired = scaled_value(m, expected)
    else:
        expected, desired = 0, 0
    disrupted, recheck, overdue = disrupted_map(pdb, pods, now)
    healthy = count_healthy(pods, disrupted, now)
    return Computed(status_for(pdb, healthy, desired, expected, disrupted, now), recheck, overdue, unmanaged)


def _same(old: dict, new: dict) -> bool:
    """Status equality as ``updatePdbStatus`` decides it (conditions compared whole)."""
    keys = ("observedGeneration", "disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods")
    return (all(int(old.get(k) or 0) == int(new.get(k) or 0) for k in keys)
            and (old.get("disruptedPods") or {}) == (new.get("disruptedPods") or {})
            and (old.get("conditions") or []) == (new.get("conditions") or []))


def selector_text(sel: dict | None) -> str:
    """A PDB's selector as Go's ``%v`` of a ``*metav1.LabelSelector`` prints it (the Event)."""
    if sel is None:
        return "nil"
    labels = "".join(f"{k}: {v}," for k, v in sorted((sel.get("matchLabels") or {}).items()))
    exprs = "".join(f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
                    f"Values:[{' '.join(e.get('values') or [])}],}}," for e in sel.get("matchExpressions") or [])
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}")


class _ScaleFinder:
    """The controllers' scales (``finders``: ReplicaSet, Deployment, ReplicationController,
    StatefulSet from the caches; any other kind through its ``scale`` subresource)."""

    def __init__(self, client: RestClient, manager: Manager) -> None:
        self.client = client
        self.rs_inf = manager.informer(R.REPLICASETS)
        self.dep_inf = manager.informer(R.DEPLOYMENTS)
        self.rc_inf = manager.informer(R.REPLICATIONCONTROLLERS)
        self.sts_inf = manager.informer(R.STATEFULSETS)
        self._resources: dict[str, tuple[float, list[dict]]] = {}

    @staticmethod
    def _match(obj: dict | None, ref: dict) -> bool:
        return obj is not None and (obj.get("metadata") or {}).get("uid") == ref.get("uid")

    @staticmethod
    def _replicas(obj: dict) -> int:
        r = (obj.get("spec") or {}).get("replicas")
        return 1 if r is None else int(r)

    async def __call__(self, ref: dict, ns: str) -> tuple[str, int] | None:
        kind, api_version, name = ref.get("kind"), ref.get("apiVersion", ""), ref.get("name", "")
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        if kind == "ReplicaSet" and group == "apps":
            rs = self.rs_inf.get(f"{ns}/{name}")
            if not self._match(rs, ref):
                return None
            assert rs is not None
            owner = cu.controller_ref(rs)
            if owner is not None and owner.get("kind") == "Deployment":
                dep = self.dep_inf.get(f"{ns}/{owner.get('name', '')}")
                if not self._match(dep, owner):
                    return None
                assert dep is not None
                return dep["metadata"]["uid"], self._replicas(dep)
            return rs["metadata"]["uid"], self._replicas(rs)
        if kind == "ReplicationController" and group == "":
            rc = self.rc_inf.get(f"{ns}/{name}")
            return (rc["metadata"]["uid"], self._replicas(rc)) if rc is not None and self._match(rc, ref) else None
        if kind == "StatefulSet" and group == "apps":
            sts = self.sts_inf.get(f"{ns}/{name}")
            return (sts["metadata"]["uid"], self._replicas(sts)) if sts is not None and self._match(sts, ref) else None
        return await self._generic(ref, ns, api_version, name)

    async def _generic(self, ref: dict, ns: str, api_version: str, name: str) -> tuple[str, int] | None:
        """``getScaleController``: any kind with a ``scale`` subresource."""
        base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version or 'v1'}"
        now = time.monotonic()
        hit = self._resources.get(base)
        if hit is None or now - hit[0] > SCALE_DISCOVERY_TTL:
            try:
                entries = (await self.client.request("GET", base)).get("resources") or []
            except ApiStatusError as e:
                if e.not_found:
                    return None
                raise
            hit = self._resources[base] = (now, entries)
        names = {e.get("name", "") for e in hit[1]}
        plural = next((e["name"] for e in hit[1] if e.get("kind") == ref.get("kind") and "/" not in e.get("name", "")
                       and f"{e['name']}/scale" in names), None)
        if plural is None:
            return None
        try:
            scale = await self.client.request("GET", f"{base}/namespaces/{ns}/{plural}/{name}/scale")
        except ApiStatusError as e:
            if e.not_found:
                return None
            raise
        if (scale.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return ref["uid"], int((scale.get("spec") or {}).get("replicas") or 0)


class DisruptionController:
    def __init__(self, manager: Manager, *, workers: int = 2, clock: Callable[[], float] = time.time) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.pdb_inf = manager.informer(R.PODDISRUPTIONBUDGETS)
        self.pod_inf = manager.informer(R.PODS)
        self.recorder = manager.recorder(COMPONENT, SERVICE_ACCOUNT)
        self.scales = _ScaleFinder(manager.client_for(SERVICE_ACCOUNT), manager)
        self.clock = clock
        self.controller = Controller("disruption", self.reconcile, workers=workers)
        self.pdb_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.pod_inf.add_handler(self._on_pod)
        # a controller's scale changing changes a percentage budget
        for inf in (self.scales.rs_inf, self.scales.dep_inf, self.scales.rc_inf, self.scales.sts_inf):
            inf.add_handler(self._on_owner)
        manager.add(self.controller)

    def _enqueue_matching(self, ns: str, label_sets: list[dict]) -> None:
        for pdb in self.pdb_inf.list(ns):
            try:
                sel = LabelSelector.from_dict((pdb.get("spec") or {}).get("selector"))
            except ValueError:
                continue
            if any(sel.matches(ls) for ls in label_sets):
                self.controller.enqueue(object_key(pdb))

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        label_sets = [(pod.get("metadata") or {}).get("labels") or {}]
        if old is not None and old is not pod:
            label_sets.append((old.get("metadata") or {}).get("labels") or {})
        self._enqueue_matching((pod.get("metadata") or {}).get("namespace") or "", label_sets)

    def _on_owner(self, etype: str, obj: dict, old: dict | None) -> None:
        if old is not None and (old.get("spec") or {}).get("replicas") == (obj.get("spec") or {}).get("replicas"):
            return
        md = obj.get("metadata") or {}
        template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
        self._enqueue_matching(md.get("namespace") or "", [template.get("labels") or {}])

    async def reconcile(self, key: str) -> Result | None:
        pdb = self.pdb_inf.get(key)
        if pdb is None:
            return None
        ns = (pdb.get("metadata") or {}).get("namespace") or ""
        now = self.clock()
        try:
            pods = pods_for(pdb, self.pod_inf.list(ns))
        except ValueError as e:
            self.recorder.event(pdb, "Warning", "NoPods", f"Failed to get pods: {e}")
            return await self._fail_safe(pdb, str(e), now)
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            got = await compute(pdb, pods, self.scales, now)
        except ExpectedCountError as e:
            self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {e}")
            log.info("failed to sync pod disruption budget", pdb=key, error=str(e))
            return await self._fail_safe(pdb, str(e), now)
        if got.unmanaged:
            self.recorder.event(pdb, "Warning", "UnmanagedPods",
                                f"Pods selected by this PodDisruptionBudget (selector: "
                                f"{selector_text((pdb.get('spec') or {}).get('selector'))}) were found to be unmanaged. "
                                "As a result, the status of the PDB cannot be calculated correctly, which may result in "
                                "undefined behavior. To account for these pods please set \".spec.minAvailable\" field "
                                "of the PDB to an integer value.")
        for p in got.overdue:
            self.recorder.event(p, "Warning", "NotDeleted",
                                f"Pod was expected by PDB {ns}/{pdb['metadata']['name']} to be deleted but it wasn't")
        await self._write(pdb, got.status)
        if got.recheck_at is not None:
            return Result(requeue_after=max(0.1, got.recheck_at - now))
        return None

    async def _fail_safe(self, pdb: dict, error: str, now: float) -> None:
        await self._write(pdb, fail_safe_status(pdb, error, now))
        return None

    async def _write(self, pdb: dict, status: dict) -> None:
        if _same(pdb.get("status") or {}, status):
            return
        obj = {**pdb, "status": status}
        try:
            await self.client.update(R.PODDISRUPTIONBUDGETS, obj, subresource="status")
        except ApiStatusError as e:
            if e.not_found:
                return
            raise  # a conflict: the newer object is on its way through the watch; retried


def setup(manager: Manager, workers: int = 2) -> DisruptionController:
    return DisruptionController(manager, workers=workers)
