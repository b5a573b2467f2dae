"""Events, core/v1 and events.k8s.io/v1 (``pkg/registry/core/event``): names are any path
segment (``<object>.<hex>``), whatever the recorder sent is stored as sent, and they expire
``ttl_seconds`` after their last write (kube-apiserver's ``--event-ttl``, default 1 h; the
apiserver's flag of the same name sets it)."""

from __future__ import annotations

from controlplane.apiserver.strategy.base import Strategy


DEFAULT_TTL_S = 3600


class EventStrategy(Strategy):
    keep_status_on_create = True
    name_rule = "segment"

    def __init__(self, ttl_seconds: int | None = DEFAULT_TTL_S) -> None:
        self.ttl_seconds = ttl_seconds
