"""NodeUnschedulable filter: cordoned nodes (``spec.unschedulable``) take no new pods unless the
pod tolerates ``node.kubernetes.io/unschedulable:NoSchedule``."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import FilterResult, Plugin
from schedulers.framework.registry import register
from schedulers.plugins.helpers import tolerates

TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


@register
class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"
    events = ("Node/Add", "Node/Update")

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        cordoned = snap.unschedulable_rows()
        if not len(cordoned) or tolerates(pod.tolerations, TAINT):
            return FilterResult.all(len(idx))
        ok = ~np.isin(idx, cordoned)
        return FilterResult(ok, "node(s) were unschedulable", unresolvable=True)
