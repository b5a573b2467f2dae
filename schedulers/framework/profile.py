"""Profiles: which plugins run, with which weights and args, under which ``schedulerName``
(and its aliases). A :class:`ProfileConfig` names plugins; :func:`build_profile` turns it into
a :class:`Profile` of plugin instances through the plugin registry. Reading the YAML files,
defaulting (QueueSort, Bind) and the aliases are ``schedulers.profiles.loader``'s, which sits
above the plugins; the framework only knows names.

A plugin takes part in every extension point it implements (a score plugin with weight 0
only filters). Neighbours: ``registry`` (names -> classes), ``framework`` (runs a profile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schedulers.framework import registry
from schedulers.framework.interface import Plugin


TIE_BREAKS = ("random", "nodeRank")
NODE_RANK_ANNOTATION = "scheduling.controlplane.io/node-rank"


@dataclass
class ProfileConfig:
    """``aliases``: further ``schedulerName`` values served by this very profile.
    ``tie_break``: how equal best totals are decided: ``random`` (kube-scheduler's) or
    ``nodeRank`` (the lowest ``scheduling.controlplane.io/node-rank`` node annotation, the
    openb protocol's seeded node rank; nodes without one come last, by name)."""

    scheduler_name: str
    plugins: list[tuple[str, int, dict[str, Any]]]
    percentage_of_nodes_to_score: int = 0
    source: str = ""
    aliases: tuple[str, ...] = ()
    tie_break: str = "random"

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

    def at(self, point: str) -> list[Plugin]:
        return [p for p in self.plugins if callable(getattr(p, point, None))]

    def scorers(self) -> list[tuple[Plugin, int]]:
        return [(p, self.weights[p.name]) for p in self.at("score") if self.weights.get(p.name, 0) > 0]

    def events(self) -> dict[str, tuple[str, ...]]:
        return {p.name: p.events for p in self.plugins}


def build_profile(cfg: ProfileConfig, handle: Any = None) -> Profile:
    plugins = [registry.get(name)(args, handle) for name, _, args in cfg.plugins]
    return Profile(cfg.scheduler_name, cfg.percentage_of_nodes_to_score, plugins,
                   {name: w for name, w, _ in cfg.plugins}, cfg.aliases, cfg.tie_break)
