"""The apps/v1 workloads (``pkg/registry/apps/<kind>``): Deployment, ReplicaSet, StatefulSet,
DaemonSet. Their defaults (Kubernetes' ``SetDefaults_<Kind>``, pod template included), and
``metadata.generation`` tracking (their controllers report ``status.observedGeneration``).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta.jsonutil import json_copy
from controlplane.apiserver.strategy.base import Strategy
from controlplane.apiserver.strategy.podtemplate import sub, template_defaults

Obj = dict[str, Any]
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


class DeploymentStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("replicas", 1)
        strategy = sub(spec, "strategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = sub(strategy, "rollingUpdate")
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        template_defaults(spec)


class ReplicaSetStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("replicas", 1)
        template_defaults(spec)


class StatefulSetStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        us = sub(spec, "updateStrategy")
        # ``SetDefaults_StatefulSet``: an empty type becomes RollingUpdate with an empty
        # ``rollingUpdate``; a ``partition`` is defaulted only inside a ``rollingUpdate`` that is
        # there. An explicit ``type: RollingUpdate`` without one stays without one (the
        # controller then re-creates pods below ``status.currentReplicas`` at the current
        # revision, ``isCurrentRevisionNeeded``)
        if not us.get("type"):
            us["type"] = "RollingUpdate"
            if us.get("rollingUpdate") is None:
                us["rollingUpdate"] = {}
        if us["type"] == "RollingUpdate" and isinstance(us.get("rollingUpdate"), dict):
            us["rollingUpdate"].setdefault("partition", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        policy = sub(spec, "persistentVolumeClaimRetentionPolicy")
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
        for pvc in spec.get("volumeClaimTemplates") or []:
            if isinstance(pvc, dict):
                sub(pvc, "spec").setdefault("volumeMode", "Filesystem")
                sub(pvc, "status").setdefault("phase", "Pending")
        template_defaults(spec)

    def default_and_validate(self, info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None) -> Obj:
        """``dropStatefulSetDisabledFields`` first: ``rollingUpdate.maxUnavailable`` belongs to
        the MaxUnavailableStatefulSet feature, off in 1.32, so it is dropped unless the stored
        object already uses it."""
        if _sts_max_unavailable(obj) is not None and _sts_max_unavailable(old) is None:
            obj = json_copy(obj)
            del obj["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"]
        return super().default_and_validate(info, obj, strict=strict, old=old)


def _sts_max_unavailable(obj: Obj | None) -> Any:
    us = ((obj or {}).get("spec") or {}).get("updateStrategy")
    ru = us.get("rollingUpdate") if isinstance(us, dict) else None
    return ru.get("maxUnavailable") if isinstance(ru, dict) else None


class DaemonSetStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        us = sub(spec, "updateStrategy")
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            ru = sub(us, "rollingUpdate")
            ru.setdefault("maxUnavailable", 1)
            ru.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        template_defaults(spec)

    def default_and_validate(self, info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None) -> Obj:
        """Defaults and validation, then the template generation: kube-apiserver keeps it in
        ``spec.templateGeneration`` (1 on create unless the client gave a larger one, the old
        value on update plus one when the template changed) and the v1 conversion shows it
        as the ``deprecated.daemonset.template.generation`` annotation; the controller labels
        its pods with it (``pod-template-generation``)."""
        obj = super().default_and_validate(info, obj, strict=strict, old=old)
        if old is None:
            generation = _positive_int(((obj.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION)) or 1
        else:
            old_md = old.get("metadata") or {}
            # (an object stored before the annotation was kept: its pods carry metadata.generation)
            generation = _positive_int((old_md.get("annotations") or {}).get(TEMPLATE_GENERATION)) \
                or int(old_md.get("generation") or 1)
            if (obj.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
                generation += 1
        sub(sub(obj, "metadata"), "annotations")[TEMPLATE_GENERATION] = str(generation)
        return obj


def _positive_int(v: Any) -> int | None:
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    return n if n >= 1 else None
