"""Reading profiles: YAML documents -> :class:`ProfileConfig` (``schedulers.framework.profile``),
with kube-scheduler's defaulting and the ``schedulerName`` aliases.

YAML (one profile per document or ``profiles: [...]``)::

    schedulerName: default-scheduler
    aliases: [default]                 # optional: more names for the same profile
    percentageOfNodesToScore: 0        # 0: adaptive (max(5, 50 - N/125) %, >= 100 nodes)
    tieBreak: random                   # optional: random (kube-scheduler) | nodeRank (the openb protocol)
    plugins:
      - name: NodeResourcesFit
        weight: 1
        args: {scoringStrategy: {type: LeastAllocated}}
      - name: TaintToleration
        weight: 3

Defaulting, as kube-scheduler's default plugin set: a profile without a QueueSort plugin gets
``PrioritySort`` first, and every profile gets ``DefaultBinder`` as its last Bind plugin
unless it lists it itself. A profile may instead be written as a KubeSchedulerConfiguration
profile: ``plugins`` a mapping of extension points (``multiPoint``, ``queueSort``, ``filter``,
``score``, ``bind``, ...) with ``enabled``/``disabled`` lists and ``pluginConfig`` for args;
it is merged with kube-scheduler's default plugins as kube-scheduler does, so ``disabled``
(``"*"`` too) removes defaulted plugins, PrioritySort and DefaultBinder included
(``merge.py``). A whole KubeSchedulerConfiguration file loads too (its ``profiles``, its
top-level ``percentageOfNodesToScore`` as the profiles' default). A name (``schedulerName`` or alias) may appear once across all
profiles; an alias is the very same profile (one framework, one queue order, one set of
metrics labelled with the real name). A pod naming no known profile stays Pending, as in
Kubernetes (no scheduler claims it).

Why here and not in the framework: this is where plugin *names* meet the in-tree plugins, so
it imports ``schedulers.plugins`` (which declares its modules to the registry) and sits above
both; the framework itself never imports a plugin. Neighbours: ``controlplane.cmd.scheduler``
(``load_profile_configs``), ``schedulers.framework.profile`` (``build_profile``).
"""

from __future__ import annotations

from pathlib import Path

import yaml

import schedulers.plugins  # noqa: F401  the in-tree plugins, declared to the registry
from schedulers.framework import registry
from schedulers.framework.profile import TIE_BREAKS, ProfileConfig
from schedulers.profiles.merge import merge_profile

PROFILES_DIR = Path(__file__).resolve().parent
DEFAULT_QUEUE_SORT = "PrioritySort"
DEFAULT_BINDER = "DefaultBinder"


def _implements(name: str, point: str) -> bool:
    return callable(getattr(registry.get(name), point, None))


def _plugin_list(doc: dict, name: str, source: str) -> list[tuple[str, int, dict]]:
    """This project's short form: a list of plugins, each at every point it implements."""
    plugins = []
    seen: set[str] = set()
    for entry in doc.get("plugins") or []:
        if isinstance(entry, str):
            entry = {"name": entry}
        pname = entry["name"]
        if pname in seen:
            raise ValueError(f"{source}: plugin {pname!r} listed twice in profile {name!r}")
        seen.add(pname)
        registry.get(pname)  # unknown names fail early
        plugins.append((pname, int(entry.get("weight", 1)), dict(entry.get("args") or {})))
    if not any(_implements(p, "queue_sort_key") for p, _, _ in plugins):
        plugins.insert(0, (DEFAULT_QUEUE_SORT, 1, {}))
    if DEFAULT_BINDER not in seen:
        plugins.append((DEFAULT_BINDER, 1, {}))
    return plugins


def parse_profile(doc: dict, source: str = "", default_percentage: int = 0) -> ProfileConfig:
    if not doc.get("schedulerName"):
        raise ValueError(f"{source}: profile without schedulerName")
    name = doc["schedulerName"]
    points = None
    if isinstance(doc.get("plugins"), dict) or "pluginConfig" in doc:  # KubeSchedulerConfiguration's form
        plugins, points = merge_profile(doc.get("plugins") or {}, doc.get("pluginConfig"),
                                        f"{source}: profile {name!r}")
    else:
        plugins = _plugin_list(doc, name, source)
    aliases = doc.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise ValueError(f"{source}: aliases of profile {name!r} must be a list of names")
    if name in aliases or len(set(aliases)) != len(aliases):
        raise ValueError(f"{source}: profile {name!r} lists an alias twice or its own name")
    tie_break = doc.get("tieBreak") or "random"
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"{source}: tieBreak of profile {name!r} must be one of {', '.join(TIE_BREAKS)}")
    pct = doc.get("percentageOfNodesToScore")
    return ProfileConfig(name, plugins, int(pct if pct is not None else default_percentage), source,
                         tuple(aliases), tie_break, points)


def load_profile_configs(paths: list[str | Path] | None = None) -> dict[str, ProfileConfig]:
    """Profiles by their real ``schedulerName`` (aliases are in ``ProfileConfig.aliases``),
    from files or directories (default: the YAML files in ``schedulers/profiles``)."""
    files: list[Path] = []
    for p in paths or [PROFILES_DIR]:
        p = Path(p)
        files.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    out: dict[str, ProfileConfig] = {}
    owner: dict[str, str] = {}  # every name and alias -> its profile
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc:
                continue
            top = int(doc.get("percentageOfNodesToScore") or 0) if "profiles" in doc else 0
            for d in doc.get("profiles") or [doc]:
                cfg = parse_profile(d, str(f), top)
                for n in cfg.names:
                    if n in owner:
                        raise ValueError(f"{f}: scheduler name {n!r} of profile {cfg.scheduler_name!r} is "
                                         f"already used by profile {owner[n]!r}")
                    owner[n] = cfg.scheduler_name
                out[cfg.scheduler_name] = cfg
    return out
