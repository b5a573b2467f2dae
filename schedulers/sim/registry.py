"""Registry of GPU placement policies, shared by the simulator and the live scheduler.

A policy is created per run by a factory ``factory(ctx: PolicyContext) -> GpuPolicy``.
Built-ins (the six openb policies) live in ``schedulers.plugins`` and register themselves on
import; other modules add theirs with :func:`register_policy` (e.g. ``schedulers.plugins.ddqn``
registers ``ddqn``). :func:`get_policy_factory` imports the built-ins and, for an unknown name,
tries ``schedulers.plugins.<name>`` so a policy module is found without editing this file.

The interface every policy implements (see also ``schedulers.sim.openb``)::

    class GpuPolicy(Protocol):
        name: str
        def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray
            # int64 scores, one per entry of ``feasible`` (node row indices); higher wins,
            # ties go to the smallest node rank.
        def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]
            # GPU indices for a GPU pod on ``node``, evaluated on the state *before* placing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from schedulers.sim.state import GpuNodeState, GpuPod
from schedulers.sim.typical import TypicalPods


class GpuPolicy(Protocol):
    name: str

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray: ...

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]: ...


@dataclass
class PolicyContext:
    """What a factory may use: the run's generator (draws must follow the protocol order),
    the typical pods of the workload, the initial state, and free-form options."""

    rng: np.random.Generator
    typical: TypicalPods | None = None
    state: GpuNodeState | None = None
    options: dict[str, Any] = field(default_factory=dict)


PolicyFactory = Callable[[PolicyContext], GpuPolicy]

_POLICIES: dict[str, PolicyFactory] = {}
BUILTIN_MODULES = (
    "schedulers.plugins.openb_random",
    "schedulers.plugins.dot_prod",
    "schedulers.plugins.gpu_clustering",
    "schedulers.plugins.gpu_packing",
    "schedulers.plugins.best_fit",
    "schedulers.plugins.fgd",
)
_loaded = False


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Register ``factory`` under ``name`` (case-insensitive); a second registration of the
    same name with a different factory is an error."""
    key = name.lower()
    old = _POLICIES.get(key)
    if old is not None and old is not factory:
        raise ValueError(f"GPU policy {name!r} is already registered")
    _POLICIES[key] = factory


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in BUILTIN_MODULES:
            importlib.import_module(mod)


def get_policy_factory(name: str) -> PolicyFactory:
    _load_builtins()
    key = name.lower()
    if key not in _POLICIES:
        modname = f"schedulers.plugins.{key}"
        try:
            importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise
    if key not in _POLICIES:
        raise KeyError(f"unknown GPU policy {name!r}; known: {', '.join(policy_names())}")
    return _POLICIES[key]


def policy_names() -> list[str]:
    _load_builtins()
    return sorted(_POLICIES)
