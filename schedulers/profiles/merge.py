"""KubeSchedulerConfiguration's plugin sets, merged with the default plugins as kube-scheduler
1.32 does, for a profile whose ``plugins`` is a mapping of extension points::

    schedulerName: lean-scheduler
    plugins:
      multiPoint:
        disabled: [{name: ImageLocality}]        # dropped from every point
      score:
        disabled: [{name: "*"}]                  # no default score plugin ...
        enabled: [{name: NodeResourcesFit, weight: 5}]   # ... but this one
    pluginConfig:
      - name: NodeResourcesFit
        args: {scoringStrategy: {type: MostAllocated}}

Two steps, as upstream. ``mergePluginSet`` (``apis/config/v1/default_plugins.go``), per
extension point: unless ``disabled`` holds ``"*"``, the defaults in order without the
disabled ones, a default named again in ``enabled`` replaced in place (its weight), then the
other ``enabled`` plugins. The defaults are kube-scheduler's: every default plugin sits in
``multiPoint`` (``DEFAULT_MULTI_POINT``). Then ``expandMultiPointPlugins``
(``framework/runtime/framework.go``), per extension point: unless that point's ``disabled``
holds ``"*"``, the multiPoint plugins implementing it and not disabled there join it: those
also listed for the point first (in the point's order: an explicit override), then the
multiPoint-only ones, then the point's other plugins. A score weight is the score point's
entry, else the multiPoint one; 0 or none is 1. A profile ends with exactly one QueueSort and
at least one Bind plugin, or it is refused with kube-scheduler's errors.

Why written here: kube-scheduler's merging lives in its config defaulting and framework, which
this project does not run; the rules above are ported from those two files. Neighbours:
``loader`` (reads the YAML, calls :func:`merge_profile`), ``framework.profile`` (the
``points`` it produces).
"""

from __future__ import annotations

from typing import Any

from schedulers.framework import registry
from schedulers.framework.profile import EXTENSION_POINTS

# kube-scheduler 1.32's getDefaultPlugins (multiPoint), weights where set (None: unset), less
# the plugins this project has not got (SchedulingGates, VolumeRestrictions, NodeVolumeLimits,
# VolumeZone), plus GpuShare (skipped for pods asking for no share of a GPU) where the
# default-scheduler profile has it
DEFAULT_MULTI_POINT: tuple[tuple[str, int | None], ...] = (
    ("PrioritySort", None), ("NodeUnschedulable", None), ("NodeName", None), ("TaintToleration", 3),
    ("NodeAffinity", 2), ("NodePorts", None), ("NodeResourcesFit", 1), ("GpuShare", None),
    ("VolumeBinding", None), ("PodTopologySpread", 2), ("InterPodAffinity", 2), ("DefaultPreemption", None),
    ("NodeResourcesBalancedAllocation", 1), ("ImageLocality", 1), ("DefaultBinder", None),
)
# Go's plugin interface names, for kube-scheduler's error messages
_GO_TYPES = {p: p[0].upper() + p[1:] + "Plugin" for p in EXTENSION_POINTS}

Entry = tuple[str, "int | None"]


def _entries(items: Any, where: str) -> list[Entry]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError(f"{where} must be a list of plugins")
    out: list[Entry] = []
    for e in items:
        e = {"name": e} if isinstance(e, str) else e
        if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not e["name"]:
            raise ValueError(f"{where}: each plugin needs a name")
        w = e.get("weight")
        out.append((e["name"], int(w) if w is not None else None))
    return out


def merge_plugin_set(defaults: tuple[Entry, ...] | list[Entry], enabled: list[Entry],
                     disabled: set[str]) -> list[Entry]:
    """kube-scheduler's ``mergePluginSet`` (enabled side)."""
    custom = {name: (i, (name, w)) for i, (name, w) in enumerate(enabled)}
    replaced: set[int] = set()
    out: list[Entry] = []
    if "*" not in disabled:
        for name, w in defaults:
            if name in disabled:
                continue
            if name in custom:
                i, entry = custom[name]
                out.append(entry)
                replaced.add(i)
            else:
                out.append((name, w))
    out += [e for i, e in enumerate(enabled) if i not in replaced]
    return out


def _implements(name: str, hook: str) -> bool:
    return callable(getattr(registry.get(name), hook, None))


def expand(point: str, enabled: list[Entry], disabled: set[str], multi: list[Entry]) -> tuple[str, ...]:
    """One extension point's plugins in order (``updatePluginList`` + ``expandMultiPointPlugins``)."""
    hook, gotype = EXTENSION_POINTS[point], _GO_TYPES[point]
    names: list[str] = []
    for name, _ in enabled:
        if not _implements(name, hook):
            raise ValueError(f'plugin "{name}" does not extend {gotype} plugin')
        if name in names:
            raise ValueError(f'plugin "{name}" already registered as "{gotype}"')
        names.append(name)
    if "*" in disabled:
        return tuple(names)
    overrides: set[str] = set()
    from_multi: list[str] = []
    for name, _ in multi:
        if not _implements(name, hook) or name in disabled:
            continue
        if name in names:
            overrides.add(name)
            continue
        if name in from_multi:
            raise ValueError(f'plugin "{name}" already registered as "{gotype}"')
        from_multi.append(name)
    return tuple([n for n in names if n in overrides] + from_multi + [n for n in names if n not in overrides])


def merge_profile(plugins: dict, plugin_config: Any, where: str
                  ) -> tuple[list[tuple[str, int, dict[str, Any]]], dict[str, tuple[str, ...]]]:
    """A profile's ``plugins`` mapping and ``pluginConfig`` -> (the plugins to build as (name,
    score weight, args), the names per extension point). ``ValueError`` (``KeyError`` for an
    unknown plugin) as kube-scheduler refuses such a profile."""
    unknown = sorted(set(plugins) - {"multiPoint", *EXTENSION_POINTS})
    if unknown:
        raise ValueError(f"{where}: unknown extension point(s) in plugins: {', '.join(unknown)}")
    sets: dict[str, tuple[list[Entry], set[str]]] = {}
    for point in ("multiPoint", *EXTENSION_POINTS):
        ps = plugins.get(point) or {}
        if not isinstance(ps, dict):
            raise ValueError(f"{where}: plugins.{point} must be a mapping with enabled/disabled lists")
        enabled = _entries(ps.get("enabled"), f"{where}: plugins.{point}.enabled")
        disabled = {n for n, _ in _entries(ps.get("disabled"), f"{where}: plugins.{point}.disabled")}
        for name, _ in enabled:
            registry.get(name)  # unknown names fail early
        defaults = DEFAULT_MULTI_POINT if point == "multiPoint" else ()
        sets[point] = (merge_plugin_set(defaults, enabled, disabled), disabled)
    multi = sets["multiPoint"][0]
    try:
        points = {p: expand(p, *sets[p], multi) for p in EXTENSION_POINTS}
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if not points["queueSort"]:
        raise ValueError(f"{where}: no queue sort plugin is enabled")
    if len(points["queueSort"]) > 1:
        raise ValueError(f"{where}: only one queue sort plugin can be enabled")
    if not points["bind"]:
        raise ValueError(f"{where}: at least one bind plugin is needed")
    weights: dict[str, int] = {}
    for name, w in [*sets["score"][0], *multi]:
        if name not in weights and _implements(name, "score"):
            weights[name] = w or 1
    args: dict[str, dict[str, Any]] = {}
    for i, pc in enumerate(plugin_config or []):
        if not isinstance(pc, dict) or not pc.get("name"):
            raise ValueError(f"{where}: pluginConfig[{i}] needs a name")
        if pc["name"] in args:
            raise ValueError(f'{where}: pluginConfig[{i}].name: Duplicate value: "{pc["name"]}"')
        args[pc["name"]] = dict(pc.get("args") or {})
    needed: list[str] = []  # kube-scheduler's pluginsNeeded: every enabled plugin is built
    for name, _ in [*multi, *(e for p in EXTENSION_POINTS for e in sets[p][0])]:
        if name not in needed:
            needed.append(name)
    return [(n, weights.get(n, 0), args.get(n, {})) for n in needed], points
