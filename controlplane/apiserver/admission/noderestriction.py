"""NodeRestriction (Kubernetes' admission plugin of that name): which objects a node agent may
*write*, checked on the object itself once authorization allowed the verb.

A node (``system:node:<name>``) may create, update, patch or delete only its own Node, and
may not set labels under ``node-restriction.kubernetes.io/`` nor the restricted
``kubernetes.io``/``k8s.io`` labels; may update the status of, delete or evict only pods
bound to it, create only mirror pods bound to it, and never change a pod's spec; may ask for
a ServiceAccount token only bound to one of its pods that runs as that ServiceAccount; may
write only its own Lease in ``kube-node-lease`` and its own CSINode.

``check`` is a pure function returning the Forbidden message or None. It runs in the
validating step of the write path, where the admission chain will host it as one of its
built-in plugins (see docs/security.md, "Where the admission chain plugs in").
"""

from __future__ import annotations

from typing import Any

from controlplane.machinery.userinfo import UserInfo

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
ALLOWED_KUBERNETES_LABELS = {
    "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
}


def _label_forbidden(key: str) -> bool:
    prefix, _, _ = key.rpartition("/")
    domain = prefix
    if domain == "node-restriction.kubernetes.io" or domain.endswith(".node-restriction.kubernetes.io"):
        return True
    if key in ALLOWED_KUBERNETES_LABELS:
        return False
    if domain in ("kubelet.kubernetes.io", "node.kubernetes.io") or domain.endswith((".kubelet.kubernetes.io",
                                                                                     ".node.kubernetes.io")):
        return False
    return domain in ("kubernetes.io", "k8s.io") or domain.endswith((".kubernetes.io", ".k8s.io"))


def _labels(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def check(user: UserInfo, verb: str, group: str, resource: str, subresource: str, namespace: str, name: str,
          obj: dict[str, Any] | None, old: dict[str, Any] | None) -> str | None:
    node = user.node_name()
    if node is None:
        return None
    who = f'node "{node}"'
    if group == "" and resource == "nodes":
        target = name or ((obj or {}).get("metadata") or {}).get("name", "")
        if target != node:
            return f"{who} is not allowed to modify node \"{target}\""
        if verb in ("create", "update", "patch"):
            before = _labels(old)
            for k, v in _labels(obj).items():
                if before.get(k) != v and _label_forbidden(k):
                    return f"{who} is not allowed to modify labels: {k}"
            for k in before:
                if k not in _labels(obj) and _label_forbidden(k):
                    return f"{who} is not allowed to modify labels: {k}"
        return None
    if group == "" and resource == "pods":
        current = old or obj or {}
        bound_to = (current.get("spec") or {}).get("nodeName")
        if verb == "create" and not subresource:
            ann = ((obj or {}).get("metadata") or {}).get("annotations") or {}
            if MIRROR_ANNOTATION not in ann:
                return f"pod does not have \"{MIRROR_ANNOTATION}\" annotation, {who} can only create mirror pods"
            if (obj or {}).get("spec", {}).get("nodeName") != node:
                return f"{who} can only create pods with spec.nodeName set to itself"
            return None
        if subresource in ("status", "eviction") or (verb == "delete" and not subresource):
            if bound_to != node:
                return f"{who} can only {'evict' if subresource == 'eviction' else 'update' if subresource else 'delete'}" \
                       f" pods with spec.nodeName set to itself"
            return None
        return f"{who} can only update pod status"
    if group == "" and resource == "serviceaccounts" and subresource == "token":
        ref = ((obj or {}).get("spec") or {}).get("boundObjectRef") or {}
        if ref.get("kind") != "Pod":
            return f"{who} requested token not bound to a pod"
        return None  # the pod itself is checked against the node by the token endpoint (pod_check)
    if group == "storage.k8s.io" and resource == "csinodes":
        target = ((obj or {}).get("metadata") or {}).get("name", "") if verb == "create" else name
        if target != node:
            return "can only access CSINode with the same name as the requesting node"
        return None
    if group == "coordination.k8s.io" and resource == "leases":
        target = name or ((obj or {}).get("metadata") or {}).get("name", "")
        if namespace != "kube-node-lease" or target != node:
            return "can only access node lease with the same name as the requesting node"
        return None
    return None


def check_token_pod(user: UserInfo, pod: dict[str, Any] | None, sa_name: str) -> str | None:
    """A node's TokenRequest must be bound to a pod on that node running as that ServiceAccount."""
    node = user.node_name()
    if node is None:
        return None
    if pod is None:
        return f'node "{node}" requested token bound to a pod that does not exist'
    spec = pod.get("spec") or {}
    if spec.get("nodeName") != node:
        return f'node requested token bound to a pod scheduled on a different node'
    if (spec.get("serviceAccountName") or "default") != sa_name:
        return f'node requested token bound to a pod that does not run as service account "{sa_name}"'
    return None
