"""Field numbers of the k8s.io/api and apimachinery ``generated.proto`` messages that clients
send us in protobuf (kubectl's typed ``create`` generators), reconstructed and checked against
bodies captured from real kubectl v1.32 (``tests/unit/data/protobuf/``).

Notation per field: ``"<number> <jsonName>[:<type>][*]"``; type defaults to ``string``;
``[]T`` repeated; ``map`` / ``map:bytes`` / ``map:quantity`` / ``map:strings`` (an ``ExtraValue``: a list) /
``map:<Message>`` maps with string keys; ``int``, ``bool``, ``bytes``, ``quantity``, ``intstr``, ``time``, ``microtime``,
``raw`` (RawExtension) or a message name; ``*`` marks a Go pointer or a field without
``omitempty`` (kept even when zero);
a json name ``-`` embeds the message's fields into the parent (Go struct embedding).
Caller: ``protobuf.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    json: str
    kind: str
    repeated: bool = False
    pointer: bool = False
    embed: bool = False


def _m(*specs: str) -> dict[int, Field]:
    out: dict[int, Field] = {}
    for spec in specs:
        num, rest = spec.split(" ", 1)
        name, _, kind = rest.partition(":")
        kind = kind or "string"
        pointer = kind.endswith("*") or name.endswith("*")
        kind, name = kind.rstrip("*"), name.rstrip("*")
        repeated = kind.startswith("[]") or kind.startswith("map")
        kind = kind[2:] if kind.startswith("[]") else kind
        out[int(num)] = Field(name, kind, repeated, pointer, name == "-")
    return out


MESSAGES: dict[str, dict[int, Field]] = {
    # ---- apimachinery meta/v1
    "ObjectMeta": _m("1 name", "2 generateName", "3 namespace", "4 selfLink", "5 uid",
                     "6 resourceVersion", "7 generation:int", "8 creationTimestamp:time",
                     "9 deletionTimestamp:time*", "10 deletionGracePeriodSeconds:int*",
                     "11 labels:map", "12 annotations:map", "13 ownerReferences:[]OwnerReference",
                     "14 finalizers:[]string", "17 managedFields:[]ManagedFieldsEntry"),
    "OwnerReference": _m("1 kind", "3 name", "4 uid", "5 apiVersion", "6 controller:bool*",
                         "7 blockOwnerDeletion:bool*"),
    "ManagedFieldsEntry": _m("1 manager", "2 operation", "3 apiVersion", "4 time:time*",
                             "6 fieldsType", "7 fieldsV1:raw*", "8 subresource"),
    "LabelSelector": _m("1 matchLabels:map", "2 matchExpressions:[]LabelSelectorRequirement"),
    "LabelSelectorRequirement": _m("1 key", "2 operator", "3 values:[]string"),
    "Condition": _m("1 type", "2 status", "3 observedGeneration:int", "4 lastTransitionTime:time",
                    "5 reason", "6 message"),
    # ---- core/v1 Namespace, ConfigMap, Secret, ServiceAccount, Service
    "Namespace": _m("1 metadata:ObjectMeta", "2 spec:NamespaceSpec", "3 status:NamespaceStatus"),
    "NamespaceSpec": _m("1 finalizers:[]string"),
    "NamespaceStatus": _m("1 phase", "2 conditions:[]NamespaceCondition"),
    "NamespaceCondition": _m("1 type", "2 status", "4 lastTransitionTime:time", "5 reason", "6 message"),
    "ConfigMap": _m("1 metadata:ObjectMeta", "2 data:map", "3 binaryData:map:bytes", "4 immutable:bool*"),
    "Secret": _m("1 metadata:ObjectMeta", "2 data:map:bytes", "3 type", "4 stringData:map",
                 "5 immutable:bool*"),
    "ServiceAccount": _m("1 metadata:ObjectMeta", "2 secrets:[]ObjectReference",
                         "3 imagePullSecrets:[]LocalObjectReference",
                         "4 automountServiceAccountToken:bool*"),
    "ObjectReference": _m("1 kind", "2 namespace", "3 name", "4 uid", "5 apiVersion",
                          "6 resourceVersion", "7 fieldPath"),
    "LocalObjectReference": _m("1 name"),
    "Service": _m("1 metadata:ObjectMeta", "2 spec:ServiceSpec", "3 status:ServiceStatus"),
    "ServiceSpec": _m("1 ports:[]ServicePort", "2 selector:map", "3 clusterIP", "4 type",
                      "5 externalIPs:[]string", "7 sessionAffinity", "8 loadBalancerIP",
                      "9 loadBalancerSourceRanges:[]string", "10 externalName",
                      "11 externalTrafficPolicy", "12 healthCheckNodePort:int",
                      "13 publishNotReadyAddresses:bool"),
    "ServicePort": _m("1 name", "2 protocol", "3 port:int", "4 targetPort:intstr", "5 nodePort:int",
                      "6 appProtocol*"),
    "ServiceStatus": _m("1 loadBalancer:LoadBalancerStatus", "2 conditions:[]Condition"),
    "LoadBalancerStatus": _m("1 ingress:[]LoadBalancerIngress"),
    "LoadBalancerIngress": _m("1 ip", "2 hostname"),
    # ---- pods and templates
    "Pod": _m("1 metadata:ObjectMeta", "2 spec:PodSpec", "3 status:PodStatus"),
    "PodStatus": _m("1 phase", "3 message", "4 reason", "5 hostIP", "6 podIP", "9 qosClass",
                    "11 nominatedNodeName"),
    "PodTemplateSpec": _m("1 metadata:ObjectMeta", "2 spec:PodSpec"),
    "PodSpec": _m("1 volumes:[]Volume", "2 containers:[]Container", "3 restartPolicy",
                  "4 terminationGracePeriodSeconds:int*", "5 activeDeadlineSeconds:int*",
                  "6 dnsPolicy", "7 nodeSelector:map", "8 serviceAccountName", "9 serviceAccount",
                  "10 nodeName", "11 hostNetwork:bool", "12 hostPID:bool", "13 hostIPC:bool",
                  "14 securityContext:PodSecurityContext*",
                  "15 imagePullSecrets:[]LocalObjectReference", "16 hostname", "17 subdomain",
                  "19 schedulerName", "20 initContainers:[]Container",
                  "21 automountServiceAccountToken:bool*", "22 tolerations:[]Toleration",
                  "24 priorityClassName", "25 priority:int*", "27 shareProcessNamespace:bool*",
                  "29 runtimeClassName*", "30 enableServiceLinks:bool*", "31 preemptionPolicy*",
                  "34 ephemeralContainers:[]EphemeralContainer"),
    # EphemeralContainerCommon has Container's field numbers; JSON inlines it
    "EphemeralContainer": _m("1 -:Container", "2 targetContainerName"),
    "PodSecurityContext": _m("2 runAsUser:int*", "3 runAsNonRoot:bool*",
                             "4 supplementalGroups:[]int", "5 fsGroup:int*", "6 runAsGroup:int*"),
    "Container": _m("1 name", "2 image", "3 command:[]string", "4 args:[]string", "5 workingDir",
                    "6 ports:[]ContainerPort", "7 env:[]EnvVar", "8 resources:ResourceRequirements",
                    "9 volumeMounts:[]VolumeMount", "10 livenessProbe:Probe*",
                    "11 readinessProbe:Probe*", "13 terminationMessagePath", "14 imagePullPolicy",
                    "15 securityContext:SecurityContext*", "16 stdin:bool", "17 stdinOnce:bool",
                    "18 tty:bool", "19 envFrom:[]EnvFromSource", "20 terminationMessagePolicy",
                    "22 startupProbe:Probe*", "24 restartPolicy*"),
    "ContainerPort": _m("1 name", "2 hostPort:int", "3 containerPort:int", "4 protocol", "5 hostIP"),
    "EnvVar": _m("1 name", "2 value", "3 valueFrom:EnvVarSource*"),
    "EnvVarSource": _m("1 fieldRef:ObjectFieldSelector*", "2 resourceFieldRef:ResourceFieldSelector*",
                       "3 configMapKeyRef:ConfigMapKeySelector*", "4 secretKeyRef:SecretKeySelector*"),
    "ObjectFieldSelector": _m("1 apiVersion", "2 fieldPath"),
    "ResourceFieldSelector": _m("1 containerName", "2 resource", "3 divisor:quantity"),
    "ConfigMapKeySelector": _m("1 -:LocalObjectReference", "2 key", "3 optional:bool*"),
    "SecretKeySelector": _m("1 -:LocalObjectReference", "2 key", "3 optional:bool*"),
    "EnvFromSource": _m("1 prefix", "2 configMapRef:ConfigMapEnvSource*", "3 secretRef:SecretEnvSource*"),
    "ConfigMapEnvSource": _m("1 -:LocalObjectReference", "2 optional:bool*"),
    "SecretEnvSource": _m("1 -:LocalObjectReference", "2 optional:bool*"),
    "ResourceRequirements": _m("1 limits:map:quantity", "2 requests:map:quantity"),
    "VolumeMount": _m("1 name", "2 readOnly:bool", "3 mountPath", "4 subPath",
                      "5 mountPropagation*", "6 subPathExpr"),
    "Probe": _m("1 -:ProbeHandler", "2 initialDelaySeconds:int", "3 timeoutSeconds:int",
                "4 periodSeconds:int", "5 successThreshold:int", "6 failureThreshold:int",
                "7 terminationGracePeriodSeconds:int*"),
    "ProbeHandler": _m("1 exec:ExecAction*", "2 httpGet:HTTPGetAction*", "3 tcpSocket:TCPSocketAction*"),
    "ExecAction": _m("1 command:[]string"),
    "HTTPGetAction": _m("1 path", "2 port:intstr", "3 host", "4 scheme", "5 httpHeaders:[]HTTPHeader"),
    "HTTPHeader": _m("1 name", "2 value"),
    "TCPSocketAction": _m("1 port:intstr", "2 host"),
    "SecurityContext": _m("1 capabilities:Capabilities*", "2 privileged:bool*", "4 runAsUser:int*",
                          "5 runAsNonRoot:bool*", "6 readOnlyRootFilesystem:bool*",
                          "7 allowPrivilegeEscalation:bool*", "8 runAsGroup:int*"),
    "Capabilities": _m("1 add:[]string", "2 drop:[]string"),
    "Toleration": _m("1 key", "2 operator", "3 value", "4 effect", "5 tolerationSeconds:int*"),
    "Volume": _m("1 name", "2 -:VolumeSource"),
    "VolumeSource": _m("1 hostPath:HostPathVolumeSource*", "2 emptyDir:EmptyDirVolumeSource*",
                       "6 secret:SecretVolumeSource*",
                       "10 persistentVolumeClaim:PersistentVolumeClaimVolumeSource*",
                       "19 configMap:ConfigMapVolumeSource*"),
    "HostPathVolumeSource": _m("1 path", "2 type*"),
    "EmptyDirVolumeSource": _m("1 medium", "2 sizeLimit:quantity*"),
    "SecretVolumeSource": _m("1 secretName", "2 items:[]KeyToPath", "3 defaultMode:int*",
                             "4 optional:bool*"),
    "ConfigMapVolumeSource": _m("1 -:LocalObjectReference", "2 items:[]KeyToPath",
                                "3 defaultMode:int*", "4 optional:bool*"),
    "PersistentVolumeClaimVolumeSource": _m("1 claimName", "2 readOnly:bool"),
    "KeyToPath": _m("1 key", "2 path", "3 mode:int*"),
    # ---- apps/v1 Deployment
    "Deployment": _m("1 metadata:ObjectMeta", "2 spec:DeploymentSpec", "3 status:DeploymentStatus"),
    "DeploymentSpec": _m("1 replicas:int*", "2 selector:LabelSelector*", "3 template:PodTemplateSpec",
                         "4 strategy:DeploymentStrategy", "5 minReadySeconds:int",
                         "6 revisionHistoryLimit:int*", "7 paused:bool",
                         "9 progressDeadlineSeconds:int*"),
    "DeploymentStrategy": _m("1 type", "2 rollingUpdate:RollingUpdateDeployment*"),
    "RollingUpdateDeployment": _m("1 maxUnavailable:intstr*", "2 maxSurge:intstr*"),
    "DeploymentStatus": _m("1 observedGeneration:int", "2 replicas:int", "3 updatedReplicas:int",
                           "4 availableReplicas:int", "5 unavailableReplicas:int",
                           "6 conditions:[]DeploymentCondition", "7 readyReplicas:int",
                           "8 collisionCount:int*"),
    "DeploymentCondition": _m("1 type", "2 status", "4 reason", "5 message", "6 lastUpdateTime:time",
                              "7 lastTransitionTime:time"),
    # ---- batch/v1 Job, CronJob
    "Job": _m("1 metadata:ObjectMeta", "2 spec:JobSpec", "3 status:JobStatus"),
    "JobSpec": _m("1 parallelism:int*", "2 completions:int*", "3 activeDeadlineSeconds:int*",
                  "4 selector:LabelSelector*", "5 manualSelector:bool*", "6 template:PodTemplateSpec",
                  "7 backoffLimit:int*", "8 ttlSecondsAfterFinished:int*", "9 completionMode*",
                  "10 suspend:bool*"),
    "JobStatus": _m("2 startTime:time*", "3 completionTime:time*", "4 active:int", "5 succeeded:int",
                    "6 failed:int", "7 completedIndexes", "9 ready:int*"),
    "CronJob": _m("1 metadata:ObjectMeta", "2 spec:CronJobSpec", "3 status:CronJobStatus"),
    "CronJobSpec": _m("1 schedule*", "8 timeZone*", "2 startingDeadlineSeconds:int*", "3 concurrencyPolicy",
                      "4 suspend:bool*", "5 jobTemplate:JobTemplateSpec*", "6 successfulJobsHistoryLimit:int*",
                      "7 failedJobsHistoryLimit:int*"),
    "JobTemplateSpec": _m("1 metadata:ObjectMeta", "2 spec:JobSpec"),
    "CronJobStatus": _m("1 active:[]ObjectReference", "4 lastScheduleTime:time*", "5 lastSuccessfulTime:time*"),
    # ---- scheduling.k8s.io/v1, policy/v1
    "PriorityClass": _m("1 metadata:ObjectMeta", "2 value:int", "3 globalDefault:bool",
                        "4 description", "5 preemptionPolicy*"),
    "PodDisruptionBudget": _m("1 metadata:ObjectMeta", "2 spec:PodDisruptionBudgetSpec",
                              "3 status:PodDisruptionBudgetStatus"),
    "PodDisruptionBudgetSpec": _m("1 minAvailable:intstr*", "2 selector:LabelSelector*",
                                  "3 maxUnavailable:intstr*", "4 unhealthyPodEvictionPolicy*"),
    "PodDisruptionBudgetStatus": _m("1 observedGeneration:int", "3 disruptionsAllowed:int*",
                                    "4 currentHealthy:int*", "5 desiredHealthy:int*",
                                    "6 expectedPods:int*"),  # not omitempty in Go
    # ---- rbac.authorization.k8s.io/v1
    "PolicyRule": _m("1 verbs:[]string", "2 apiGroups:[]string", "3 resources:[]string", "4 resourceNames:[]string",
                     "5 nonResourceURLs:[]string"),
    "Role": _m("1 metadata:ObjectMeta", "2 rules:[]PolicyRule"),
    "ClusterRole": _m("1 metadata:ObjectMeta", "2 rules:[]PolicyRule", "3 aggregationRule:AggregationRule*"),
    "AggregationRule": _m("1 clusterRoleSelectors:[]LabelSelector"),
    "RoleBinding": _m("1 metadata:ObjectMeta", "2 subjects:[]Subject", "3 roleRef:RoleRef"),
    "ClusterRoleBinding": _m("1 metadata:ObjectMeta", "2 subjects:[]Subject", "3 roleRef:RoleRef"),
    "Subject": _m("1 kind", "2 apiGroup", "3 name", "4 namespace"),
    "RoleRef": _m("1 apiGroup", "2 kind", "3 name"),
    # ---- authorization.k8s.io/v1
    "SelfSubjectAccessReview": _m("1 metadata:ObjectMeta", "2 spec:SelfSubjectAccessReviewSpec",
                                  "3 status:SubjectAccessReviewStatus"),
    "SelfSubjectAccessReviewSpec": _m("1 resourceAttributes:ResourceAttributes*",
                                      "2 nonResourceAttributes:NonResourceAttributes*"),
    "SubjectAccessReview": _m("1 metadata:ObjectMeta", "2 spec:SubjectAccessReviewSpec",
                              "3 status:SubjectAccessReviewStatus"),
    "LocalSubjectAccessReview": _m("1 metadata:ObjectMeta", "2 spec:SubjectAccessReviewSpec",
                                   "3 status:SubjectAccessReviewStatus"),
    "SubjectAccessReviewSpec": _m("1 resourceAttributes:ResourceAttributes*",
                                  "2 nonResourceAttributes:NonResourceAttributes*", "3 user",
                                  "4 groups:[]string", "6 uid"),  # (5 extra: not decoded)
    "ResourceAttributes": _m("1 namespace", "2 verb", "3 group", "4 version", "5 resource", "6 subresource",
                             "7 name"),
    "NonResourceAttributes": _m("1 path", "2 verb"),
    "SubjectAccessReviewStatus": _m("1 allowed:bool*", "2 reason", "3 evaluationError", "4 denied:bool"),
    "SelfSubjectRulesReview": _m("1 metadata:ObjectMeta", "2 spec:SelfSubjectRulesReviewSpec",
                                 "3 status:SubjectRulesReviewStatus"),
    "SubjectRulesReviewStatus": _m("1 resourceRules:[]ResourceRule", "2 nonResourceRules:[]NonResourceRule",
                                   "3 incomplete:bool", "4 evaluationError"),
    "ResourceRule": _m("1 verbs:[]string", "2 apiGroups:[]string", "3 resources:[]string",
                       "4 resourceNames:[]string"),
    "NonResourceRule": _m("1 verbs:[]string", "2 nonResourceURLs:[]string"),
    "SelfSubjectRulesReviewSpec": _m("1 namespace"),
    # ---- authentication.k8s.io/v1
    "TokenRequest": _m("1 metadata:ObjectMeta", "2 spec:TokenRequestSpec", "3 status:TokenRequestStatus"),
    "TokenRequestStatus": _m("1 token", "2 expirationTimestamp:time"),
    "TokenRequestSpec": _m("1 audiences:[]string", "3 boundObjectRef:BoundObjectReference*",
                           "4 expirationSeconds:int*"),
    "BoundObjectReference": _m("1 kind", "2 apiVersion", "3 name", "4 uid"),
    "TokenReview": _m("1 metadata:ObjectMeta", "2 spec:TokenReviewSpec", "3 status:TokenReviewStatus"),
    "TokenReviewStatus": _m("1 authenticated:bool", "2 user:UserInfo", "3 error", "4 audiences:[]string"),
    "UserInfo": _m("1 username", "2 uid", "3 groups:[]string"),
    "TokenReviewSpec": _m("1 token", "2 audiences:[]string"),
    "SelfSubjectReview": _m("1 metadata:ObjectMeta", "2 status:SelfSubjectReviewStatus"),
    "SelfSubjectReviewStatus": _m("1 userInfo:UserInfo"),
    # ---- certificates.k8s.io/v1
    "CertificateSigningRequest": _m("1 metadata:ObjectMeta", "2 spec:CertificateSigningRequestSpec",
                                    "3 status:CertificateSigningRequestStatus"),
    "CertificateSigningRequestStatus": _m("1 conditions:[]CertificateSigningRequestCondition", "2 certificate:bytes"),
    "CertificateSigningRequestCondition": _m("1 type", "2 reason", "3 message", "4 lastUpdateTime:time",
                                             "5 lastTransitionTime:time", "6 status"),
    "CertificateSigningRequestSpec": _m("1 request:bytes", "2 username", "3 uid", "4 groups:[]string",
                                        "5 usages:[]string", "6 extra:map:strings", "7 signerName",
                                        "8 expirationSeconds:int*"),
    # ---- core/v1 ResourceQuota (``kubectl create quota``)
    "ResourceQuota": _m("1 metadata:ObjectMeta", "2 spec:ResourceQuotaSpec", "3 status:ResourceQuotaStatus"),
    "ResourceQuotaSpec": _m("1 hard:map:quantity", "2 scopes:[]string", "3 scopeSelector:ScopeSelector*"),
    "ResourceQuotaStatus": _m("1 hard:map:quantity", "2 used:map:quantity"),
    "ScopeSelector": _m("1 matchExpressions:[]ScopedResourceSelectorRequirement"),
    "ScopedResourceSelectorRequirement": _m("1 scopeName", "2 operator", "3 values:[]string"),
}

# (group, kind) -> top-level message
# ---- autoscaling/v1 (kubectl autoscale)
MESSAGES.update({
    "HorizontalPodAutoscaler": _m("1 metadata:ObjectMeta", "2 spec:HorizontalPodAutoscalerSpec",
                                  "3 status:HorizontalPodAutoscalerStatus"),
    "HorizontalPodAutoscalerSpec": _m("1 scaleTargetRef:CrossVersionObjectReference", "2 minReplicas:int*",
                                      "3 maxReplicas:int*", "4 targetCPUUtilizationPercentage:int*"),
    "CrossVersionObjectReference": _m("1 kind", "2 name", "3 apiVersion"),
    "HorizontalPodAutoscalerStatus": _m("1 observedGeneration:int*", "2 lastScaleTime:time*", "3 currentReplicas:int*",
                                        "4 desiredReplicas:int*", "5 currentCPUUtilizationPercentage:int*"),
    # ---- networking.k8s.io/v1 Ingress, IngressClass (kubectl create ingress / ingressclass)
    "Ingress": _m("1 metadata:ObjectMeta", "2 spec:IngressSpec", "3 status:IngressStatus"),
    "IngressSpec": _m("1 defaultBackend:IngressBackend*", "2 tls:[]IngressTLS", "3 rules:[]IngressRule",
                      "4 ingressClassName*"),
    "IngressBackend": _m("3 resource:TypedLocalObjectReference*", "4 service:IngressServiceBackend*"),
    "IngressServiceBackend": _m("1 name", "2 port:ServiceBackendPort"),
    "ServiceBackendPort": _m("1 name", "2 number:int"),
    "TypedLocalObjectReference": _m("1 apiGroup*", "2 kind", "3 name"),
    "IngressTLS": _m("1 hosts:[]string", "2 secretName"),
    "IngressRule": _m("1 host", "2 -:IngressRuleValue"),
    "IngressRuleValue": _m("1 http:HTTPIngressRuleValue*"),
    "HTTPIngressRuleValue": _m("1 paths:[]HTTPIngressPath"),
    "HTTPIngressPath": _m("1 path", "2 backend:IngressBackend", "3 pathType*"),
    "IngressStatus": _m("1 loadBalancer:IngressLoadBalancerStatus"),
    "IngressLoadBalancerStatus": _m("1 ingress:[]IngressLoadBalancerIngress"),
    "IngressLoadBalancerIngress": _m("1 ip", "2 hostname", "4 ports:[]IngressPortStatus"),
    "IngressPortStatus": _m("1 port:int", "2 protocol", "3 error*"),
    "IngressClass": _m("1 metadata:ObjectMeta", "2 spec:IngressClassSpec"),
    "IngressClassSpec": _m("1 controller", "2 parameters:IngressClassParametersReference*"),
    "IngressClassParametersReference": _m("1 apiGroup*", "2 kind", "3 name", "4 scope*", "5 namespace*"),
})

# kinds whose protobuf messages differ between versions: the one version decoded here
ONLY_VERSION: dict[tuple[str, str], str] = {("autoscaling", "HorizontalPodAutoscaler"): "v1"}

KINDS: dict[tuple[str, str], str] = {
    ("", "Namespace"): "Namespace",
    ("", "ConfigMap"): "ConfigMap",
    ("", "Secret"): "Secret",
    ("", "ServiceAccount"): "ServiceAccount",
    ("", "Service"): "Service",
    ("", "Pod"): "Pod",
    ("", "ResourceQuota"): "ResourceQuota",
    ("apps", "Deployment"): "Deployment",
    ("batch", "Job"): "Job",
    ("batch", "CronJob"): "CronJob",
    ("scheduling.k8s.io", "PriorityClass"): "PriorityClass",
    ("policy", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("networking.k8s.io", "Ingress"): "Ingress",
    ("networking.k8s.io", "IngressClass"): "IngressClass",
    ("autoscaling", "HorizontalPodAutoscaler"): "HorizontalPodAutoscaler",
    ("rbac.authorization.k8s.io", "Role"): "Role",
    ("rbac.authorization.k8s.io", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("authorization.k8s.io", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io", "SubjectAccessReview"): "SubjectAccessReview",
    ("authorization.k8s.io", "LocalSubjectAccessReview"): "LocalSubjectAccessReview",
    ("authorization.k8s.io", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("authentication.k8s.io", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io", "TokenReview"): "TokenReview",
    ("authentication.k8s.io", "SelfSubjectReview"): "SelfSubjectReview",
    ("certificates.k8s.io", "CertificateSigningRequest"): "CertificateSigningRequest",
}
