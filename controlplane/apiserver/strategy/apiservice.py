"""APIService (``apiregistration.k8s.io/v1``, kube-aggregator's registry): cluster-scoped,
named ``<version>.<group>``, the status (the ``Available`` condition) written only through
``/status`` (by the availability controller, ``aggregation/available.py``); defaults as
kube-aggregator's: a service port of 443. Validation: ``validation/apiregistration.py``.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy

Obj = dict[str, Any]


class APIServiceStrategy(Strategy):
    name_rule = "segment"

    def set_defaults(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("service"), dict):
            spec["service"].setdefault("port", 443)
