"""Resources whose writes follow the generic rules with one small addition each:
PriorityClass (``preemptionPolicy`` defaults to ``PreemptLowerPriority``), LimitRange (default
limits and requests from max/min) and
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


class LimitRangeStrategy(Strategy):
    """``SetDefaults_LimitRangeItem``: for Container limits, ``default`` falls back to ``max``,
    ``defaultRequest`` to ``default``, then to ``min``."""

    def set_defaults(self, obj: Obj) -> None:
        for item in (obj.get("spec") or {}).get("limits") or [] if isinstance(obj.get("spec"), dict) else []:
            if not isinstance(item, dict) or item.get("type") != "Container":
                continue
            default = item.get("default") if isinstance(item.get("default"), dict) else {}
            request = item.get("defaultRequest") if isinstance(item.get("defaultRequest"), dict) else {}
            for k, v in (item.get("max") or {}).items():
                default.setdefault(k, v)
            for k, v in default.items():
                request.setdefault(k, v)
            for k, v in (item.get("min") or {}).items():
                request.setdefault(k, v)
            if default:
                item["default"] = default
            if request:
                item["defaultRequest"] = request
