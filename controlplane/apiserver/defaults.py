"""Server-side defaulting, as kube-apiserver 1.32 does it on create and update.

Covers the ``SetDefaults_*`` functions of k8s.io/api types plus what the default admission
chain adds on pod creation (ServiceAccount, Priority, DefaultTolerationSeconds) and the
strategies' ``PrepareForCreate`` bits (pod phase/QoS, namespace phase and finalizer, job
selector from the uid). ``apply_defaults`` is pure: it returns a new object. Neighbours:
``validation.py`` (runs after defaulting), ``crd_schema.py`` (CR defaults), the handlers.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

GVK = tuple[str, str, str]
Obj = dict[str, Any]

_PROBE = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
_DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def json_copy(value: Any) -> Any:
    """Deep copy of a JSON value (dicts, lists, scalars), much cheaper than ``copy.deepcopy``;
    anything else inside is handed to ``copy.deepcopy``."""
    t = type(value)
    if t is dict:
        return {k: v if type(v) in _ATOMIC else json_copy(v) for k, v in value.items()}
    if t is list:
        return [v if type(v) in _ATOMIC else json_copy(v) for v in value]
    if t in _ATOMIC:
        return value
    return copy.deepcopy(value)


def apply_defaults(obj: Obj, gvk: GVK) -> Obj:
    """Return a defaulted deep copy of ``obj`` (unknown kinds come back unchanged)."""
    out = json_copy(obj)
    fn = _DEFAULTERS.get((gvk[0], gvk[2]))
    if fn is not None:
        fn(out)
    return out


def _d(m: Obj, key: str) -> Obj:
    v = m.get(key)
    if not isinstance(v, dict):
        v = m[key] = {}
    return v


def _probe(p: Any) -> None:
    if not isinstance(p, dict):
        return
    for k, v in _PROBE.items():
        p.setdefault(k, v)
    if isinstance(p.get("httpGet"), dict):
        p["httpGet"].setdefault("path", "/")
        p["httpGet"].setdefault("scheme", "HTTP")
    if isinstance(p.get("grpc"), dict):
        p["grpc"].setdefault("service", "")


def _image_pull_policy(image: str) -> str:
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if "@" in image:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _container(c: Any, host_network: bool, is_pod: bool) -> None:
    if not isinstance(c, dict):
        return
    if isinstance(c.get("image"), str):
        c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    res = _d(c, "resources")
    if is_pod and isinstance(res.get("limits"), dict):
        req = _d(res, "requests")
        for k, v in res["limits"].items():
            req.setdefault(k, v)
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if host_network and "containerPort" in p:
                p.setdefault("hostPort", p["containerPort"])
    for e in c.get("env") or []:
        fr = (e.get("valueFrom") or {}).get("fieldRef") if isinstance(e, dict) else None
        if isinstance(fr, dict):
            fr.setdefault("apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(probe))


def _volume(v: Any) -> None:
    if not isinstance(v, dict):
        return
    for src in ("configMap", "secret"):
        if isinstance(v.get(src), dict):
            v[src].setdefault("defaultMode", 420)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")
    if isinstance(v.get("downwardAPI"), dict):
        v["downwardAPI"].setdefault("defaultMode", 420)
    if isinstance(v.get("projected"), dict):
        v["projected"].setdefault("defaultMode", 420)
    if not any(k != "name" for k in v):
        v["emptyDir"] = {}


def pod_spec_defaults(spec: Obj, *, is_pod: bool = False) -> None:
    """``SetDefaults_PodSpec`` (+ container/volume defaults); in place."""
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    host_network = bool(spec.get("hostNetwork"))
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            _container(c, host_network, is_pod)
    for v in spec.get("volumes") or []:
        _volume(v)


def _template(spec: Obj) -> None:
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        pod_spec_defaults(_d(tmpl, "spec"))


def _qos_class(spec: Obj) -> str:
    containers = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                  if isinstance(c, dict)]
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or str(req.get(r, lim[r])) != str(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _pod(obj: Obj) -> None:
    spec = _d(obj, "spec")
    pod_spec_defaults(spec, is_pod=True)
    spec.setdefault("enableServiceLinks", True)
    # admission: ServiceAccount, Priority, DefaultTolerationSeconds
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    for key in _DEFAULT_TOLERATIONS:
        if not any(isinstance(t, dict) and (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
                   and t.get("effect") in (None, "", "NoExecute") for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 300})
    spec["tolerations"] = tolerations
    status = _d(obj, "status")
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", _qos_class(spec))


def _deployment(obj: Obj) -> None:
    spec = _d(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = _d(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(spec)


def _replicaset(obj: Obj) -> None:
    spec = _d(obj, "spec")
    spec.setdefault("replicas", 1)
    _template(spec)


def _statefulset(obj: Obj) -> None:
    spec = _d(obj, "spec")
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    us = _d(spec, "updateStrategy")
    us.setdefault("type", "RollingUpdate")
    if us["type"] == "RollingUpdate":
        _d(us, "rollingUpdate").setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    policy = _d(spec, "persistentVolumeClaimRetentionPolicy")
    policy.setdefault("whenDeleted", "Retain")
    policy.setdefault("whenScaled", "Retain")
    for pvc in spec.get("volumeClaimTemplates") or []:
        if isinstance(pvc, dict):
            _d(pvc, "spec").setdefault("volumeMode", "Filesystem")
            _d(pvc, "status").setdefault("phase", "Pending")
    _template(spec)


def _daemonset(obj: Obj) -> None:
    spec = _d(obj, "spec")
    us = _d(spec, "updateStrategy")
    us.setdefault("type", "RollingUpdate")
    if us["type"] == "RollingUpdate":
        ru = _d(us, "rollingUpdate")
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _template(spec)


def _job(obj: Obj) -> None:
    spec = _d(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    uid = (obj.get("metadata") or {}).get("uid")
    name = (obj.get("metadata") or {}).get("name")
    if uid and not spec.get("manualSelector") and not spec.get("selector"):
        generated = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                     "controller-uid": uid, "job-name": name}
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        tmeta = _d(_d(spec, "template"), "metadata")
        labels = _d(tmeta, "labels")
        for k, v in generated.items():
            labels.setdefault(k, v)
    _template(spec)


def _service(obj: Obj) -> None:
    spec = _d(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if "port" in p and p.get("targetPort") in (None, 0, ""):
                p["targetPort"] = p["port"]
    if spec["type"] != "ExternalName":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    _d(_d(obj, "status"), "loadBalancer")


def _secret(obj: Obj) -> None:
    obj.setdefault("type", "Opaque")


def _namespace(obj: Obj) -> None:
    name = (obj.get("metadata") or {}).get("name")
    if name:
        _d(_d(obj, "metadata"), "labels").setdefault("kubernetes.io/metadata.name", name)
    spec = _d(obj, "spec")
    if spec.get("finalizers") is None:  # create; an emptied list (after finalize) stays empty
        spec["finalizers"] = ["kubernetes"]
    _d(obj, "status").setdefault("phase", "Active")


def _priority_class(obj: Obj) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _crd(obj: Obj) -> None:
    spec = _d(obj, "spec")
    _d(spec, "conversion").setdefault("strategy", "None")
    names = spec.get("names")
    if isinstance(names, dict):
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")


_DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("scheduling.k8s.io", "PriorityClass"): _priority_class,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
