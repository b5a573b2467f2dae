"""CSR approving controller (kube-controller-manager's ``csrapproving``): approves node client
certificate requests the way Kubernetes' SubjectAccessReview approver does, so an agent that
joins with a bootstrap token gets its certificate without a person in the loop.

A ``kubernetes.io/kube-apiserver-client-kubelet`` request whose subject is
``system:node:<name>`` in ``O=system:nodes`` with client usages is approved when its
requester may ``create`` ``certificatesigningrequests/nodeclient`` (bootstrap tokens: a
first certificate) or is that very node and may create ``.../selfnodeclient`` (renewal). A
``kubernetes.io/kubelet-serving`` request is approved when the requester is the node named in
its subject (k3s approves these too; Kubernetes leaves them to the operator -- see
docs/security.md). Anything else is left alone. Neighbours: ``csrsigning`` signs what is
approved.
"""

from __future__ import annotations

import datetime as _dt

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers.certutil import has_condition, parse_request, subject
from controlplane.log import get_logger

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:certificate-controller (bootstrap_policy)
SERVICE_ACCOUNT = "certificate-controller"

log = get_logger(__name__)
CLIENT_KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
CLIENT_USAGES = ({"digital signature", "key encipherment", "client auth"}, {"digital signature", "client auth"})
SERVING_USAGES = ({"digital signature", "key encipherment", "server auth"}, {"digital signature", "server auth"})


def is_decided(csr: dict) -> bool:
    return any(has_condition(csr, k) for k in ("Approved", "Denied", "Failed"))


def recognize(csr: dict) -> str | None:
    """"nodeclient", "selfnodeclient", "selfnodeserving" or None (not ours to approve)."""
    spec = csr.get("spec") or {}
    req = parse_request(csr)
    if req is None:
        return None
    cn, orgs = subject(req)
    usages = set(spec.get("usages") or [])
    if not cn.startswith("system:node:") or len(cn) == len("system:node:") or orgs != ["system:nodes"]:
        return None
    if spec.get("signerName") == CLIENT_KUBELET and usages in CLIENT_USAGES:
        return "selfnodeclient" if spec.get("username") == cn else "nodeclient"
    if spec.get("signerName") == KUBELET_SERVING and usages in SERVING_USAGES and spec.get("username") == cn:
        return "selfnodeserving"
    return None


class CSRApprovingController:
    def __init__(self, manager: Manager, *, workers: int = 1) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.csrs = manager.informer(R.CERTIFICATESIGNINGREQUESTS)
        self.controller = Controller("csrapproving", self.reconcile, workers=workers)
        self.csrs.add_handler(lambda t, o, old: t != "DELETED" and self.controller.enqueue(o["metadata"]["name"]))
        manager.add(self.controller)

    async def _allowed(self, csr: dict, subresource: str) -> bool:
        spec = csr.get("spec") or {}
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {"user": spec.get("username", ""), "uid": spec.get("uid", ""),
                        "groups": spec.get("groups") or [], "extra": spec.get("extra") or {},
                        "resourceAttributes": {"group": "certificates.k8s.io", "resource": "certificatesigningrequests",
                                               "verb": "create", "subresource": subresource}}}
        out = await self.client.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=sar)
        return bool(((out or {}).get("status") or {}).get("allowed"))

    async def reconcile(self, name: str) -> Result | None:
        csr = self.csrs.get(name)
        if csr is None or is_decided(csr) or (csr.get("status") or {}).get("certificate"):
            return None
        kind = recognize(csr)
        if kind is None:
            return None
        if kind != "selfnodeserving" and not await self._allowed(csr, kind):
            log.info("csr not approved: requester may not", csr=name, recognizer=kind)
            return None
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        msg = {"nodeclient": "Auto approving kubelet client certificate after SubjectAccessReview.",
               "selfnodeclient": "Auto approving self kubelet client certificate after SubjectAccessReview.",
               "selfnodeserving": "Auto approving kubelet serving certificate of the requesting node."}[kind]
        cond = {"type": "Approved", "status": "True", "reason": "AutoApproved", "message": msg,
                "lastUpdateTime": now, "lastTransitionTime": now}
        body = {**csr, "status": {**(csr.get("status") or {}),
                                  "conditions": [*((csr.get("status") or {}).get("conditions") or []), cond]}}
        try:
            await self.client.update(R.CERTIFICATESIGNINGREQUESTS, body, subresource="approval")
        except ApiStatusError as e:
            if e.not_found or e.conflict:
                return None
            raise
        log.info("csr approved", csr=name, recognizer=kind)
        return None


def setup(manager: Manager, workers: int = 1) -> CSRApprovingController:
    return CSRApprovingController(manager, workers=workers)
