"""The Node authorizer (kube-apiserver's ``--authorization-mode=Node``): what a node agent
(``system:node:<name>`` in ``system:nodes``) may do, by the graph of its pods.

A node may read a Secret, ConfigMap, PersistentVolumeClaim or ServiceAccount only while a
pod bound to it references the object (a PersistentVolume only while such a claim is the one
its ``claimRef`` names) (volumes, projected sources, env, envFrom,
imagePullSecrets, serviceAccountName), may ask for a ServiceAccount token only for a
ServiceAccount one of its pods runs as, and may touch only its own Lease in
``kube-node-lease`` and its own CSINode (named like the node). Everything else a node may do
is ``NODE_RULES`` (Kubernetes' ``NodeRules``: read services/pods/nodes, write events, node
and pod status, ...); which Node and pods it may *write* is narrowed further by NodeRestriction (``noderestriction``).
For anyone who is not a node this authorizer has no opinion.

The authorizer asks a graph ``has(node, kind, namespace, name)``: in the apiserver that is
``feed.CachedPodGraph`` (read from the pod watch cache on demand); ``NodeGraph`` here is the
same answer kept in memory from pod events (``apply_pod``/``remove_pod``), for callers without
a watch cache (the authorizer benchmark, the tests).
"""

from __future__ import annotations

from typing import Any, Iterable

from controlplane.apiserver.authorization.attributes import NO_OPINION, Attributes, Decision, Result
from controlplane.apiserver.authorization.bootstrap_policy import NODE_RULES
from controlplane.apiserver.authorization.rules import CompiledRules

GRAPH_KINDS = {"secrets": "Secret", "configmaps": "ConfigMap", "persistentvolumeclaims": "PersistentVolumeClaim",
               "persistentvolumes": "PersistentVolume", "serviceaccounts": "ServiceAccount"}
NODE_LEASE_NAMESPACE = "kube-node-lease"


def pod_references(pod: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every namespaced object a pod needs from the API."""
    spec = pod.get("spec") or {}
    refs: set[tuple[str, str]] = set()
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if sa:
        refs.add(("ServiceAccount", sa))
    for s in spec.get("imagePullSecrets") or []:
        if s.get("name"):
            refs.add(("Secret", s["name"]))
    for v in spec.get("volumes") or []:
        if (v.get("secret") or {}).get("secretName"):
            refs.add(("Secret", v["secret"]["secretName"]))
        if (v.get("configMap") or {}).get("name"):
            refs.add(("ConfigMap", v["configMap"]["name"]))
        if (v.get("persistentVolumeClaim") or {}).get("claimName"):
            refs.add(("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]))
        for src in (v.get("projected") or {}).get("sources") or []:
            if (src.get("secret") or {}).get("name"):
                refs.add(("Secret", src["secret"]["name"]))
            if (src.get("configMap") or {}).get("name"):
                refs.add(("ConfigMap", src["configMap"]["name"]))
        for key in ("cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos", "azureFile", "csi"):
            ref = (v.get(key) or {}).get("secretRef") or (v.get(key) or {}).get("nodePublishSecretRef")
            if ref and ref.get("name"):
                refs.add(("Secret", ref["name"]))
        if (v.get("azureFile") or {}).get("secretName"):
            refs.add(("Secret", v["azureFile"]["secretName"]))
    for group in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(group) or []:
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                if (vf.get("secretKeyRef") or {}).get("name"):
                    refs.add(("Secret", vf["secretKeyRef"]["name"]))
                if (vf.get("configMapKeyRef") or {}).get("name"):
                    refs.add(("ConfigMap", vf["configMapKeyRef"]["name"]))
            for ef in c.get("envFrom") or []:
                if (ef.get("secretRef") or {}).get("name"):
                    refs.add(("Secret", ef["secretRef"]["name"]))
                if (ef.get("configMapRef") or {}).get("name"):
                    refs.add(("ConfigMap", ef["configMapRef"]["name"]))
    return refs


class NodeGraph:
    """node -> {(kind, namespace, name): number of its pods referencing it}."""

    def __init__(self) -> None:
        self._pods: dict[tuple[str, str], tuple[str, frozenset[tuple[str, str]]]] = {}
        self._edges: dict[str, dict[tuple[str, str, str], int]] = {}

    def __len__(self) -> int:
        return len(self._pods)

    def apply_pod(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        node = (pod.get("spec") or {}).get("nodeName") or ""
        refs = frozenset(pod_references(pod)) if node else frozenset()
        old = self._pods.get(key)
        if old == (node, refs):
            return
        if old is not None:
            self._unlink(key, *old)
        if node:
            self._pods[key] = (node, refs)
            edges = self._edges.setdefault(node, {})
            for kind, name in refs:
                k = (kind, key[0], name)
                edges[k] = edges.get(k, 0) + 1
        else:
            self._pods.pop(key, None)

    def remove_pod(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        old = self._pods.pop(key, None)
        if old is not None:
            self._unlink(key, *old)

    def _unlink(self, key: tuple[str, str], node: str, refs: Iterable[tuple[str, str]]) -> None:
        edges = self._edges.get(node)
        if edges is None:
            return
        for kind, name in refs:
            k = (kind, key[0], name)
            n = edges.get(k, 0) - 1
            if n <= 0:
                edges.pop(k, None)
            else:
                edges[k] = n
        if not edges:
            self._edges.pop(node, None)

    def has(self, node: str, kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in self._edges.get(node, {})

    def pod_node(self, namespace: str, name: str) -> str | None:
        p = self._pods.get((namespace, name))
        return p[0] if p else None


class NodeAuthorizer:
    def __init__(self, graph: Any) -> None:
        """``graph``: anything with ``has(node, kind, namespace, name) -> bool``."""
        self.graph = graph
        self.rules = CompiledRules.compile(NODE_RULES)

    def authorize(self, a: Attributes) -> Result:
        node = a.user.node_name()
        if node is None:
            return NO_OPINION
        if not a.resource_request:
            return NO_OPINION
        if a.api_group == "" and a.resource in GRAPH_KINDS and not a.subresource:
            return self._graph_read(node, a, GRAPH_KINDS[a.resource])
        if a.api_group == "" and a.resource == "serviceaccounts" and a.subresource == "token":
            if a.verb != "create" or not a.name:
                return self._deny(node, a, "can only create tokens for individual service accounts")
            if not self.graph.has(node, "ServiceAccount", a.namespace, a.name):
                return self._deny(node, a, f"no relationship found between node '{node}' and this object")
            return Result(Decision.ALLOW, "")
        if a.api_group == "coordination.k8s.io" and a.resource == "leases":
            if a.namespace != NODE_LEASE_NAMESPACE or (a.name and a.name != node) or \
                    (not a.name and a.verb != "create"):
                return self._deny(node, a, "can only access node lease with the same name as the requesting node")
        if a.api_group == "storage.k8s.io" and a.resource == "csinodes":
            return self._csinode(node, a)
        if self.rules.allows(a):
            return Result(Decision.ALLOW, "")
        return NO_OPINION

    def _csinode(self, node: str, a: Attributes) -> Result:
        """``authorizeCSINode``: get/create/update/patch/delete of the CSINode named like the
        node (a create's name is not known yet: NodeRestriction checks the object's)."""
        if a.verb not in ("get", "create", "update", "patch", "delete"):
            return self._deny(node, a, "can only get, create, update, patch, or delete a CSINode")
        if a.subresource:
            return self._deny(node, a, "cannot authorize CSINode subresources")
        if a.verb != "create" and a.name != node:
            return self._deny(node, a, "can only access CSINode with the same name as the requesting node")
        return Result(Decision.ALLOW, "")

    def _graph_read(self, node: str, a: Attributes, kind: str) -> Result:
        if a.verb not in ("get", "list", "watch"):
            return self._deny(node, a, "can only get individual resources of this type")
        if not a.name:
            return self._deny(node, a, "can only get individual resources of this type")
        if self.graph.has(node, kind, a.namespace, a.name):
            return Result(Decision.ALLOW, "")
        return self._deny(node, a, f"no relationship found between node '{node}' and this object")

    @staticmethod
    def _deny(node: str, a: Attributes, why: str) -> Result:
        """As Kubernetes: no opinion (RBAC may still allow), with the reason for the log."""
        return Result(Decision.NO_OPINION, why)
