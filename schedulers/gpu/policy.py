"""GPU placement policies: the interface, the context a factory gets, and their registry.

A policy scores the feasible nodes of one decision on a :class:`GpuNodeState` and picks the
GPUs on the chosen node. The same policy objects serve the offline openb simulator
(``schedulers.sim.openb``) and the live scheduler's GPU score plugins
(``schedulers.plugins.gpu_policy_score``), so a policy is written once. Built-ins (the six
openb policies) live in ``schedulers.gpu.policies``; other modules register theirs with
:func:`register_policy` (``schedulers.ddqn.policy`` registers ``ddqn``). The lookup is the
shared lazy one of ``schedulers.registry`` (names are case-insensitive; registering a name
twice is an error); look policies up through ``schedulers.gpu.policies.get_policy_factory``,
which declares the built-ins first.

The interface every policy implements::

    class GpuPolicy(Protocol):
        name: str
        def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray
            # int64 scores, one per entry of ``feasible`` (node row indices); higher wins,
            # ties go to the smallest node rank.
        def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]
            # GPU indices for a GPU pod on ``node``, evaluated on the state *before* placing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from schedulers.gpu.gorand import RunRandom
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import TypicalPods
from schedulers.registry import Registry


class GpuPolicy(Protocol):
    name: str

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray: ...

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]: ...


@dataclass
class PolicyContext:
    """What a factory may use: the run's generator (draws must follow the protocol order),
    the typical pods of the workload, the initial state, and free-form options."""

    rng: RunRandom
    typical: TypicalPods | None = None
    state: GpuNodeState | None = None
    options: dict[str, Any] = field(default_factory=dict)


PolicyFactory = Callable[[PolicyContext], GpuPolicy]

POLICIES: Registry[PolicyFactory] = Registry("GPU policy", fold_case=True)


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Register ``factory`` under ``name`` (case-insensitive); a second registration of the
    same name with a different factory is an error."""
    POLICIES.register(name, factory)
