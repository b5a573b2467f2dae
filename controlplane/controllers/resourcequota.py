"""ResourceQuota controller (kube-controller-manager's ``resourcequota``): keeps each quota's
``status`` true -- ``status.hard`` = ``spec.hard`` and ``status.used`` = what the namespace's
objects selected by the quota's scopes cost now (``machinery.quota``: pods, their requests and
limits, services, object counts ``count/<resource>[.<group>]``).

``reconcile("<namespace>/<name>")`` recomputes from the informers' caches (pods, services,
configmaps, secrets, replicationcontrollers; any other counted resource is listed through the
API) and writes ``/status`` when it differs. The admission plugin charges each new object to
``status.used`` at once; this controller corrects the figures afterwards (deleted or finished
pods release their share, a write that failed after admission charged nothing). Woken by quota
changes and by changes of counted objects in a namespace that has quotas; every quota is
recomputed every 5 minutes (``--resource-quota-sync-period``' default).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import split_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.log import get_logger
from controlplane.machinery import quota as q

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:resourcequota-controller (bootstrap_policy)
SERVICE_ACCOUNT = "resourcequota-controller"

log = get_logger(__name__)
Obj = dict[str, Any]
RESYNC = 300.0
_INFORMED = {("", "pods"): R.PODS, ("", "services"): R.SERVICES, ("", "configmaps"): R.CONFIGMAPS,
             ("", "secrets"): R.SECRETS, ("", "replicationcontrollers"): R.REPLICATIONCONTROLLERS,
             ("", "resourcequotas"): R.RESOURCEQUOTAS, ("", "persistentvolumeclaims"): R.PERSISTENTVOLUMECLAIMS}


class ResourceQuotaController:
    def __init__(self, manager: Manager, *, workers: int = 2) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.quotas = manager.informer(R.RESOURCEQUOTAS)
        self.informers = {gr: manager.informer(res) for gr, res in _INFORMED.items()}
        self.recorder = manager.recorder("resourcequota-controller", SERVICE_ACCOUNT)
        self.controller = Controller("resourcequota", self.reconcile, workers=workers)
        self.quotas.add_handler(self._on_quota)
        for inf in self.informers.values():
            if inf is not self.quotas:
                inf.add_handler(self._on_object)
        manager.add(self.controller)

    def _on_quota(self, etype: str, obj: Obj, old: Obj | None) -> None:
        if etype == "DELETED":
            return
        if etype == "MODIFIED" and old is not None and old.get("spec") == obj.get("spec") \
                and (old.get("status") or {}).get("hard") == (obj.get("status") or {}).get("hard"):
            return  # (our own status write, or someone else's: the next resync checks it)
        md = obj["metadata"]
        self.controller.enqueue(f"{md['namespace']}/{md['name']}")
        self._on_object(etype, obj, old)  # (quotas may count resourcequotas)

    def _on_object(self, etype: str, obj: Obj, old: Obj | None) -> None:
        ns = (obj.get("metadata") or {}).get("namespace")
        if not ns:
            return
        for quota in self.quotas.list(ns):
            self.controller.enqueue(f"{ns}/{quota['metadata']['name']}")

    async def _objects(self, group: str, resource: str, namespace: str) -> list[Obj]:
        inf = self.informers.get((group, resource))
        if inf is not None:
            return inf.list(namespace)
        res = R.Resource(group, "v1", resource, "")
        try:
            return list((await self.client.list_all(res, namespace)).get("items") or [])
        except ApiStatusError as e:
            if e.not_found:
                return []  # (not served: nothing to count)
            raise

    async def compute_used(self, quota: Obj) -> dict[str, str]:
        namespace = quota["metadata"]["namespace"]
        hard = (quota.get("spec") or {}).get("hard") or {}
        totals: dict[str, Fraction] = {}
        by_evaluator: dict[tuple[str, str], list[str]] = {}
        for name in hard:
            ev = q.evaluator_for(name)
            if ev is not None:
                by_evaluator.setdefault(ev, []).append(name)
        for (group, resource), names in by_evaluator.items():
            objs = await self._objects(group, resource, namespace)
            for name in names:
                totals.setdefault(name, Fraction(0))
            for obj in objs:
                if not q.matches(quota, group, resource, obj):
                    continue
                cost = q.usage(group, resource, obj)
                for name in names:
                    totals[name] += cost.get(name, Fraction(0))
        return {k: q.fmt(v, hard.get(k)) for k, v in totals.items()}

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        quota = self.quotas.get_by(namespace, name)
        if quota is None:
            return None
        try:
            hard = dict((quota.get("spec") or {}).get("hard") or {})
            used = await self.compute_used(quota)
            status = quota.get("status") or {}
            same = status.get("hard") == hard and _same(status.get("used") or {}, used)
        except (TypeError, AttributeError, ValueError, KeyError) as e:
            # an object of a shape this controller cannot read (the apiserver's validation keeps
            # these out; older data may not be): say so on the quota, carry on with the others
            log.warning("cannot compute quota usage", quota=key, error=repr(e))
            self.recorder.event(quota, "Warning", "FailedSync", f"cannot compute usage: {e}")
            return Result(requeue_after=RESYNC)
        if same:
            return Result(requeue_after=RESYNC)
        new = {**quota, "status": {"hard": hard, "used": used}}
        try:
            await self.client.update_status(R.RESOURCEQUOTAS, new)
        except ApiStatusError as e:
            if e.not_found:
                return None
            if e.conflict:
                return Result(requeue=True)  # (admission charged it meanwhile: recompute)
            if e.code in (400, 403, 422):
                # refused for what it is (invalid, forbidden): retrying now would not help
                log.warning("quota status update refused", quota=key, code=e.code, error=e.message)
                self.recorder.event(quota, "Warning", "FailedUpdate", f"cannot update status: {e.message}")
                return Result(requeue_after=RESYNC)
            raise
        return Result(requeue_after=RESYNC)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(q.parse_list({k: a[k]}) == q.parse_list({k: b[k]}) for k in a)


def setup(manager: Manager, workers: int = 2) -> ResourceQuotaController:
    return ResourceQuotaController(manager, workers=workers)
