"""Root CA publisher (kube-controller-manager's ``root-ca-cert-publisher``): every active
namespace has a ConfigMap ``kube-root-ca.crt`` whose ``ca.crt`` is the cluster CA, which the
projected ServiceAccount volume mounts as ``ca.crt`` so a pod can verify the apiserver.

The CA comes from the controller-manager's ``--root-ca-file`` (``manager.root_ca``); without
one the controller does nothing. ``reconcile(namespace)`` creates or corrects the ConfigMap.
"""

from __future__ import annotations

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.log import get_logger

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:root-ca-cert-publisher (bootstrap_policy)
SERVICE_ACCOUNT = "root-ca-cert-publisher"

log = get_logger(__name__)
NAME = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class RootCACertPublisher:
    def __init__(self, manager: Manager, root_ca: str, *, workers: int = 1) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.root_ca = root_ca
        self.ns_inf = manager.informer(R.NAMESPACES)
        self.cm_inf = manager.informer(R.CONFIGMAPS)
        self.controller = Controller("root-ca-cert-publisher", self.reconcile, workers=workers)
        self.ns_inf.add_handler(lambda t, o, old: t != "DELETED" and self.controller.enqueue(o["metadata"]["name"]))
        self.cm_inf.add_handler(self._on_cm)
        manager.add(self.controller)

    def _on_cm(self, etype: str, cm: dict, old: dict | None) -> None:
        if cm["metadata"].get("name") == NAME:
            self.controller.enqueue(cm["metadata"]["namespace"])

    async def reconcile(self, namespace: str) -> Result | None:
        ns = self.ns_inf.get(namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return None
        cm = self.cm_inf.get_by(namespace, NAME)
        want = {"ca.crt": self.root_ca}
        try:
            if cm is None:
                await self.client.create(R.CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": NAME, "namespace": namespace,
                                 "annotations": {"kubernetes.io/description": DESCRIPTION}},
                    "data": want}, namespace)
            elif cm.get("data") != want:
                await self.client.update(R.CONFIGMAPS, {**cm, "data": want})
        except ApiStatusError as e:
            if e.already_exists or e.not_found or e.conflict or e.code == 403:
                return None
            raise
        return None


def setup(manager: Manager, workers: int = 1) -> RootCACertPublisher | None:
    root_ca = getattr(manager, "root_ca", None)
    if not root_ca:
        log.info("root-ca-cert-publisher: no --root-ca-file, not started")
        return None
    return RootCACertPublisher(manager, root_ca, workers=workers)
