"""Kubernetes' bootstrap RBAC policy (``plugin/pkg/auth/authorizer/rbac/bootstrappolicy``):
the ClusterRoles and ClusterRoleBindings every cluster starts with, reconciled by the
apiserver at start (missing ones created, missing rules/subjects added; objects annotated
``rbac.authorization.kubernetes.io/autoupdate: "false"`` are left alone).

Roles kept as Kubernetes ships them: ``cluster-admin``; the aggregated ``admin``/``edit``/
``view`` with ``system:aggregate-to-*``; ``system:basic-user``, ``system:discovery``,
``system:public-info-viewer``, ``system:monitoring``, ``system:auth-delegator``,
``system:kube-scheduler``, ``system:volume-scheduler``, ``system:node-proxier``,
``system:node``, ``system:node-bootstrapper``, ``system:kubelet-api-admin``, the CSR
``nodeclient``/``selfnodeclient`` roles, ``system:service-account-issuer-discovery``.

Our changes, and why: ``system:kube-scheduler`` may also patch pods (the GPU-sharing plugins
annotate the chosen GPU in PreBind) and create ``scheduling.controlplane.io``
``schedulingdecisions`` (its records of unschedulable decisions; a successful decision's record
rides in the Binding, authorized as ``pods/binding``); ``system:controlplane:network-policy``
(list/watch pods, namespaces, NetworkPolicies) is bound to ``system:kube-proxy`` and the nodes,
because NetworkPolicy is enforced by the service proxy; ``system:coredns`` (CoreDNS's role; registering ``kube-system/kube-dns`` is a kube-system Role
of the same name, ``namespace_roles``) to the cluster DNS's ``system:coredns`` user;
the ``system:controller:<name>`` roles and bindings of the controllers we run (Kubernetes'
``controller_policy.go``, for ``--use-service-account-credentials``: each controller writes
as the ServiceAccount ``kube-system/<name>``), with a few rules of ours where our controllers
write differently, and roles in the same style for our servicelb and local-path-provisioner;
``system:kube-controller-manager`` also still holds the union of those roles (unlike
Kubernetes' narrow role), because a controller-manager run without the flag writes as it. The kubeadm-style bindings a
cluster needs for nodes to join are included (bootstrap tokens may create and auto-approve
node client CSRs; nodes may renew theirs; the apiserver's kubelet-client identity gets
``system:kubelet-api-admin``). What metrics-server's own manifests install is built in (as k3s
ships it): ``system:metrics-server`` (nodes/metrics, pods, nodes) and its auth-delegator
binding for the user ``system:metrics-server``, and ``system:aggregated-metrics-reader``
(metrics.k8s.io, aggregated into view/edit/admin); ``controlplane:prometheus`` is the
prometheus-operator's scrape role for the user ``system:prometheus`` (docs/metrics.md).
"""

from __future__ import annotations

from typing import Any

AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AGG = "rbac.authorization.k8s.io/aggregate-to-"

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL_RW = READ + WRITE


def r(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}
    if names:
        rule["resourceNames"] = list(names)
    return rule


def nr(verbs: list[str], urls: list[str]) -> dict[str, Any]:
    return {"verbs": list(verbs), "nonResourceURLs": list(urls)}


def _cr(name: str, rules: list[dict[str, Any]], *, labels: dict[str, str] | None = None,
        aggregate: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {**BOOTSTRAP_LABEL, **(labels or {})},
                     "annotations": {AUTOUPDATE: "true"}},
        "rules": rules,
    }
    if aggregate:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {AGG + aggregate: "true"}}]}
    return obj


def _crb(name: str, role: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(BOOTSTRAP_LABEL), "annotations": {AUTOUPDATE: "true"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects}


def _role(namespace: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """A namespaced bootstrap Role (as Kubernetes' ``NamespaceRoles``, e.g. in kube-system)."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(BOOTSTRAP_LABEL),
                         "annotations": {AUTOUPDATE: "true"}},
            "rules": rules}


def _rb(namespace: str, name: str, role: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(BOOTSTRAP_LABEL),
                         "annotations": {AUTOUPDATE: "true"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": subjects}


def user(name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


def group(name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}


def service_account(ns: str, name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": ns}


# -- the node's permissions (the Node authorizer applies these; system:node is unbound) -----
NODE_RULES: list[dict[str, Any]] = [
    r(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
    r(["create"], ["authorization.k8s.io"], ["subjectaccessreviews", "localsubjectaccessreviews"]),
    r(READ, [""], ["services"]),
    r(["create", "get", "list", "watch"], [""], ["nodes"]),
    r(["update", "patch"], [""], ["nodes/status"]),
    r(["update", "patch"], [""], ["nodes"]),
    r(["create", "update", "patch"], ["", "events.k8s.io"], ["events"]),
    r(READ, [""], ["pods"]),
    r(["create", "delete"], [""], ["pods"]),
    r(["update", "patch"], [""], ["pods/status"]),
    r(["create"], [""], ["pods/eviction"]),
    r(["get"], [""], ["configmaps", "secrets"]),
    r(["get"], [""], ["persistentvolumeclaims", "persistentvolumes"]),
    r(["get"], [""], ["endpoints"]),
    r(["create", "get", "list", "watch"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
    r(["get", "create", "update", "patch", "delete"], ["coordination.k8s.io"], ["leases"]),
    r(["get"], ["storage.k8s.io"], ["volumeattachments"]),
    r(["create"], [""], ["serviceaccounts/token"]),
    r(["update", "patch"], [""], ["persistentvolumeclaims/status"]),
    r(READ, ["node.k8s.io"], ["runtimeclasses"]),
    r(READ, ["storage.k8s.io"], ["csidrivers"]),
    # its own CSINode (the Node authorizer and NodeRestriction keep it to the node's name)
    r(["get", "create", "update", "patch", "delete"], ["storage.k8s.io"], ["csinodes"]),
    r(READ, ["discovery.k8s.io"], ["endpointslices"]),
]

VIEW_RULES = [
    r(READ, [""], ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
                   "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                   "services/status"]),
    r(READ, [""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                   "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"]),
    r(READ, [""], ["namespaces"]),
    r(READ, ["discovery.k8s.io"], ["endpointslices"]),
    r(READ, ["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                       "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
                       "statefulsets", "statefulsets/scale", "statefulsets/status"]),
    r(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    r(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    r(READ, ["extensions"], ["daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                             "deployments/status", "ingresses", "ingresses/status", "networkpolicies",
                             "replicasets", "replicasets/scale", "replicasets/status",
                             "replicationcontrollers/scale"]),
    r(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    r(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
]

EDIT_RULES = [
    r(READ, [""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"]),
    r(["impersonate"], [""], ["serviceaccounts"]),
    r(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
    r(["create"], [""], ["pods/eviction"]),
    r(WRITE, [""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                    "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"]),
    r(["create"], [""], ["serviceaccounts/token"]),
    r(WRITE, ["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                        "replicasets/scale", "statefulsets", "statefulsets/scale"]),
    r(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    r(WRITE, ["batch"], ["cronjobs", "jobs"]),
    r(WRITE, ["extensions"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
                              "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale"]),
    r(WRITE, ["policy"], ["poddisruptionbudgets"]),
    r(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
    r(READ + ["create", "update", "patch", "delete"], ["coordination.k8s.io"], ["leases"]),
]

ADMIN_RULES = [
    r(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    r(ALL_RW, ["rbac.authorization.k8s.io"], ["rolebindings", "roles"]),
]

KUBE_SCHEDULER_RULES = [
    r(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    r(["create"], ["coordination.k8s.io"], ["leases"]),
    r(["get", "list", "watch", "update", "patch"], ["coordination.k8s.io"], ["leases"]),
    r(["create"], [""], ["endpoints"]),
    r(["get", "update"], [""], ["endpoints"], ["kube-scheduler"]),
    r(READ, [""], ["nodes"]),
    r(["delete", "get", "list", "watch"], [""], ["pods"]),
    # ours: the GPU-sharing plugins record the chosen GPU on the pod in PreBind (annotations),
    # what an out-of-tree GPU-share scheduler gets from its own ClusterRole
    r(["patch", "update"], [""], ["pods"]),
    r(["create"], [""], ["bindings", "pods/binding"]),
    r(["patch", "update"], [""], ["pods/status"]),
    r(READ, [""], ["replicationcontrollers", "services"]),
    r(READ, ["apps", "extensions"], ["replicasets"]),
    r(READ, ["apps"], ["statefulsets"]),
    r(READ, ["policy"], ["poddisruptionbudgets"]),
    r(READ, [""], ["persistentvolumeclaims", "persistentvolumes"]),
    # system:volume-scheduler: the VolumeBinding plugin writes volume.kubernetes.io/selected-node
    r(["patch", "update"], [""], ["persistentvolumeclaims", "persistentvolumes"]),
    r(READ, ["storage.k8s.io"], ["storageclasses"]),
    r(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
    r(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
    r(READ, ["storage.k8s.io"], ["csinodes", "csidrivers", "csistoragecapacities"]),
    r(READ, [""], ["namespaces"]),
    r(READ, ["scheduling.k8s.io"], ["priorityclasses"]),
    r(["get", "list", "watch"], [""], ["configmaps"]),
    # ours: records of unschedulable decisions (docs/scheduling.md, "Scheduling decisions")
    r(["create"], ["scheduling.controlplane.io"], ["schedulingdecisions"]),
]

# the controllers our controller-manager runs, each with its Kubernetes role's rules, merged
KUBE_CONTROLLER_MANAGER_RULES = [
    # kube-controller-manager's own role
    r(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    r(READ + ["create", "update", "patch", "delete"], ["coordination.k8s.io"], ["leases"]),
    r(["create"], [""], ["secrets", "serviceaccounts"]),
    r(["delete"], [""], ["secrets"]),
    r(["get"], [""], ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
    r(["update"], [""], ["secrets", "serviceaccounts"]),
    r(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
    r(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
    r(["list", "watch"], ["*"], ["*"]),
    r(["create"], [""], ["serviceaccounts/token"]),
    # generic-garbage-collector and namespace-controller: every resource
    r(["get", "list", "watch", "patch", "update", "delete", "deletecollection"], ["*"], ["*"]),
    r(["update"], [""], ["namespaces/finalize", "namespaces/status"]),
    # deployment / replicaset / statefulset / daemonset / job / endpoint / serviceaccount / node
    r(["create"], [""], ["pods", "endpoints", "serviceaccounts", "configmaps"]),
    r(["create"], ["apps"], ["replicasets", "controllerrevisions"]),
    r(["create"], ["discovery.k8s.io"], ["endpointslices"]),
    r(["update", "patch"], ["apps"], ["deployments/status", "replicasets/status", "statefulsets/status",
                                      "daemonsets/status", "deployments/finalizers", "replicasets/finalizers",
                                      "statefulsets/finalizers", "daemonsets/finalizers"]),
    r(["update", "patch"], ["batch"], ["jobs/status", "jobs/finalizers", "cronjobs/status"]),
    r(["create"], ["batch"], ["jobs"]),
    r(["update", "patch"], [""], ["pods/status", "nodes/status"]),
    r(["update"], ["policy"], ["poddisruptionbudgets/status"]),  # disruption
    r(["update"], [""], ["resourcequotas/status"]),  # resourcequota (it lists every counted resource above)
    r(["create"], [""], ["pods/eviction", "pods/binding", "persistentvolumeclaims"]),
    # persistentvolume-binder, local-path provisioner, pv/pvc-protection
    r(["create"], [""], ["persistentvolumes"]),
    r(["update", "patch"], [""], ["persistentvolumes/status", "persistentvolumeclaims/status"]),
    # certificates: csrapproving + csrsigning
    r(["update"], ["certificates.k8s.io"], ["certificatesigningrequests/approval",
                                             "certificatesigningrequests/status"]),
    r(["approve"], ["certificates.k8s.io"], ["signers"], ["kubernetes.io/kube-apiserver-client-kubelet",
                                                          "kubernetes.io/kubelet-serving"]),
    r(["sign"], ["certificates.k8s.io"], ["signers"], ["kubernetes.io/kube-apiserver-client",
                                                       "kubernetes.io/kube-apiserver-client-kubelet",
                                                       "kubernetes.io/kubelet-serving",
                                                       "kubernetes.io/legacy-unknown"]),
    # clusterrole-aggregation
    r(["escalate", "get", "list", "patch", "update", "watch"], ["rbac.authorization.k8s.io"], ["clusterroles"]),
    # the rest of the system:controller:* roles (CONTROLLER_RULES), so that this identity
    # holds each of them (tests/unit/test_controller_roles.py)
    r(["create"], ["extensions"], ["replicasets"]),
    r(["create"], [""], ["endpoints/restricted", "services"]),
]


# -- the controllers' own roles (--use-service-account-credentials) -------------------------
# Kubernetes' controller_policy.go: ClusterRole ``system:controller:<sa>`` bound (a
# ClusterRoleBinding of the same name) to the ServiceAccount ``kube-system/<sa>`` each
# controller writes as. Only the controllers our controller-manager runs. Reads through the
# shared informers use the controller-manager's own identity; these rules are the writes and
# live reads each controller makes (tests/unit/test_controller_roles.py holds the audit).
# Rules marked "ours" are not in Kubernetes' role: where our controller writes differently
# (a merge patch where Kubernetes updates, a finalizer dropped by update), or does more.
EVENTS_RULE = r(["create", "update", "patch"], ["", "events.k8s.io"], ["events"])
CONTROLLER_ROLE_PREFIX = "system:controller:"
CONTROLLER_NAMESPACE = "kube-system"
LEGACY, APPS, BATCH, EXT = "", "apps", "batch", "extensions"

CONTROLLER_RULES: dict[str, list[dict[str, Any]]] = {
    "clusterrole-aggregation-controller": [
        r(["escalate", "get", "list", "watch", "update", "patch"], ["rbac.authorization.k8s.io"], ["clusterroles"])],
    "cronjob-controller": [
        r(["get", "list", "watch", "update"], [BATCH], ["cronjobs"]),
        r(["get", "list", "watch", "create", "update", "delete", "patch"], [BATCH], ["jobs"]),
        r(["update"], [BATCH], ["cronjobs/status"]),
        r(["patch"], [BATCH], ["cronjobs/status"]),  # ours: the status is merge-patched
        r(["update"], [BATCH], ["cronjobs/finalizers"]),
        r(["list", "delete"], [LEGACY], ["pods"]),
        EVENTS_RULE],
    "daemon-set-controller": [
        r(READ, [EXT, APPS], ["daemonsets"]),
        r(["update"], [EXT, APPS], ["daemonsets/status"]),
        r(["update"], [EXT, APPS], ["daemonsets/finalizers"]),
        r(["list", "watch"], [LEGACY], ["nodes"]),
        r(["list", "watch", "create", "delete", "patch"], [LEGACY], ["pods"]),
        r(["create"], [LEGACY], ["pods/binding"]),
        r(["get", "list", "watch", "create", "delete", "update", "patch"], [APPS], ["controllerrevisions"]),
        EVENTS_RULE],
    "deployment-controller": [
        r(["get", "list", "watch", "update"], [EXT, APPS], ["deployments"]),
        r(["update"], [EXT, APPS], ["deployments/status"]),
        r(["update"], [EXT, APPS], ["deployments/finalizers"]),
        r(["get", "list", "watch", "create", "update", "patch", "delete"], [APPS, EXT], ["replicasets"]),
        r(["get", "list", "watch", "update"], [LEGACY], ["pods"]),
        # ours: the revision annotations and the status are merge-patched
        r(["patch"], [APPS], ["deployments", "deployments/status"]),
        EVENTS_RULE],
    "disruption-controller": [
        r(READ, [EXT, APPS], ["deployments"]),
        r(READ, [APPS, EXT], ["replicasets"]),
        r(READ, [LEGACY], ["replicationcontrollers"]),
        r(READ, ["policy"], ["poddisruptionbudgets"]),
        r(READ, [APPS], ["statefulsets"]),
        r(["update"], ["policy"], ["poddisruptionbudgets/status"]),
        r(["get"], ["*"], ["*/scale"]),
        r(["patch", "update"], [LEGACY], ["pods/status"]),
        EVENTS_RULE],
    "endpoint-controller": [
        r(READ, [LEGACY], ["services", "pods"]),
        r(["get", "list", "create", "update", "delete"], [LEGACY], ["endpoints"]),
        r(["create"], [LEGACY], ["endpoints/restricted"]),
        EVENTS_RULE],
    "endpointslice-controller": [
        r(READ, [LEGACY], ["services", "pods", "nodes"]),
        r(["update"], [LEGACY], ["services/finalizers"]),
        r(["get", "list", "create", "update", "delete"], ["discovery.k8s.io"], ["endpointslices"]),
        EVENTS_RULE],
    "endpointslicemirroring-controller": [
        r(READ, [LEGACY], ["services", "endpoints"]),
        r(["update"], [LEGACY], ["services/finalizers"]),
        r(["update"], [LEGACY], ["endpoints/finalizers"]),
        r(["get", "list", "create", "update", "delete"], ["discovery.k8s.io"], ["endpointslices"]),
        EVENTS_RULE],
    "generic-garbage-collector": [
        r(["get", "list", "watch", "patch", "update", "delete"], ["*"], ["*"]),
        EVENTS_RULE],
    "horizontal-pod-autoscaler": [
        r(READ, ["autoscaling"], ["horizontalpodautoscalers"]),
        r(["update"], ["autoscaling"], ["horizontalpodautoscalers/status"]),
        r(["get", "update"], ["*"], ["*/scale"]),
        r(["list"], [LEGACY], ["pods"]),
        r(["list"], ["metrics.k8s.io"], ["pods"]),
        r(["get", "list"], ["custom.metrics.k8s.io"], ["*"]),
        r(["get", "list"], ["external.metrics.k8s.io"], ["*"]),
        EVENTS_RULE],
    "job-controller": [
        r(["get", "list", "watch", "update", "patch"], [BATCH], ["jobs"]),
        r(["update", "patch"], [BATCH], ["jobs/status"]),
        r(["update"], [BATCH], ["jobs/finalizers"]),
        r(["list", "watch", "create", "delete", "patch"], [LEGACY], ["pods"]),
        # ours: the job-tracking finalizer is dropped by an update of the pod read fresh
        r(["get", "update"], [LEGACY], ["pods"]),
        EVENTS_RULE],
    "namespace-controller": [
        r(["get", "list", "watch", "delete"], [LEGACY], ["namespaces"]),
        r(["update"], [LEGACY], ["namespaces/finalize", "namespaces/status"]),
        r(["get", "list", "delete", "deletecollection"], ["*"], ["*"]),
        EVENTS_RULE],  # ours: our namespace controller reports deletion failures as Events
    "node-controller": [
        r(["get", "list", "update", "delete", "patch"], [LEGACY], ["nodes"]),
        r(["patch", "update"], [LEGACY], ["nodes/status"]),
        r(["patch", "update"], [LEGACY], ["pods/status"]),
        r(["list", "delete"], [LEGACY], ["pods"]),
        EVENTS_RULE],
    "persistent-volume-binder": [
        r(["get", "list", "watch", "update", "create", "delete"], [LEGACY], ["persistentvolumes"]),
        r(["update"], [LEGACY], ["persistentvolumes/status"]),
        r(["get", "list", "watch", "update"], [LEGACY], ["persistentvolumeclaims"]),
        r(["update"], [LEGACY], ["persistentvolumeclaims/status"]),
        r(["list", "watch", "get", "create", "delete"], [LEGACY], ["pods"]),
        r(READ, ["storage.k8s.io"], ["storageclasses"]),
        r(["get", "create", "update", "delete"], [LEGACY], ["endpoints"]),
        r(["get", "create", "delete"], [LEGACY], ["services"]),
        r(["get"], [LEGACY], ["secrets"]),
        r(["get", "list"], [LEGACY], ["nodes"]),
        r(["watch"], [LEGACY], ["events"]),
        EVENTS_RULE],
    "pod-garbage-collector": [
        r(["list", "watch", "delete"], [LEGACY], ["pods"]),
        r(["get", "list"], [LEGACY], ["nodes"]),
        r(["patch"], [LEGACY], ["pods/status"]),
        # ours: the DisruptionTarget condition is written by an update of the pod read fresh,
        # and the job-tracking finalizer of an orphaned pod dropped (its Job looked up)
        r(["get", "update"], [LEGACY], ["pods"]),
        r(["update"], [LEGACY], ["pods/status"]),
        r(["get"], [BATCH], ["jobs"])],
    "replicaset-controller": [
        r(["get", "list", "watch", "update"], [APPS, EXT], ["replicasets"]),
        r(["update"], [APPS, EXT], ["replicasets/status"]),
        r(["update"], [APPS, EXT], ["replicasets/finalizers"]),
        r(["list", "watch", "patch", "create", "delete"], [LEGACY], ["pods"]),
        r(["patch"], [APPS], ["replicasets/status"]),  # ours: the status is merge-patched
        EVENTS_RULE],
    "replication-controller": [
        r(["get", "list", "watch", "update"], [LEGACY], ["replicationcontrollers"]),
        r(["update"], [LEGACY], ["replicationcontrollers/status"]),
        r(["update"], [LEGACY], ["replicationcontrollers/finalizers"]),
        r(["list", "watch", "patch", "create", "delete"], [LEGACY], ["pods"]),
        r(["patch"], [LEGACY], ["replicationcontrollers/status"]),  # ours: the status is merge-patched
        EVENTS_RULE],
    "resourcequota-controller": [
        r(["list", "watch"], ["*"], ["*"]),
        r(["update"], [LEGACY], ["resourcequotas/status"]),
        EVENTS_RULE],
    "service-account-controller": [
        r(["create"], [LEGACY], ["serviceaccounts"]),
        EVENTS_RULE],
    "statefulset-controller": [
        r(["list", "watch"], [LEGACY], ["pods"]),
        r(READ, [APPS], ["statefulsets"]),
        r(["update"], [APPS], ["statefulsets/status"]),
        r(["update"], [APPS], ["statefulsets/finalizers"]),
        r(["get", "create", "delete", "update", "patch"], [LEGACY], ["pods"]),
        r(["get", "create", "delete", "update", "patch", "list", "watch"], [APPS], ["controllerrevisions"]),
        r(["get", "create"], [LEGACY], ["persistentvolumeclaims"]),
        r(["update", "delete"], [LEGACY], ["persistentvolumeclaims"]),
        EVENTS_RULE],
    "certificate-controller": [
        r(["get", "list", "watch", "delete"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
        r(["update"], ["certificates.k8s.io"], ["certificatesigningrequests/status",
                                                 "certificatesigningrequests/approval"]),
        r(["approve"], ["certificates.k8s.io"], ["signers"], ["kubernetes.io/kube-apiserver-client-kubelet"]),
        # ours: kubelet serving certificates of a node's own names are approved too (csrapproving)
        r(["approve"], ["certificates.k8s.io"], ["signers"], ["kubernetes.io/kubelet-serving"]),
        r(["sign"], ["certificates.k8s.io"], ["signers"], ["kubernetes.io/legacy-unknown",
                                                            "kubernetes.io/kube-apiserver-client",
                                                            "kubernetes.io/kube-apiserver-client-kubelet",
                                                            "kubernetes.io/kubelet-serving"]),
        r(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        EVENTS_RULE],
    "pvc-protection-controller": [
        r(["get", "list", "watch", "update"], [LEGACY], ["persistentvolumeclaims"]),
        r(["list", "watch", "get"], [LEGACY], ["pods"]),
        EVENTS_RULE],
    "pv-protection-controller": [
        r(["get", "list", "watch", "update"], [LEGACY], ["persistentvolumes"]),
        EVENTS_RULE],
    "ttl-after-finished-controller": [
        r(["get", "list", "watch", "delete"], [BATCH], ["jobs"]),
        EVENTS_RULE],
    "root-ca-cert-publisher": [
        r(["create", "update"], [LEGACY], ["configmaps"]),
        EVENTS_RULE],
    # ours, in the same style: controllers Kubernetes does not ship (k3s runs them in its
    # supervisor). servicelb writes the LoadBalancer ingress of a Service's status;
    # local-path-provisioner creates and deletes the PersistentVolumes of its claims.
    # (their reads are the shared informers'.)
    "servicelb-controller": [
        r(["update"], [LEGACY], ["services/status"]),
        EVENTS_RULE],
    "local-path-provisioner": [
        r(["create", "delete"], [LEGACY], ["persistentvolumes"]),
        EVENTS_RULE],
}


def controller_roles() -> list[dict[str, Any]]:
    return [_cr(CONTROLLER_ROLE_PREFIX + name, [dict(x) for x in rules]) for name, rules in CONTROLLER_RULES.items()]


def controller_role_bindings() -> list[dict[str, Any]]:
    return [_crb(CONTROLLER_ROLE_PREFIX + name, CONTROLLER_ROLE_PREFIX + name,
                 [service_account(CONTROLLER_NAMESPACE, name)]) for name in CONTROLLER_RULES]


def cluster_roles() -> list[dict[str, Any]]:
    return [
        _cr("cluster-admin", [r(["*"], ["*"], ["*"]), nr(["*"], ["*"])]),
        _cr("system:discovery", [nr(["get"], ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                              "/openapi/*", "/readyz", "/version", "/version/"])]),
        _cr("system:monitoring", [nr(["get"], ["/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics",
                                               "/metrics/slis", "/readyz", "/readyz/*"])]),
        _cr("system:basic-user", [r(["create"], ["authorization.k8s.io"],
                                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                                  r(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])]),
        _cr("system:public-info-viewer", [nr(["get"], ["/healthz", "/livez", "/readyz", "/version", "/version/"])]),
        _cr("admin", [], aggregate="admin"),
        _cr("edit", [], labels={AGG + "admin": "true"}, aggregate="edit"),
        _cr("view", [], labels={AGG + "edit": "true"}, aggregate="view"),
        _cr("system:aggregate-to-admin", ADMIN_RULES, labels={AGG + "admin": "true"}),
        _cr("system:aggregate-to-edit", EDIT_RULES, labels={AGG + "edit": "true"}),
        _cr("system:aggregate-to-view", VIEW_RULES, labels={AGG + "view": "true"}),
        _cr("system:auth-delegator", [r(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                                      r(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])]),
        _cr("system:kube-scheduler", KUBE_SCHEDULER_RULES),
        _cr("system:volume-scheduler", [r(["get", "list", "patch", "update", "watch"], [""], ["persistentvolumes"]),
                                        r(READ, ["storage.k8s.io"], ["storageclasses"]),
                                        r(["get", "list", "patch", "update", "watch"], [""],
                                          ["persistentvolumeclaims"])]),
        _cr("system:kube-controller-manager", KUBE_CONTROLLER_MANAGER_RULES),
        _cr("system:node-proxier", [r(["list", "watch"], [""], ["endpoints", "services"]),
                                    r(READ, [""], ["nodes"]),
                                    r(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
                                    r(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"])]),
        _cr("system:node", NODE_RULES),
        # NetworkPolicy enforcement runs in the service proxy (as k3s runs its policy controller
        # in the agent): it reads policies, pods and namespaces
        _cr("system:controlplane:network-policy", [r(["list", "watch"], [""], ["pods", "namespaces"]),
                                                   r(["list", "watch"], ["networking.k8s.io"],
                                                     ["networkpolicies"])]),
        # the cluster DNS: CoreDNS's ClusterRole (reads); registering itself as
        # kube-system/kube-dns is the kube-system Role of the same name (namespace_roles)
        _cr("system:coredns", [r(["list", "watch"], [""], ["endpoints", "services", "pods", "namespaces"]),
                               r(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"])]),
        # the ingress controller: Traefik's ClusterRole (it reads Ingresses, their classes,
        # Services and TLS Secrets, writes Ingress status), plus creating its IngressClass
        _cr("system:ingress-controller", [
            r(["get", "list", "watch"], [""], ["services", "endpoints", "secrets"]),
            r(["get", "list", "watch"], ["discovery.k8s.io"], ["endpointslices"]),
            r(["get", "list", "watch"], ["networking.k8s.io"], ["ingresses", "ingressclasses"]),
            r(["create"], ["networking.k8s.io"], ["ingressclasses"]),
            r(["update"], ["networking.k8s.io"], ["ingresses/status"])]),
        _cr("system:node-bootstrapper", [r(["create", "get", "list", "watch"], ["certificates.k8s.io"],
                                           ["certificatesigningrequests"])]),
        _cr("system:kubelet-api-admin", [r(["get", "list", "watch", "proxy"], [""], ["nodes"]),
                                         r(["*"], [""], ["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats",
                                                         "nodes/configz", "nodes/healthz", "nodes/pods"])]),
        _cr("system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            [r(["create"], ["certificates.k8s.io"], ["certificatesigningrequests/nodeclient"])]),
        _cr("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            [r(["create"], ["certificates.k8s.io"], ["certificatesigningrequests/selfnodeclient"])]),
        # what metrics-server's manifests (components.yaml) install, built in here as k3s ships them
        _cr("system:metrics-server", [r(["get"], [""], ["nodes/metrics"]),
                                      r(["get", "list", "watch"], [""], ["pods", "nodes"])]),
        _cr("system:aggregated-metrics-reader", [r(["get", "list", "watch"], ["metrics.k8s.io"], ["pods", "nodes"])],
            labels={AGG + "view": "true", AGG + "edit": "true", AGG + "admin": "true"}),
        # the custom metrics component (prometheus-adapter's custom-metrics-resource-reader, with
        # the workloads a metric commonly describes: it lists them by label selector for NAME *;
        # never secrets)
        _cr("system:prometheus-adapter", [r(["get", "list", "watch"], [""], ["namespaces", "pods", "services", "nodes"]),
                                          r(["get", "list", "watch"], ["apps"], ["deployments", "statefulsets",
                                                                                 "replicasets", "daemonsets"]),
                                          r(["get", "list", "watch"], ["batch"], ["jobs"])]),
        # Prometheus' scrape identity (the prometheus-operator's ClusterRole; system:monitoring gives /metrics)
        _cr("controlplane:prometheus", [r(["get", "list", "watch"], [""], ["nodes", "nodes/metrics", "services",
                                                                          "endpoints", "pods"]),
                                        nr(["get"], ["/metrics", "/metrics/cadvisor", "/metrics/resource"])]),
        _cr("system:service-account-issuer-discovery",
            [nr(["get"], ["/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                          "/openid/v1/jwks", "/openid/v1/jwks/"])]),
        *controller_roles(),
    ]


def cluster_role_bindings() -> list[dict[str, Any]]:
    return [
        _crb("cluster-admin", "cluster-admin", [group("system:masters")]),
        _crb("system:basic-user", "system:basic-user", [group("system:authenticated")]),
        _crb("system:discovery", "system:discovery", [group("system:authenticated")]),
        _crb("system:public-info-viewer", "system:public-info-viewer",
             [group("system:authenticated"), group("system:unauthenticated")]),
        _crb("system:monitoring", "system:monitoring", [group("system:monitoring")]),
        _crb("system:kube-controller-manager", "system:kube-controller-manager", [user("system:kube-controller-manager")]),
        _crb("system:kube-scheduler", "system:kube-scheduler", [user("system:kube-scheduler")]),
        _crb("system:volume-scheduler", "system:volume-scheduler", [user("system:kube-scheduler")]),
        _crb("system:node-proxier", "system:node-proxier", [user("system:kube-proxy")]),
        _crb("system:node", "system:node", []),
        # the proxy runs as system:kube-proxy under `up`; an agent joined with only its node
        # credentials runs it as the node
        _crb("system:controlplane:network-policy", "system:controlplane:network-policy",
             [user("system:kube-proxy"), group("system:nodes")]),
        _crb("system:coredns", "system:coredns", [user("system:coredns")]),
        _crb("system:ingress-controller", "system:ingress-controller", [user("system:ingress-controller")]),
        _crb("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
             [group("system:serviceaccounts")]),
        # what kubeadm adds so nodes can join with bootstrap tokens and renew their certificates
        _crb("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", [group("system:bootstrappers")]),
        _crb("kubeadm:node-autoapprove-bootstrap",
             "system:certificates.k8s.io:certificatesigningrequests:nodeclient", [group("system:bootstrappers")]),
        _crb("kubeadm:node-autoapprove-certificate-rotation",
             "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [group("system:nodes")]),
        _crb("kube-apiserver-kubelet-client", "system:kubelet-api-admin", [user("kube-apiserver-kubelet-client")]),
        _crb("system:metrics-server", "system:metrics-server", [user("system:metrics-server")]),
        _crb("metrics-server:system:auth-delegator", "system:auth-delegator", [user("system:metrics-server")]),
        _crb("controlplane:prometheus", "controlplane:prometheus", [user("system:prometheus")]),
        _crb("system:prometheus-adapter", "system:prometheus-adapter", [user("system:prometheus-adapter")]),
        _crb("prometheus-adapter:system:auth-delegator", "system:auth-delegator", [user("system:prometheus-adapter")]),
        *controller_role_bindings(),
    ]


def namespace_roles() -> list[dict[str, Any]]:
    """Roles in kube-system: what a component may write only there. The cluster DNS registers
    itself as the kube-dns Service and its EndpointSlice: RBAC cannot limit ``create`` by name,
    so a namespaced Role at least keeps it to kube-system (update/delete by name)."""
    return [
        _role("kube-system", "system:coredns", [
            r(["create"], [""], ["services"]),
            r(["create"], ["discovery.k8s.io"], ["endpointslices"]),
            r(["get"], [""], ["services"], ["kube-dns"]),
            r(["get", "update", "patch", "delete"], ["discovery.k8s.io"], ["endpointslices"], ["kube-dns-host"])]),
    ]


def namespace_role_bindings() -> list[dict[str, Any]]:
    return [_rb("kube-system", "system:coredns", "system:coredns", [user("system:coredns")])]


def policy() -> list[tuple[str, dict[str, Any]]]:
    """(kind, object) of everything, roles first, with aggregated roles' rules filled in."""
    from controlplane.apiserver.authorization.aggregation import aggregate_all

    roles = aggregate_all(cluster_roles())
    return [("ClusterRole", c) for c in roles] + [("Role", c) for c in namespace_roles()] + \
        [("ClusterRoleBinding", b) for b in cluster_role_bindings()] + \
        [("RoleBinding", b) for b in namespace_role_bindings()]


def reconcile(existing: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """What to write for one bootstrap object (Kubernetes' ``auth reconcile``): the wanted
    object when absent; when present and ``autoupdate`` is not "false", the existing one
    with missing rules (roles) or subjects (bindings) added and the aggregation rule set;
    None when nothing needs writing."""
    if existing is None:
        return wanted
    ann = (existing.get("metadata") or {}).get("annotations") or {}
    if ann.get(AUTOUPDATE) == "false":
        return None
    out = {**existing}
    changed = False
    if wanted.get("kind") in ("ClusterRole", "Role"):
        if wanted.get("aggregationRule") and existing.get("aggregationRule") != wanted["aggregationRule"]:
            out["aggregationRule"] = wanted["aggregationRule"]
            changed = True
        rules = list(existing.get("rules") or [])
        for rule in wanted.get("rules") or []:
            if rule not in rules:
                rules.append(rule)
                changed = True
        out["rules"] = rules
    else:
        subjects = list(existing.get("subjects") or [])
        for s in wanted.get("subjects") or []:
            if not any(x.get("kind") == s["kind"] and x.get("name") == s["name"]
                       and x.get("namespace", "") == s.get("namespace", "") for x in subjects):
                subjects.append(s)
                changed = True
        out["subjects"] = subjects
    labels = dict((existing.get("metadata") or {}).get("labels") or {})
    for k, v in ((wanted.get("metadata") or {}).get("labels") or {}).items():
        if labels.get(k) != v:
            labels[k] = v
            changed = True
    if changed:
        out["metadata"] = {**existing["metadata"], "labels": labels}
        return out
    return None
