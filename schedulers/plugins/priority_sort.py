"""PrioritySort: the queue order — higher ``spec.priority`` first, then earlier arrival. The
scheduler resolves ``priorityClassName`` to a priority through PriorityClass objects (the class value wins over
a defaulted ``spec.priority``) (``resolve_priority``)."""

from __future__ import annotations

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register


def resolve_priority(pod: dict, classes: dict[str, dict]) -> int:
    spec = pod.get("spec") or {}
    name = spec.get("priorityClassName")
    if name and name in classes:
        return int(classes[name].get("value") or 0)
    if spec.get("priority") is not None:
        return int(spec["priority"])
    for pc in classes.values():
        if pc.get("globalDefault"):
            return int(pc.get("value") or 0)
    return 0


@register
class PrioritySort(Plugin):
    name = "PrioritySort"

    @staticmethod
    def less(a, b) -> bool:
        if a.priority != b.priority:
            return a.priority > b.priority
        return a.timestamp < b.timestamp
