"""Profiles: which plugins run, with which weights and args, under which ``schedulerName``.

YAML (one profile per document or ``profiles: [...]``)::

    schedulerName: default-scheduler
    percentageOfNodesToScore: 0        # 0: adaptive (max(5, 50 - N/125) %, >= 100 nodes)
    plugins:
      - name: NodeResourcesFit
        weight: 1
        args: {scoringStrategy: {type: LeastAllocated}}
      - name: TaintToleration
        weight: 3

A plugin takes part in every extension point it implements (a score plugin with weight 0
only filters). ``load_profiles(paths)`` reads files or directories (default: the YAML files
in ``schedulers/profiles``). Neighbours: ``registry`` (names -> classes), ``framework``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from schedulers.framework import registry
from schedulers.framework.interface import Plugin

PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"


@dataclass
class ProfileConfig:
    scheduler_name: str
    plugins: list[tuple[str, int, dict[str, Any]]]
    percentage_of_nodes_to_score: int = 0
    source: str = ""


@dataclass
class Profile:
    scheduler_name: str
    percentage: int
    plugins: list[Plugin]
    weights: dict[str, int] = field(default_factory=dict)

    def at(self, point: str) -> list[Plugin]:
        return [p for p in self.plugins if callable(getattr(p, point, None))]

    def scorers(self) -> list[tuple[Plugin, int]]:
        return [(p, self.weights[p.name]) for p in self.at("score") if self.weights.get(p.name, 0) > 0]

    def events(self) -> dict[str, tuple[str, ...]]:
        return {p.name: p.events for p in self.plugins}


def parse_profile(doc: dict, source: str = "") -> ProfileConfig:
    if not doc.get("schedulerName"):
        raise ValueError(f"{source}: profile without schedulerName")
    plugins = []
    seen: set[str] = set()
    for entry in doc.get("plugins") or []:
        if isinstance(entry, str):
            entry = {"name": entry}
        name = entry["name"]
        if name in seen:
            raise ValueError(f"{source}: plugin {name!r} listed twice in profile {doc['schedulerName']!r}")
        seen.add(name)
        registry.get(name)  # unknown names fail early
        plugins.append((name, int(entry.get("weight", 1)), dict(entry.get("args") or {})))
    return ProfileConfig(doc["schedulerName"], plugins, int(doc.get("percentageOfNodesToScore") or 0), source)


def load_profile_configs(paths: list[str | Path] | None = None) -> dict[str, ProfileConfig]:
    files: list[Path] = []
    for p in paths or [PROFILES_DIR]:
        p = Path(p)
        files.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    out: dict[str, ProfileConfig] = {}
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc:
                continue
            for d in doc.get("profiles") or [doc]:
                cfg = parse_profile(d, str(f))
                if cfg.scheduler_name in out:
                    raise ValueError(f"{f}: profile {cfg.scheduler_name!r} defined twice")
                out[cfg.scheduler_name] = cfg
    return out


def build_profile(cfg: ProfileConfig, handle: Any = None) -> Profile:
    plugins = [registry.get(name)(args, handle) for name, _, args in cfg.plugins]
    return Profile(cfg.scheduler_name, cfg.percentage_of_nodes_to_score, plugins,
                   {name: w for name, w, _ in cfg.plugins})
