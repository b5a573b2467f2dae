"""Secrets (``pkg/registry/core/secret``): ``type`` defaults to ``Opaque``. Their data rules
(keys, size, ``immutable``, type-specific keys) are validation (``validation/core.py``)."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy

Obj = dict[str, Any]


class SecretStrategy(Strategy):
    def set_defaults(self, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
