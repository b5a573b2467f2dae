"""Profiles: which plugins run, with which weights and args, under which ``schedulerName``
(and its aliases). A :class:`ProfileConfig` names plugins; :func:`build_profile` turns it into
a :class:`Profile` of plugin instances through the plugin registry. Reading the YAML files,
defaulting (QueueSort, Bind) and the aliases are ``schedulers.profiles.loader``'s, which sits
above the plugins; the framework only knows names.

A plugin takes part in every extension point it implements (a score plugin with weight 0
only filters), unless the profile lists per extension point which plugins run there and in
which order (``points``, from a KubeSchedulerConfiguration-style ``plugins`` mapping merged
with the defaults by ``schedulers.profiles.merge``). Neighbours: ``registry`` (names ->
classes), ``framework`` (runs a profile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schedulers.framework import registry
from schedulers.framework.interface import Plugin


TIE_BREAKS = ("random", "nodeRank")
# KubeSchedulerConfiguration's extension points -> the hook a plugin implements for it (none
# here implements preEnqueue, permit or postBind; Reserve plugins also run at Unreserve)
EXTENSION_POINTS = {
    "preEnqueue": "pre_enqueue", "queueSort": "queue_sort_key", "preFilter": "pre_filter", "filter": "filter",
    "postFilter": "post_filter", "preScore": "pre_score", "score": "score", "reserve": "reserve",
    "permit": "permit", "preBind": "pre_bind", "bind": "bind", "postBind": "post_bind",
}
_HOOK_POINT = {**{hook: point for point, hook in EXTENSION_POINTS.items()}, "unreserve": "reserve"}
NODE_RANK_ANNOTATION = "scheduling.controlplane.io/node-rank"


@dataclass
class ProfileConfig:
    """``aliases``: further ``schedulerName`` values served by this very profile.
    ``tie_break``: how equal best totals are decided: ``random`` (kube-scheduler's) or
    ``nodeRank`` (the lowest ``scheduling.controlplane.io/node-rank`` node annotation, the
    openb protocol's seeded node rank; nodes without one come last, by name).
    ``points``: extension point (``EXTENSION_POINTS``' keys) -> the plugin names run there, in
    order; ``None``: every plugin at every point it implements, in ``plugins`` order."""

    scheduler_name: str
    plugins: list[tuple[str, int, dict[str, Any]]]
    percentage_of_nodes_to_score: int = 0
    source: str = ""
    aliases: tuple[str, ...] = ()
    tie_break: str = "random"
    points: dict[str, tuple[str, ...]] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.scheduler_name, *self.aliases)


@dataclass
class Profile:
    scheduler_name: str
    percentage: int
    plugins: list[Plugin]
    weights: dict[str, int] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    tie_break: str = "random"
    points: dict[str, tuple[str, ...]] | None = None

    def at(self, point: str) -> list[Plugin]:
        """The plugins run at a hook (``"filter"``, ``"unreserve"``, ...), in order."""
        if self.points is None:
            return [p for p in self.plugins if callable(getattr(p, point, None))]
        by_name = {p.name: p for p in self.plugins}
        return [by_name[n] for n in self.points.get(_HOOK_POINT.get(point, point), ())
                if callable(getattr(by_name[n], point, None))]

    def scorers(self) -> list[tuple[Plugin, int]]:
        return [(p, self.weights[p.name]) for p in self.at("score") if self.weights.get(p.name, 0) > 0]

    def events(self) -> dict[str, tuple[str, ...]]:
        return {p.name: p.events for p in self.plugins}


def build_profile(cfg: ProfileConfig, handle: Any = None) -> Profile:
    plugins = [registry.get(name)(args, handle) for name, _, args in cfg.plugins]
    return Profile(cfg.scheduler_name, cfg.percentage_of_nodes_to_score, plugins,
                   {name: w for name, w, _ in cfg.plugins}, cfg.aliases, cfg.tie_break, cfg.points)
