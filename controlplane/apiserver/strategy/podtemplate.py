"""Defaulting of a pod spec (``SetDefaults_PodSpec`` with its containers, probes and volumes),
shared by pods and by every kind with a pod template (Deployment, ReplicaSet, StatefulSet,
DaemonSet, Job, ReplicationController, CronJob, PodTemplate). In place; ``sub`` gives a nested
map, made when absent. Users: the strategies of those kinds; core/v1 PodTemplate's own strategy
(``PodTemplateStrategy``, its template at the top level) lives here too.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy
from controlplane.apiserver.validation.volumes import zero_divisors

Obj = dict[str, Any]

_PROBE = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def sub(m: Obj, key: str) -> Obj:
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
    res = sub(c, "resources")
    if is_pod and isinstance(res.get("limits"), dict):
        req = sub(res, "requests")
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


def _field_refs(items: Any) -> None:
    """``SetDefaults_ObjectFieldSelector`` on downwardAPI volume files."""
    for it in items if isinstance(items, list) else []:
        if isinstance(it, dict) and isinstance(it.get("fieldRef"), dict):
            it["fieldRef"].setdefault("apiVersion", "v1")


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
        for s in v["projected"].get("sources") or []:
            if isinstance(s, dict) and isinstance(s.get("serviceAccountToken"), dict):
                s["serviceAccountToken"].setdefault("expirationSeconds", 3600)  # SetDefaults_ServiceAccountTokenProjection
            if isinstance(s, dict) and isinstance(s.get("downwardAPI"), dict):
                _field_refs(s["downwardAPI"].get("items"))
    if isinstance(v.get("downwardAPI"), dict):
        _field_refs(v["downwardAPI"].get("items"))
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
    zero_divisors(spec)


def template_defaults(spec: Obj) -> None:
    """Defaults of the pod template under ``spec.template`` (when there is one)."""
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        pod_spec_defaults(sub(tmpl, "spec"))


class PodTemplateStrategy(Strategy):
    """core/v1 PodTemplate (``pkg/registry/core/podtemplate``): the template's pod defaults,
    as a ReplicationController's; generation 1 on create and bumped when the template
    changes. Validation: ``validation/podtemplate.pod_template``."""

    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        template_defaults(obj)
