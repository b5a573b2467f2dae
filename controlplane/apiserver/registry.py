"""The resource catalogue: which kinds the apiserver serves, under which group/version/plural.

Built-in resources are listed once here; custom resources are added and removed at run time by
``crds.py`` when CustomResourceDefinitions are created, updated or deleted. Readers: the HTTP
handlers (route resolution), ``discovery.py``, ``openapi.py``, ``tables.py`` and the validation
and defaulting modules (they key on ``ResourceInfo.gvk``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

READ_VERBS = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceInfo:
    """One served resource (one group/version/plural)."""

    group: str  # "" for the legacy core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    verbs: tuple[str, ...] = ALL_VERBS
    list_kind: str = ""
    # Custom resources only.
    is_custom: bool = False
    schema: dict[str, Any] | None = None  # the version's openAPIV3Schema
    printer_columns: tuple[dict[str, Any], ...] = ()  # additionalPrinterColumns
    scale: dict[str, str] | None = None  # specReplicasPath, statusReplicasPath, labelSelectorPath
    preserve_unknown_fields: bool = False
    storage_version: str = ""  # CRs: the version objects are stored as (for apiVersion rewrite)

    def __post_init__(self) -> None:
        if not self.list_kind:
            object.__setattr__(self, "list_kind", self.kind + "List")
        if not self.storage_version:
            object.__setattr__(self, "storage_version", self.version)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.kind)

    @property
    def key_group(self) -> str:
        """The group segment of storage keys (``core`` for the legacy group)."""
        return self.group or "core"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def has(self, subresource: str) -> bool:
        return subresource in self.subresources


def _core(kind: str, plural: str, namespaced: bool = True, *, short: Iterable[str] = (),
          cats: Iterable[str] = (), sub: Iterable[str] = (), verbs: tuple[str, ...] = ALL_VERBS,
          group: str = "", version: str = "v1") -> ResourceInfo:
    return ResourceInfo(group=group, version=version, kind=kind, plural=plural,
                        singular=kind.lower(), namespaced=namespaced, short_names=tuple(short),
                        categories=tuple(cats), subresources=frozenset(sub), verbs=verbs)


def builtin_resources() -> list[ResourceInfo]:
    """Every built-in resource, in the order discovery lists them."""
    all_cat = ("all",)
    return [
        # core/v1
        _core("Namespace", "namespaces", False, short=["ns"], sub=["status", "finalize"],
              verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
        _core("Pod", "pods", short=["po"], cats=all_cat,
              sub=["status", "binding", "log", "exec", "attach", "portforward", "eviction"]),
        _core("Node", "nodes", False, short=["no"], sub=["status", "proxy"]),
        _core("Service", "services", short=["svc"], cats=all_cat, sub=["status", "proxy"],
              verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
        _core("Endpoints", "endpoints", short=["ep"]),
        _core("ConfigMap", "configmaps", short=["cm"]),
        _core("Secret", "secrets"),
        _core("ServiceAccount", "serviceaccounts", short=["sa"]),
        _core("Event", "events", short=["ev"]),
        # apps/v1
        _core("Deployment", "deployments", short=["deploy"], cats=all_cat,
              sub=["status", "scale"], group="apps"),
        _core("ReplicaSet", "replicasets", short=["rs"], cats=all_cat,
              sub=["status", "scale"], group="apps"),
        _core("StatefulSet", "statefulsets", short=["sts"], cats=all_cat,
              sub=["status", "scale"], group="apps"),
        _core("DaemonSet", "daemonsets", short=["ds"], cats=all_cat, sub=["status"],
              group="apps"),
        # batch/v1
        _core("Job", "jobs", cats=all_cat, sub=["status"], group="batch"),
        # coordination.k8s.io/v1
        _core("Lease", "leases", group="coordination.k8s.io"),
        # apiextensions.k8s.io/v1
        _core("CustomResourceDefinition", "customresourcedefinitions", False,
              short=["crd", "crds"], cats=("api-extensions",), sub=["status"],
              group="apiextensions.k8s.io"),
        # scheduling.k8s.io/v1
        _core("PriorityClass", "priorityclasses", False, short=["pc"], group="scheduling.k8s.io"),
        # policy/v1
        _core("PodDisruptionBudget", "poddisruptionbudgets", short=["pdb"], sub=["status"],
              group="policy"),
        # events.k8s.io/v1 (same storage as core events in Kubernetes; kept separate here)
        _core("Event", "events", short=["ev"], group="events.k8s.io"),
    ]


@dataclass
class Registry:
    """Lookup tables over ResourceInfo; mutated only by ``add``/``remove`` (CRDs)."""

    _by_gvr: dict[tuple[str, str, str], ResourceInfo] = field(default_factory=dict)
    _order: list[tuple[str, str, str]] = field(default_factory=list)
    generation: int = 0  # bumped on every change (discovery/openapi caches key on it)

    @classmethod
    def with_builtins(cls) -> "Registry":
        r = cls()
        for info in builtin_resources():
            r.add(info)
        return r

    def add(self, info: ResourceInfo) -> None:
        key = (info.group, info.version, info.plural)
        if key not in self._by_gvr:
            self._order.append(key)
        self._by_gvr[key] = info
        self.generation += 1

    def remove(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        key = (group, version, plural)
        info = self._by_gvr.pop(key, None)
        if info is not None:
            self._order.remove(key)
            self.generation += 1
        return info

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        for info in self._by_gvr.values():
            if info.group == group and info.version == version and info.kind == kind:
                return info
        return None

    def by_group_resource(self, group: str, plural: str) -> list[ResourceInfo]:
        return [i for i in self.all() if i.group == group and i.plural == plural]

    def all(self) -> list[ResourceInfo]:
        return [self._by_gvr[k] for k in self._order]

    def custom(self) -> list[ResourceInfo]:
        return [i for i in self.all() if i.is_custom]

    def resources(self, group: str, version: str) -> list[ResourceInfo]:
        return [i for i in self.all() if i.group == group and i.version == version]

    def group_versions(self) -> dict[str, list[str]]:
        """Group -> served versions (first is preferred), legacy group under ``""``."""
        out: dict[str, list[str]] = {}
        for info in self.all():
            versions = out.setdefault(info.group, [])
            if info.version not in versions:
                versions.append(info.version)
        for group, versions in out.items():
            versions.sort(key=version_priority)
        return out

    def preferred_version(self, group: str) -> str | None:
        versions = self.group_versions().get(group)
        return versions[0] if versions else None


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version ordering: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)
