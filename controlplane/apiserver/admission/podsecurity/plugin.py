"""PodSecurity (``k8s.io/pod-security-admission``, the built-in plugin): each namespace's labels
``pod-security.kubernetes.io/enforce|audit|warn`` (a level: privileged, baseline, restricted)
and ``...-version`` (``latest`` or ``v1.N``; default latest) decide what its pods may be.

- Pods (create, and updates that change the spec beyond images): a failed ``enforce`` level is
  403 ``pods "x" is forbidden: violates PodSecurity "restricted:latest": privileged (container
  "c" must not set securityContext.privileged=true), ...``; a failed ``warn`` level is a
  ``Warning`` header ``would violate PodSecurity "restricted:latest": ...``; a failed
  ``audit`` level is the audit annotation ``pod-security.kubernetes.io/audit-violations``;
  the enforced policy is annotated as ``pod-security.kubernetes.io/enforce-policy``.
- Workloads with a pod template (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
  ReplicationController, PodTemplate): warn and audit only, as Kubernetes.
- Namespaces: invalid labels are 422 on create; a namespace whose enforce level changes gets
  warnings naming its existing pods that violate the new level.
Invalid labels on a namespace make its pods be enforced at ``restricted:latest``.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.apiserver.admission.attributes import CREATE, UPDATE, Attributes, forbidden
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.admission.podsecurity.checks import LATEST, evaluate
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors

Obj = dict[str, Any]
PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
LEVELS = ("privileged", "baseline", "restricted")
_VERSION = re.compile(r"^v1\.(0|[1-9][0-9]*)$")
_TEMPLATED = {("", "replicationcontrollers"), ("", "podtemplates"), ("apps", "replicasets"),
              ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "jobs"),
              ("batch", "cronjobs")}

LevelVersion = tuple[str, tuple[int, int] | None]  # (level, None = latest)


def level_string(lv: LevelVersion) -> str:
    level, version = lv
    return f"{level}:{'latest' if version is None else f'v{version[0]}.{version[1]}'}"


def parse_policy(labels: dict[str, str] | None) -> tuple[dict[str, LevelVersion], list[dict[str, str]]]:
    """The (level, version) of each mode from namespace labels, and the field errors."""
    policy: dict[str, LevelVersion] = {m: ("privileged", None) for m in MODES}
    causes: list[dict[str, str]] = []
    for mode in MODES:
        level, version = "privileged", None
        key = PREFIX + mode
        if labels and key in labels:
            if labels[key] in LEVELS:
                level = labels[key]
            else:
                causes.append({"reason": "FieldValueInvalid", "field": f"metadata.labels[{key}]",
                               "message": f'Invalid value: "{labels[key]}": must be one of privileged, baseline, '
                                          "restricted"})
        vkey = key + "-version"
        if labels and vkey in labels:
            raw = labels[vkey]
            m = _VERSION.match(raw)
            if raw == "latest":
                version = None
            elif m:
                minor = int(m.group(1))
                version = None if (1, minor) >= LATEST else (1, minor)
            else:
                causes.append({"reason": "FieldValueInvalid", "field": f"metadata.labels[{vkey}]",
                               "message": f'Invalid value: "{raw}": must be "latest" or "v1.x"'})
        policy[mode] = (level, version)
    return policy, causes


def evaluate_pod(lv: LevelVersion, meta: Obj, spec: Obj) -> list[tuple[str, str]]:
    return evaluate(lv[0], lv[1] or LATEST, meta, spec)


def detail(results: list[tuple[str, str]]) -> str:
    return ", ".join(f"{reason} ({d})" for reason, d in results)


def _significant(new: Obj, old: Obj) -> bool:
    def strip(spec: Obj) -> Obj:
        out = dict(spec)
        for key in ("initContainers", "containers", "ephemeralContainers"):
            out[key] = [{k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c
                        for c in spec.get(key) or []]
        return out
    return strip(new.get("spec") or {}) != strip(old.get("spec") or {})


class PodSecurity(Plugin):
    name = "PodSecurity"
    validates = True

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        if operation not in (CREATE, UPDATE):
            return False
        gr = (info.group, info.plural)
        if gr == ("", "pods"):
            return subresource in ("", "ephemeralcontainers")
        if gr == ("", "namespaces"):
            return not subresource
        return gr in _TEMPLATED and not subresource

    def active(self, namespace: str) -> bool:
        if not namespace:
            return True  # namespaces themselves
        labels = self.lookups.namespace_labels(namespace)
        return labels is None or any(k.startswith(PREFIX) for k in labels)

    async def validate(self, a: Attributes) -> None:
        if a.info.plural == "namespaces" and a.info.group == "":
            return self._namespace(a)
        labels = await self.lookups.namespace_labels_live(a.namespace)
        if not any(k.startswith(PREFIX) for k in labels):
            return
        policy, causes = parse_policy(labels)
        if causes:
            policy["enforce"] = ("restricted", None)
        obj = a.obj or {}
        if a.info.plural == "pods" and a.info.group == "":
            if a.operation == UPDATE and a.old is not None and not _significant(obj, a.old):
                return
            meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
            enforce = True
        else:
            tmpl = self._template(a)
            if tmpl is None:
                return
            meta, spec = tmpl.get("metadata") or {}, tmpl.get("spec") or {}
            enforce = False
        denied = None
        if enforce:
            a.annotate(PREFIX + "enforce-policy", level_string(policy["enforce"]))
            results = evaluate_pod(policy["enforce"], meta, spec)
            if results:
                denied = policy["enforce"]
        if policy["audit"] != denied:
            results = evaluate_pod(policy["audit"], meta, spec)
            if results:
                a.annotate(PREFIX + "audit-violations",
                           f'would violate PodSecurity "{level_string(policy["audit"])}": {detail(results)}')
        if denied is not None:
            raise forbidden(a, f'violates PodSecurity "{level_string(denied)}": '
                               f"{detail(evaluate_pod(denied, meta, spec))}")
        if policy["warn"] != denied:
            results = evaluate_pod(policy["warn"], meta, spec)
            if results:
                a.warn(f'would violate PodSecurity "{level_string(policy["warn"])}": {detail(results)}')

    def _template(self, a: Attributes) -> Obj | None:
        spec = (a.obj or {}).get("spec") or {}
        if a.info.plural == "podtemplates":
            return (a.obj or {}).get("template")
        if a.info.plural == "cronjobs":
            spec = (((spec.get("jobTemplate") or {}).get("spec")) or {})
        tmpl = spec.get("template")
        if a.operation == UPDATE and a.old is not None:
            old_spec = (a.old.get("spec") or {})
            if a.info.plural == "cronjobs":
                old_spec = (((old_spec.get("jobTemplate") or {}).get("spec")) or {})
            if old_spec.get("template") == tmpl:
                return None
        return tmpl if isinstance(tmpl, dict) else None

    def _namespace(self, a: Attributes) -> None:
        labels = ((a.obj or {}).get("metadata") or {}).get("labels") or {}
        policy, causes = parse_policy(labels)
        if a.operation == CREATE:
            if causes:
                raise errors.invalid("namespaces", a.object_name(), causes)  # (kind as the plugin words it)
            return
        old_policy, _ = parse_policy(((a.old or {}).get("metadata") or {}).get("labels") or {})
        if causes:
            raise errors.invalid("namespaces", a.object_name(), causes)
        new = policy["enforce"]
        if new == old_policy["enforce"] or new[0] == "privileged":
            return
        by_warning: dict[str, list[str]] = {}
        for pod in self.lookups.list_in("pods", a.object_name()):
            results = evaluate_pod(new, pod.get("metadata") or {}, pod.get("spec") or {})
            if results:
                by_warning.setdefault(", ".join(r for r, _ in results), []).append(pod["metadata"]["name"])
        if not by_warning:
            return
        out = []
        for warning, pods in by_warning.items():
            pods.sort()
            others = len(pods) - 1
            who = pods[0] if not others else f"{pods[0]} (and {others} other pod{'s' if others > 1 else ''})"
            out.append(f"{who}: {warning}")
        a.warn(f'existing pods in namespace "{a.object_name()}" violate the new PodSecurity enforce level '
               f'"{level_string(new)}"', *sorted(out))
