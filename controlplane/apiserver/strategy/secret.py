"""Secrets (``pkg/registry/core/secret``): ``type`` defaults to ``Opaque``; ``stringData`` is
merged into ``data`` (base64, its keys winning) and dropped, on every create and update, as
Kubernetes' conversion does. Their data rules (keys, size, ``immutable``, type-specific keys)
are validation (``validation/core.py``)."""

from __future__ import annotations

import base64
from typing import Any

from controlplane.apiserver.strategy.base import Strategy

Obj = dict[str, Any]


class SecretStrategy(Strategy):
    def set_defaults(self, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        merge_string_data(obj)


def merge_string_data(obj: Obj) -> None:
    string_data = obj.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = obj.get("data")
    if not isinstance(data, dict):
        data = obj["data"] = {}
    for k, v in string_data.items():
        data[k] = base64.b64encode(str(v).encode()).decode()
