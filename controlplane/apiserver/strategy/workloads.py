"""The apps/v1 workloads (``pkg/registry/apps/<kind>``): Deployment, ReplicaSet, StatefulSet,
DaemonSet. Their defaults (Kubernetes' ``SetDefaults_<Kind>``, pod template included), and
``metadata.generation`` tracking (their controllers report ``status.observedGeneration``).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy
from controlplane.apiserver.strategy.podtemplate import sub, template_defaults

Obj = dict[str, Any]


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
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            sub(us, "rollingUpdate").setdefault("partition", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        policy = sub(spec, "persistentVolumeClaimRetentionPolicy")
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
        for pvc in spec.get("volumeClaimTemplates") or []:
            if isinstance(pvc, dict):
                sub(pvc, "spec").setdefault("volumeMode", "Filesystem")
                sub(pvc, "status").setdefault("phase", "Pending")
        template_defaults(spec)


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
