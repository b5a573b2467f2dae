"""NodeName filter: a pod that names its node (``spec.nodeName``) fits only there."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import FilterResult, Plugin, Status
from schedulers.framework.registry import register


@register
class NodeName(Plugin):
    name = "NodeName"
    events = ("Node/Add",)

    def pre_filter(self, cs, pod, snap) -> Status | None:
        return None if pod.node_name else Status.skip()

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        ok = np.array([snap.nodes[i].name == pod.node_name for i in idx], dtype=bool)
        return FilterResult(ok, "node(s) didn't match the requested node name", unresolvable=True)
