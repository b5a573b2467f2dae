"""The resource catalogue: which kinds the apiserver serves, under which group/version/plural,
and the strategy each one's writes follow.

``ResourceInfo`` describes one served resource and carries its strategy object (a
``controlplane.apiserver.strategy.base.Strategy``: the rules its writes follow). The built-in
resources and their strategies are listed in ``strategy/builtins.py`` (``builtin_registry()``);
custom resources are added and removed at run time by ``server/crds.py`` when
CustomResourceDefinitions are created, updated or deleted. Readers: every layer above (route
resolution, discovery documents, OpenAPI, tables, storage keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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
    storage_version: str = ""  # the version objects are stored as (CRs: apiVersion rewrite; built-ins: conversion)
    # the group objects are stored under when it is not ``group`` (events.k8s.io/v1 Events are
    # core/v1 Events, one key for both views, as kube-apiserver stores them); None: ``group``
    storage_group: str | None = None
    selectable_fields: tuple[str, ...] = ()  # CRs: the version's selectableFields ("spec.color", no leading dot)
    warning: str = ""  # CRs: the Warning every request to a deprecated version gets
    terminating: bool = False  # CRs: the CRD is being deleted (no creates)
    # The rules this resource's writes follow (a ``strategy.base.Strategy``; this layer sits
    # below the strategies, so it only carries the object).
    strategy: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.list_kind:
            object.__setattr__(self, "list_kind", self.kind + "List")
        if not self.storage_version:
            object.__setattr__(self, "storage_version", self.version)
        if self.storage_group is None:
            object.__setattr__(self, "storage_group", self.group)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.kind)

    @property
    def converted(self) -> bool:
        """A built-in served at a version other than the one it is stored at: its strategy's
        ``to_version``/``from_version`` convert (custom resources only rewrite apiVersion); also
        one stored under another group (``storage_group``)."""
        return not self.is_custom and (self.version != self.storage_version or self.group != self.storage_group)

    @property
    def key_group(self) -> str:
        """The group segment of storage keys (``core`` for the legacy group): the storage
        group's, so every view of one resource shares its keys (and its watch cache)."""
        return self.storage_group or "core"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def has(self, subresource: str) -> bool:
        return subresource in self.subresources


@dataclass
class Registry:
    """Lookup tables over ResourceInfo; mutated only by ``add``/``remove`` (CRDs)."""

    _by_gvr: dict[tuple[str, str, str], ResourceInfo] = field(default_factory=dict)
    _order: list[tuple[str, str, str]] = field(default_factory=list)
    generation: int = 0  # bumped on every change (discovery/openapi caches key on it)

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

    def storage_info(self, info: ResourceInfo) -> ResourceInfo:
        """The entry of ``info``'s storage version (itself when it is stored as served). A
        custom resource is itself: it is defaulted, pruned and validated against the schema of
        the version it was sent at, and only its ``apiVersion`` changes on the way to storage
        (the ``None`` conversion, ``strategy/customresource.py``)."""
        if info.is_custom or (info.version == info.storage_version and info.group == info.storage_group):
            return info
        return self._by_gvr.get((info.storage_group or "", info.storage_version, info.plural)) or info

    def by_kind(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        for info in self._by_gvr.values():
            if info.group == group and info.version == version and info.kind == kind:
                return info
        return None

    def all(self) -> list[ResourceInfo]:
        return [self._by_gvr[k] for k in self._order]

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


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version ordering: GA > beta > alpha, higher numbers first."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)
