"""PrioritySort (QueueSort): the order of the active queue — higher priority first, then
earlier arrival, as kube-scheduler's plugin of the same name. A pod's priority is its
``spec.priority``, or its PriorityClass's value (``schedulers.framework.podinfo.resolve_priority``).
Every profile loaded from YAML has it unless it lists another QueueSort plugin, and all
profiles of one scheduler must share one (they share the queue)."""

from __future__ import annotations

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register


@register
class PrioritySort(Plugin):
    name = "PrioritySort"

    @staticmethod
    def queue_sort_key(pod) -> tuple:
        return (-pod.priority, pod.timestamp)
