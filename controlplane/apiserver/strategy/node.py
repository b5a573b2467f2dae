"""Nodes (``pkg/registry/core/node``): cluster-scoped, and a node agent registering its Node
sends its status with the create, so the create keeps it."""

from __future__ import annotations

from controlplane.apiserver.strategy.base import Strategy


class NodeStrategy(Strategy):
    keep_status_on_create = True
