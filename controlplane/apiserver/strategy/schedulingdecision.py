"""SchedulingDecisions (``scheduling.controlplane.io/v1``): the scheduler's record of one
scheduling decision (``schedulers/framework/decisions.py`` builds it; shape in
``docs/scheduling.md``). Stored as sent, expiring ``ttl_seconds`` after the write (an etcd
lease, like Events; the apiserver's ``--decision-ttl``, default 1 h). A successful decision
arrives inside the pod's Binding (``endpoints/subresources.bind`` stores it right after the
binding); failed ones are created like any object.
"""

from __future__ import annotations

from controlplane.apiserver.strategy.base import Obj, Strategy

DEFAULT_TTL_S = 3600


class SchedulingDecisionStrategy(Strategy):
    name_rule = "subdomain"

    def __init__(self, ttl_seconds: int | None = DEFAULT_TTL_S) -> None:
        self.ttl_seconds = ttl_seconds

    def default(self, obj: Obj) -> Obj:
        """No defaults: the object itself (the base class copies it first, ~20 us for a record
        of a few kB, once per scheduled pod)."""
        return obj
