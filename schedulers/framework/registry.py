"""Plugin registry of the live scheduler: plugin name -> class. Registering a name twice is
an error. ``load_builtin_plugins()`` imports every plugin module listed here (one file per
plugin in ``schedulers.plugins``); profiles refer to plugins by name.
"""

from __future__ import annotations

import importlib

from schedulers.framework.interface import Plugin

_REGISTRY: dict[str, type[Plugin]] = {}

BUILTIN = (
    "node_name", "node_unschedulable", "node_resources_fit", "balanced_allocation", "node_affinity",
    "taint_toleration", "inter_pod_affinity", "pod_topology_spread", "node_ports", "image_locality",
    "priority_sort", "default_preemption", "random_score", "fifo", "gpu_aware", "disk_io",
    "network_latency", "gpushare", "ddqn",
)


def register(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: ``@register`` on a Plugin subclass with a unique ``name``."""
    if not cls.name:
        raise ValueError(f"{cls!r} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"scheduler plugin {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def load_builtin_plugins() -> None:
    for mod in BUILTIN:
        importlib.import_module(f"schedulers.plugins.{mod}")


def get(name: str) -> type[Plugin]:
    """The plugin class; an unknown name is looked up in ``schedulers.plugins.<name.lower()>``
    (so e.g. ``schedulers.plugins.ddqn`` can register ``DDQN`` without editing this file)."""
    load_builtin_plugins()
    if name not in _REGISTRY:
        modname = f"schedulers.plugins.{name.lower()}"
        try:
            importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise
    if name not in _REGISTRY:
        raise KeyError(f"unknown scheduler plugin {name!r}")
    return _REGISTRY[name]


def names() -> list[str]:
    load_builtin_plugins()
    return sorted(_REGISTRY)
