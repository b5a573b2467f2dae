"""Events, core/v1 and events.k8s.io/v1 (``pkg/registry/core/event``): names are any path
segment (``<object>.<hex>``), and whatever the recorder sent is stored as sent."""

from __future__ import annotations

from controlplane.apiserver.strategy.base import Strategy


class EventStrategy(Strategy):
    keep_status_on_create = True
    name_rule = "segment"
