"""Test helper: the built-in kinds as the apiserver serves them (``strategy.builtins``), and
their defaulting by group/version/kind, the way every create and update applies it."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.strategy.builtins import builtin_registry

REGISTRY = builtin_registry()


def info_for(gvk: tuple[str, str, str]) -> ResourceInfo:
    info = REGISTRY.by_kind(*gvk)
    assert info is not None, gvk
    return info


def apply_defaults(obj: dict[str, Any], gvk: tuple[str, str, str]) -> dict[str, Any]:
    """A defaulted copy of ``obj`` (the kind's strategy's ``default``)."""
    return info_for(gvk).strategy.default(obj)
