"""NodePorts filter: a pod's host ports must be free on the node (same protocol and port,
and the same host IP or either side on 0.0.0.0)."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import FilterResult, Plugin, Status
from schedulers.framework.registry import register


def conflicts(want: list[tuple[str, str, int]], used: set[tuple[str, str, int]]) -> bool:
    for ip, proto, port in want:
        for uip, uproto, uport in used:
            if port == uport and proto == uproto and (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False


@register
class NodePorts(Plugin):
    name = "NodePorts"
    events = ("Pod/Delete", "Node/Add")

    def pre_filter(self, cs, pod, snap) -> Status | None:
        return None if pod.ports else Status.skip()

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        ok = np.fromiter((not conflicts(pod.ports, snap.nodes[i].ports) for i in idx), dtype=bool, count=len(idx))
        return FilterResult(ok, "node(s) didn't have free ports for the requested pod ports")
