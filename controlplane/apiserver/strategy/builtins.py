"""The built-in resources this apiserver serves, each with its strategy: the catalogue
``server.app.ApiServer`` starts from (``builtin_registry()``; custom resources are added to it
at run time by ``server/crds.py``). Listed in the order discovery shows them.
"""

from __future__ import annotations

from typing import Iterable

from controlplane.apiserver.discovery.registry import ALL_VERBS, Registry, ResourceInfo
from controlplane.apiserver.strategy.apiservice import APIServiceStrategy
from controlplane.apiserver.strategy.admissionregistration import (
    ValidatingAdmissionPolicyBindingStrategy, ValidatingAdmissionPolicyStrategy, WebhookConfigurationStrategy,
)
from controlplane.apiserver.strategy.base import Strategy
from controlplane.apiserver.strategy.certificates import CertificateSigningRequestStrategy
from controlplane.apiserver.strategy.cronjob import CronJobStrategy
from controlplane.apiserver.strategy.customresourcedefinition import CustomResourceDefinitionStrategy
from controlplane.apiserver.strategy.event import EventStrategy
from controlplane.apiserver.strategy.horizontalpodautoscaler import HorizontalPodAutoscalerStrategy
from controlplane.apiserver.strategy.job import JobStrategy
from controlplane.apiserver.strategy.namespace import NamespaceStrategy
from controlplane.apiserver.strategy.network import EndpointSliceStrategy, IngressStrategy, NetworkPolicyStrategy
from controlplane.apiserver.strategy.node import NodeStrategy
from controlplane.apiserver.strategy.pod import PodStrategy
from controlplane.apiserver.strategy.podtemplate import PodTemplateStrategy
from controlplane.apiserver.strategy.rbac import BindingStrategy, RoleStrategy
from controlplane.apiserver.strategy.replicationcontroller import ReplicationControllerStrategy
from controlplane.apiserver.strategy.schedulingdecision import SchedulingDecisionStrategy
from controlplane.apiserver.strategy.secret import SecretStrategy
from controlplane.apiserver.strategy.service import ServiceStrategy
from controlplane.apiserver.strategy.storage import (
    CSIDriverStrategy, PersistentVolumeClaimStrategy, PersistentVolumeStrategy, StorageClassStrategy,
    VolumeAttachmentStrategy,
)
from controlplane.apiserver.strategy.simple import (
    LimitRangeStrategy, PodDisruptionBudgetStrategy, PriorityClassStrategy,
)
from controlplane.apiserver.strategy.workloads import (
    DaemonSetStrategy, DeploymentStrategy, ReplicaSetStrategy, StatefulSetStrategy,
)


CREATE_ONLY = ("create",)


def _res(kind: str, plural: str, strategy: Strategy, namespaced: bool = True, *, short: Iterable[str] = (),
         cats: Iterable[str] = (), sub: Iterable[str] = (), verbs: tuple[str, ...] = ALL_VERBS,
         group: str = "", version: str = "v1", storage: str = "", storage_group: str | None = None) -> ResourceInfo:
    return ResourceInfo(group=group, version=version, kind=kind, plural=plural,
                        singular=kind.lower(), namespaced=namespaced, short_names=tuple(short),
                        categories=tuple(cats), subresources=frozenset(sub), verbs=verbs, strategy=strategy,
                        storage_version=storage or version, storage_group=storage_group)


def builtin_resources(event_ttl: int | None = None, decision_ttl: int | None = None) -> list[ResourceInfo]:
    """Every built-in resource, in the order discovery lists them. ``event_ttl`` /
    ``decision_ttl``: seconds Events / SchedulingDecisions live (None: the defaults, 1 h; 0:
    forever)."""
    all_cat = ("all",)
    plain = Strategy()
    rbac = "rbac.authorization.k8s.io"
    admreg = "admissionregistration.k8s.io"
    roles, bindings = RoleStrategy(), BindingStrategy()
    events = EventStrategy() if event_ttl is None else EventStrategy(event_ttl or None)
    decisions = SchedulingDecisionStrategy() if decision_ttl is None else SchedulingDecisionStrategy(decision_ttl or None)
    hpa = HorizontalPodAutoscalerStrategy()
    return [
        # core/v1
        _res("Namespace", "namespaces", NamespaceStrategy(), False, short=["ns"], sub=["status", "finalize"],
             verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
        _res("Pod", "pods", PodStrategy(), short=["po"], cats=all_cat,
             sub=["status", "binding", "log", "exec", "attach", "portforward", "proxy", "eviction",
                  "ephemeralcontainers"]),
        _res("Node", "nodes", NodeStrategy(), False, short=["no"], sub=["status", "proxy"]),
        _res("ReplicationController", "replicationcontrollers", ReplicationControllerStrategy(), short=["rc"],
             cats=all_cat, sub=["status", "scale"]),
        _res("Service", "services", ServiceStrategy(), short=["svc"], cats=all_cat, sub=["status", "proxy"],
             verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
        _res("Endpoints", "endpoints", plain, short=["ep"]),
        _res("ConfigMap", "configmaps", plain, short=["cm"]),
        _res("Secret", "secrets", SecretStrategy()),
        _res("ServiceAccount", "serviceaccounts", plain, short=["sa"], sub=["token"]),
        _res("LimitRange", "limitranges", LimitRangeStrategy(), short=["limits"]),
        _res("ResourceQuota", "resourcequotas", plain, short=["quota"], sub=["status"]),
        _res("Event", "events", events, short=["ev"]),
        _res("PersistentVolume", "persistentvolumes", PersistentVolumeStrategy(), False, short=["pv"],
             sub=["status"]),
        _res("PersistentVolumeClaim", "persistentvolumeclaims", PersistentVolumeClaimStrategy(), short=["pvc"],
             sub=["status"]),
        _res("PodTemplate", "podtemplates", PodTemplateStrategy()),
        # apps/v1
        _res("Deployment", "deployments", DeploymentStrategy(), short=["deploy"], cats=all_cat,
             sub=["status", "scale"], group="apps"),
        _res("ReplicaSet", "replicasets", ReplicaSetStrategy(), short=["rs"], cats=all_cat,
             sub=["status", "scale"], group="apps"),
        _res("StatefulSet", "statefulsets", StatefulSetStrategy(), short=["sts"], cats=all_cat,
             sub=["status", "scale"], group="apps"),
        _res("DaemonSet", "daemonsets", DaemonSetStrategy(), short=["ds"], cats=all_cat, sub=["status"],
             group="apps"),
        _res("ControllerRevision", "controllerrevisions", plain, group="apps"),
        # batch/v1
        _res("Job", "jobs", JobStrategy(), cats=all_cat, sub=["status"], group="batch"),
        _res("CronJob", "cronjobs", CronJobStrategy(), short=["cj"], cats=all_cat, sub=["status"], group="batch"),
        # autoscaling/v2 (stored) and autoscaling/v1 (converted: what kubectl autoscale writes)
        _res("HorizontalPodAutoscaler", "horizontalpodautoscalers", hpa, short=["hpa"], cats=all_cat,
             sub=["status"], group="autoscaling", version="v2"),
        _res("HorizontalPodAutoscaler", "horizontalpodautoscalers", hpa, short=["hpa"], cats=all_cat,
             sub=["status"], group="autoscaling", version="v1", storage="v2"),
        # coordination.k8s.io/v1
        _res("Lease", "leases", plain, group="coordination.k8s.io"),
        # discovery.k8s.io/v1
        _res("EndpointSlice", "endpointslices", EndpointSliceStrategy(), group="discovery.k8s.io"),
        # networking.k8s.io/v1
        _res("NetworkPolicy", "networkpolicies", NetworkPolicyStrategy(), short=["netpol"],
             group="networking.k8s.io"),
        _res("Ingress", "ingresses", IngressStrategy(), short=["ing"], sub=["status"], group="networking.k8s.io"),
        _res("IngressClass", "ingressclasses", plain, False, group="networking.k8s.io"),
        # apiextensions.k8s.io/v1
        _res("CustomResourceDefinition", "customresourcedefinitions", CustomResourceDefinitionStrategy(), False,
             short=["crd", "crds"], cats=("api-extensions",), sub=["status"], group="apiextensions.k8s.io"),
        # apiregistration.k8s.io/v1: the aggregation layer's APIServices
        _res("APIService", "apiservices", APIServiceStrategy(), False, cats=("api-extensions",), sub=["status"],
             group="apiregistration.k8s.io"),
        # storage.k8s.io/v1
        _res("StorageClass", "storageclasses", StorageClassStrategy(), False, short=["sc"], group="storage.k8s.io"),
        _res("CSIDriver", "csidrivers", CSIDriverStrategy(), False, group="storage.k8s.io"),
        _res("CSINode", "csinodes", plain, False, group="storage.k8s.io"),
        _res("VolumeAttachment", "volumeattachments", VolumeAttachmentStrategy(), False, sub=["status"],
             group="storage.k8s.io"),
        _res("CSIStorageCapacity", "csistoragecapacities", plain, group="storage.k8s.io"),
        # node.k8s.io/v1: applied to pods by the RuntimeClass admission plugin, resolved by the agents
        _res("RuntimeClass", "runtimeclasses", plain, False, group="node.k8s.io"),
        # scheduling.k8s.io/v1
        _res("PriorityClass", "priorityclasses", PriorityClassStrategy(), False, short=["pc"],
             group="scheduling.k8s.io"),
        # admissionregistration.k8s.io/v1 (read by the admission chain: admission/webhooks, policy.py)
        _res("MutatingWebhookConfiguration", "mutatingwebhookconfigurations", WebhookConfigurationStrategy(True),
             False, cats=("api-extensions",), group=admreg),
        _res("ValidatingWebhookConfiguration", "validatingwebhookconfigurations", WebhookConfigurationStrategy(False),
             False, cats=("api-extensions",), group=admreg),
        _res("ValidatingAdmissionPolicy", "validatingadmissionpolicies", ValidatingAdmissionPolicyStrategy(), False,
             cats=("api-extensions",), sub=["status"], group=admreg),
        _res("ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings",
             ValidatingAdmissionPolicyBindingStrategy(), False, cats=("api-extensions",), group=admreg),
        # policy/v1
        _res("PodDisruptionBudget", "poddisruptionbudgets", PodDisruptionBudgetStrategy(), short=["pdb"],
             sub=["status"], group="policy"),
        # events.k8s.io/v1: a view of the core/v1 Events (one storage, converted both ways)
        _res("Event", "events", events, short=["ev"], group="events.k8s.io", storage="v1", storage_group=""),
        # rbac.authorization.k8s.io/v1 (escalation and bind checks in strategy/rbac.py)
        _res("Role", "roles", roles, group=rbac),
        _res("RoleBinding", "rolebindings", bindings, group=rbac),
        _res("ClusterRole", "clusterroles", roles, False, group=rbac),
        _res("ClusterRoleBinding", "clusterrolebindings", bindings, False, group=rbac),
        # certificates.k8s.io/v1
        _res("CertificateSigningRequest", "certificatesigningrequests", CertificateSigningRequestStrategy(), False,
             short=["csr"], sub=["status", "approval"], group="certificates.k8s.io",
             verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
        # v1 ComponentStatus: probed on every GET, never stored (server/componentstatus.py)
        _res("ComponentStatus", "componentstatuses", plain, False, short=["cs"], verbs=("get", "list")),
        # authentication.k8s.io/v1, authorization.k8s.io/v1: create-only reviews, never stored
        # (answered by server/authapis.py)
        _res("TokenReview", "tokenreviews", plain, False, group="authentication.k8s.io", verbs=CREATE_ONLY),
        _res("SelfSubjectReview", "selfsubjectreviews", plain, False, group="authentication.k8s.io",
             verbs=CREATE_ONLY),
        _res("SubjectAccessReview", "subjectaccessreviews", plain, False, group="authorization.k8s.io",
             verbs=CREATE_ONLY),
        _res("SelfSubjectAccessReview", "selfsubjectaccessreviews", plain, False, group="authorization.k8s.io",
             verbs=CREATE_ONLY),
        _res("SelfSubjectRulesReview", "selfsubjectrulesreviews", plain, False, group="authorization.k8s.io",
             verbs=CREATE_ONLY),
        _res("LocalSubjectAccessReview", "localsubjectaccessreviews", plain, group="authorization.k8s.io",
             verbs=CREATE_ONLY),
        # scheduling.controlplane.io/v1: the scheduler's decision records (docs/scheduling.md)
        _res("SchedulingDecision", "schedulingdecisions", decisions, short=["sd"],
             group="scheduling.controlplane.io"),
    ]


def builtin_registry(event_ttl: int | None = None, decision_ttl: int | None = None) -> Registry:
    """A registry serving every built-in resource."""
    registry = Registry()
    for info in builtin_resources(event_ttl, decision_ttl):
        registry.add(info)
    return registry
