"""Resources whose writes follow the generic rules with one small addition each:
PriorityClass (``preemptionPolicy`` defaults to ``PreemptLowerPriority``) and
PodDisruptionBudget (generation tracking, for ``status.observedGeneration``). The plainest
resources (ConfigMap, Endpoints, ServiceAccount, Lease) use ``base.Strategy`` itself.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy

Obj = dict[str, Any]


class PriorityClassStrategy(Strategy):
    def set_defaults(self, obj: Obj) -> None:
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


class PodDisruptionBudgetStrategy(Strategy):
    tracks_generation = True
