"""Namespace controller: empties a namespace being deleted, then lets it go.

For a namespace with a ``deletionTimestamp`` and the ``kubernetes`` finalizer in
``spec.finalizers``, ``reconcile(name)`` discovers every namespaced resource from the API
(legacy discovery, refreshed every minute), deletes what is left in the namespace
(deletecollection where the resource supports it, else one DELETE per object), and once
every list comes back empty removes the finalizer through ``namespaces/<name>/finalize``; the
apiserver then deletes the namespace. Neighbours: ``garbagecollector`` (dependents), the
apiserver's namespace lifecycle.
"""

from __future__ import annotations

import time

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.manager import Manager
from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError
from controlplane.log import get_logger

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:namespace-controller (bootstrap_policy)
SERVICE_ACCOUNT = "namespace-controller"

log = get_logger(__name__)

FINALIZER = "kubernetes"
# events.k8s.io Events are the core Events, another view of the same objects: deleted once,
# through core/v1 (kube-controller-manager deletes a namespace's Events like its other content)
SKIP = {("events.k8s.io", "events"), ("", "bindings"), ("authorization.k8s.io", "localsubjectaccessreviews")}


class NamespaceController:
    def __init__(self, manager: Manager, *, workers: int = 2) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.ns_inf = manager.informer(R.NAMESPACES)
        self.recorder = manager.recorder("namespace-controller", SERVICE_ACCOUNT)
        self.controller = Controller("namespace", self.reconcile, workers=workers)
        self.ns_inf.add_handler(self._on_ns)
        self._discovered: list[tuple[Resource, set[str]]] = []
        self._discovered_at = 0.0
        manager.add(self.controller)

    def _on_ns(self, etype: str, ns: dict, old: dict | None) -> None:
        if etype != "DELETED" and (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.controller.enqueue(ns["metadata"]["name"])

    async def _resources(self) -> list[tuple[Resource, set[str]]]:
        if not self._discovered or time.monotonic() - self._discovered_at > 60:
            found = []
            for gv, entry in await self.client.discover():
                if "/" in entry["name"] or not entry.get("namespaced"):
                    continue
                res = R.from_discovery(gv, entry)
                verbs = set(entry.get("verbs") or [])
                if (res.group, res.plural) in SKIP or "list" not in verbs or not ({"delete", "deletecollection"} & verbs):
                    continue
                found.append((res, verbs))
            self._discovered, self._discovered_at = found, time.monotonic()
        return self._discovered

    async def reconcile(self, name: str) -> Result | None:
        ns = self.ns_inf.get(name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        remaining = 0
        for res, verbs in await self._resources():
            try:
                items = (await self.client.list(res, name)).get("items") or []
            except ApiStatusError as e:
                if e.code in (404, 405):
                    continue
                raise
            if not items:
                continue
            remaining += len(items)
            live = [o for o in items if not (o.get("metadata") or {}).get("deletionTimestamp")]
            if not live:
                continue
            if "deletecollection" in verbs:
                try:
                    await self.client.delete_collection(res, name, propagation_policy="Background")
                    continue
                except ApiStatusError as e:
                    if e.code not in (404, 405):
                        raise
            for o in live:
                try:
                    await self.client.delete(res, o["metadata"]["name"], name, propagation_policy="Background")
                except ApiStatusError as e:
                    if not e.not_found:
                        self.recorder.event(ns, "Warning", "NamespaceDeletionContentFailure",
                                            f"Failed to delete {res.plural} {o['metadata']['name']}: {e.message}")
                        raise
        if remaining:
            log.info("namespace not empty yet", namespace=name, remaining=remaining)
            return Result(requeue_after=1.0)
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": dict(ns["metadata"]),
                "spec": {"finalizers": [f for f in ns["spec"].get("finalizers") or [] if f != FINALIZER]}}
        try:
            await self.client.request("PUT", R.NAMESPACES.path(None, name, "finalize"), body=body)
        except ApiStatusError as e:
            if not e.not_found:
                raise
        return None


def setup(manager: Manager, workers: int = 2) -> NamespaceController:
    return NamespaceController(manager, workers=workers)
