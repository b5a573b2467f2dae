"""ServiceAccount controller: every active namespace has a ``default`` ServiceAccount.

``reconcile(namespace)`` creates ``default`` when the cache lacks it (AlreadyExists is fine);
namespace additions and deletions of a ``default`` ServiceAccount wake it. Neighbours:
``namespace`` (terminating namespaces are skipped).
"""

from __future__ import annotations

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.log import get_logger

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:service-account-controller (bootstrap_policy)
SERVICE_ACCOUNT = "service-account-controller"

log = get_logger(__name__)
DEFAULT = "default"


class ServiceAccountController:
    def __init__(self, manager: Manager, *, workers: int = 1) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.ns_inf = manager.informer(R.NAMESPACES)
        self.sa_inf = manager.informer(R.SERVICEACCOUNTS)
        self.recorder = manager.recorder("serviceaccount-controller", SERVICE_ACCOUNT)
        self.controller = Controller("serviceaccount", self.reconcile, workers=workers)
        self.ns_inf.add_handler(lambda t, o, old: t != "DELETED" and self.controller.enqueue(o["metadata"]["name"]))
        self.sa_inf.add_handler(self._on_sa)
        manager.add(self.controller)

    def _on_sa(self, etype: str, sa: dict, old: dict | None) -> None:
        if etype == "DELETED" and sa["metadata"].get("name") == DEFAULT:
            self.controller.enqueue(sa["metadata"]["namespace"])

    async def reconcile(self, namespace: str) -> Result | None:
        ns = self.ns_inf.get(namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        if self.sa_inf.get_by(namespace, DEFAULT) is not None:
            return None
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT, "namespace": namespace}}
        try:
            await self.client.create(R.SERVICEACCOUNTS, sa, namespace)
        except ApiStatusError as e:
            if e.already_exists or e.not_found:
                return None
            if e.code == 403:  # namespace terminating
                return None
            raise
        return None


def setup(manager: Manager, workers: int = 1) -> ServiceAccountController:
    return ServiceAccountController(manager, workers=workers)
