"""ReplicationControllers (``pkg/registry/core/replicationcontroller``): Kubernetes' defaults
(``SetDefaults_ReplicationController``: an empty selector, and empty labels, default to the
pod template's labels; replicas 1; the template's pod defaults), a fresh status on create,
generation tracking, and the ``/scale`` view's selector from its equality-based selector map.
Validation: ``validation/core.replication_controller``; controller:
``controlplane/controllers/replicationcontroller.py``.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.strategy.base import Strategy
from controlplane.apiserver.strategy.podtemplate import sub, template_defaults
from controlplane.machinery.scale import map_selector_text

Obj = dict[str, Any]


class ReplicationControllerStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        template = spec.get("template")
        labels = ((template.get("metadata") or {}).get("labels")) if isinstance(template, dict) else None
        if labels:
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            meta = sub(obj, "metadata")
            if not meta.get("labels"):
                meta["labels"] = dict(labels)
        if spec.get("replicas") is None:
            spec["replicas"] = 1
        template_defaults(spec)

    def scale_selector(self, info: ResourceInfo, obj: Obj) -> str:
        return map_selector_text((obj.get("spec") or {}).get("selector"))
