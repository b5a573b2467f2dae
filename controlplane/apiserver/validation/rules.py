"""Which validation rules each built-in kind gets: the kind-specific ``ValidateX`` functions of
Kubernetes 1.32 (``core.py``, ``podtemplate.py``, ``event.py``, ``apps.py``, ``batch.py``, ``network.py``,
``autoscaling.py``, ``apiregistration.py``, ``storage.py``, ``csi.py``, and
``crd/validation.py`` for
CustomResourceDefinitions), keyed by (group, kind). Each rule appends causes ``{reason,
message, field}`` (Kubernetes' ``field.Error`` types: FieldValueRequired, FieldValueInvalid,
FieldValueNotSupported, FieldValueDuplicate, FieldValueForbidden, FieldValueNotFound,
FieldValueTooLong) with Kubernetes' wording. Caller: ``objects.validate``.
"""

from __future__ import annotations

from typing import Any, Callable

from controlplane.apiserver.crd.validation import validate_crd
from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.validation import admissionregistration as admreg
from controlplane.apiserver.validation import apiregistration, apps, autoscaling, batch, core, event, network, quota, scheduling
from controlplane.apiserver.validation import csi, node, podtemplate, storage

Obj = dict[str, Any]
GVK = tuple[str, str, str]
Rule = Callable[[Obj, Errors, bool, Obj], None]

RULES: dict[tuple[str, str], Rule] = {
    ("", "Pod"): core.pod,
    ("", "ReplicationController"): core.replication_controller,
    ("", "PodTemplate"): podtemplate.pod_template,
    ("", "Service"): core.service,
    ("", "ConfigMap"): core.configmap,
    ("", "Secret"): core.secret,
    ("", "Namespace"): core.namespace,
    ("", "Event"): event.validate_event,
    ("", "PersistentVolume"): storage.persistent_volume,
    ("", "PersistentVolumeClaim"): storage.persistent_volume_claim,
    ("storage.k8s.io", "StorageClass"): storage.storage_class,
    ("storage.k8s.io", "CSIDriver"): csi.csi_driver,
    ("storage.k8s.io", "CSINode"): csi.csi_node,
    ("storage.k8s.io", "VolumeAttachment"): csi.volume_attachment,
    ("storage.k8s.io", "CSIStorageCapacity"): csi.csi_storage_capacity,
    ("node.k8s.io", "RuntimeClass"): node.runtime_class,
    ("apps", "Deployment"): apps.deployment,
    ("apps", "ReplicaSet"): apps.replicaset,
    ("apps", "StatefulSet"): apps.statefulset,
    ("apps", "DaemonSet"): apps.daemonset,
    ("apps", "ControllerRevision"): apps.controller_revision,
    ("batch", "Job"): batch.job,
    ("autoscaling", "HorizontalPodAutoscaler"): autoscaling.horizontal_pod_autoscaler,
    ("apiregistration.k8s.io", "APIService"): apiregistration.apiservice,
    ("batch", "CronJob"): batch.cronjob,
    ("coordination.k8s.io", "Lease"): core.lease,
    ("discovery.k8s.io", "EndpointSlice"): network.endpoint_slice,
    ("networking.k8s.io", "NetworkPolicy"): network.network_policy,
    ("networking.k8s.io", "Ingress"): network.ingress,
    ("networking.k8s.io", "IngressClass"): network.ingress_class,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): validate_crd,
    ("", "LimitRange"): quota.limit_range,
    ("", "ResourceQuota"): quota.resource_quota,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): admreg.mutating_webhook_configuration,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): admreg.validating_webhook_configuration,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): admreg.validating_admission_policy,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): admreg.validating_admission_policy_binding,
    ("scheduling.controlplane.io", "SchedulingDecision"): scheduling.scheduling_decision,
}


def validate_kind(obj: Obj, gvk: GVK, errs: Errors, *, is_update: bool, old: Obj | None) -> None:
    rule = RULES.get((gvk[0], gvk[2]))
    if rule is not None:
        rule(obj, errs, is_update and old is not None, old or {})
