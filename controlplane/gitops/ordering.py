"""Apply order, as Flux (fluxcd/pkg/ssa) and Helm order kinds: cluster definitions first
(CustomResourceDefinitions, Namespaces: stage one, applied and waited for before anything
else), then the built-in kinds in dependency order (config before the workloads that mount it,
Services before Deployments), then everything else (custom resources last). Pruning deletes in
the reverse order. Pure.
"""

from __future__ import annotations

KIND_ORDER = [
    "CustomResourceDefinition", "Namespace", "ResourceQuota", "StorageClass", "PriorityClass", "RuntimeClass",
    "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
    "ConfigMap", "Secret", "PersistentVolume", "PersistentVolumeClaim", "LimitRange",
    "Service", "Endpoints", "EndpointSlice", "DaemonSet", "Pod", "ReplicaSet", "Deployment",
    "StatefulSet", "Job", "CronJob", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]
_RANK = {k: i for i, k in enumerate(KIND_ORDER)}
# Built-in API groups: a kind from another group is a custom resource and goes last.
BUILTIN_GROUPS = {"", "apps", "batch", "apiextensions.k8s.io", "rbac.authorization.k8s.io", "policy",
                  "networking.k8s.io", "storage.k8s.io", "autoscaling", "scheduling.k8s.io",
                  "discovery.k8s.io", "coordination.k8s.io", "admissionregistration.k8s.io", "node.k8s.io"}
STAGE_ONE = {("apiextensions.k8s.io", "CustomResourceDefinition"), ("", "Namespace")}


def kind_rank(group: str, kind: str) -> int:
    if group not in BUILTIN_GROUPS:
        return len(KIND_ORDER) + 1
    return _RANK.get(kind, len(KIND_ORDER))


def is_stage_one(group: str, kind: str) -> bool:
    return (group, kind) in STAGE_ONE
