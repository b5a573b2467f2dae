"""Extension points of the scheduling framework: what a plugin may implement.

A plugin is a class with a ``name`` implementing only the hooks it needs. Filters and scores
work on *batches* of nodes (numpy index arrays into the cache's node rows), so the common
plugins are vectorised across nodes; a plugin can still loop over ``snap.nodes[i]``.
In the order a pod meets them (kube-scheduler's extension points):

- ``queue_sort_key(pod) -> tuple`` (QueueSort): the active queue's order, smallest first;
  one QueueSort plugin per profile, the same in every profile of a scheduler.
- ``pre_filter(cs, pod, snap) -> Status | None``: ``Status.skip()`` skips the plugin's filter
  for this pod; an unschedulable status rejects the pod for every node.
- ``filter(cs, pod, snap, idx) -> FilterResult``: which of nodes ``idx`` pass, and why not.
- ``post_filter(cs, pod, snap, diagnosis, fits) -> (PostFilterResult | None, victims,
  message)`` (preemption), only when no node passed.
- ``pre_score(cs, pod, snap, idx)``; ``score(cs, pod, snap, idx) -> np.ndarray`` raw scores;
  ``normalize(cs, pod, snap, idx, scores) -> np.ndarray`` to 0..100 (optional);
  ``uniform_score(cs, pod, snap) -> int | None`` (optional, a shortcut): the final (normalised)
  score when it is the same for every node, e.g. no node is tainted; ``None`` otherwise.
  ``uniform_raw`` (optional class attribute): the raw score behind that shortcut, for
  decision records (else they ask ``score`` for the few nodes they show).
  ``score_values(cs, pod, snap, idx) -> np.ndarray | None`` (optional): value estimates
  behind the last ``score`` (the DDQN plugin's Q-value advantages), shown in decision records.
- ``reserve(cs, pod, node_name, snap)`` / ``unreserve(cs, pod, node_name, snap)``.
- ``async pre_bind(cs, pod, node_name) -> Status | None`` (PreBind, in the binding cycle):
  run in order; any status but success fails the binding (the pod is unreserved, forgotten
  and retried).
- ``async bind(cs, pod, node_name) -> Status | None`` (Bind): run in order until one returns
  something other than ``Status.skip()``; if every one skips, the binding fails.
- ``async run(stop)`` (optional): a background part the scheduler starts with it and stops
  with ``stop`` (the DDQN plugin follows the active model in the API).
- ``events``: the cluster events (e.g. ``"Node/Add"``, ``"Pod/Delete"``) that may make a pod
  this plugin rejected schedulable again (the queue moves it back from unschedulable).

``None`` from a hook means success. Per-cycle state goes in ``CycleState`` keyed by plugin
name. ``handle`` is what the profile was built with (the live ``Scheduler``: ``client``,
``cache``; ``None`` in unit tests). Neighbours: ``profile`` (which plugins run, weights),
``framework`` (runs the points), ``scheduler`` (the loop and the binding cycle), ``cache``
(the node snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class Code(str, Enum):
    SUCCESS = "Success"
    ERROR = "Error"
    UNSCHEDULABLE = "Unschedulable"
    UNRESOLVABLE = "UnschedulableAndUnresolvable"
    SKIP = "Skip"


@dataclass
class Status:
    code: Code = Code.SUCCESS
    reasons: list[str] = field(default_factory=list)
    plugin: str = ""

    @classmethod
    def ok(cls) -> "Status":
        return cls()

    @classmethod
    def skip(cls) -> "Status":
        """A shared instance (pre-filters return it for most pods; never modify it)."""
        return _SKIP if cls is Status else cls(Code.SKIP)

    @classmethod
    def unschedulable(cls, *reasons: str, unresolvable: bool = False) -> "Status":
        return cls(Code.UNRESOLVABLE if unresolvable else Code.UNSCHEDULABLE, list(reasons))

    @classmethod
    def error(cls, msg: str) -> "Status":
        return cls(Code.ERROR, [msg])

    @property
    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    @property
    def is_skip(self) -> bool:
        return self.code == Code.SKIP

    @property
    def is_rejection(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNRESOLVABLE)


_SKIP = Status(Code.SKIP)


@dataclass
class FilterResult:
    """``ok``: bool per node of ``idx``. ``reason``: the message for every rejected node, or
    ``reasons``: message -> bool mask (a node may carry several, e.g. cpu and memory).
    ``unresolvable``: preemption cannot help the rejected nodes; ``unresolvable_reasons``: the
    reasons (of ``reasons``) for which it cannot, when only some are (kube-scheduler's
    UnschedulableAndUnresolvable status for those nodes, Unschedulable for the others)."""

    ok: np.ndarray
    reason: str = ""
    reasons: dict[str, np.ndarray] | None = None
    unresolvable: bool = False
    unresolvable_reasons: frozenset[str] = frozenset()

    @classmethod
    def all(cls, n: int) -> "FilterResult":
        return cls(np.ones(n, dtype=bool))


class CycleState(dict):
    """Per-cycle scratch space, keyed by plugin name."""


@dataclass
class Diagnosis:
    """Why a pod did not fit: node name -> reasons of the first plugin that rejected it."""

    node_reasons: dict[str, list[str]] = field(default_factory=dict)
    unresolvable: set[str] = field(default_factory=set)
    plugins: set[str] = field(default_factory=set)
    pre_filter: Status | None = None


@dataclass
class PostFilterResult:
    nominated_node: str | None = None


class Plugin:
    """Base class: every hook is optional; ``name`` must be unique in a registry."""

    name: str = ""
    events: tuple[str, ...] = ()

    def __init__(self, args: dict[str, Any] | None = None, handle: Any = None) -> None:
        self.args = dict(args or {})
        self.handle = handle  # the Framework handle (cache, client, rng) given by the profile

    def __repr__(self) -> str:
        return f"<plugin {self.name}>"
