"""Inventory: the set of objects a sync (or manifest file) applied, kept in its status as
Flux keeps it (``status.inventory.entries: [{id: <ns>_<name>_<group>_<kind>, v: <version>}]``),
so objects that leave the repository can be found and pruned. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ObjRef:
    """One object: namespace ("" when cluster-scoped), name, group, kind, and its version."""

    namespace: str
    name: str
    group: str
    kind: str
    version: str = "v1"

    @property
    def id(self) -> str:
        return f"{self.namespace}_{self.name}_{self.group}_{self.kind}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def entry(self) -> dict[str, str]:
        return {"id": self.id, "v": self.version}

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"

    @classmethod
    def of(cls, obj: dict) -> "ObjRef":
        api_version = obj.get("apiVersion") or ""
        group, _, version = api_version.rpartition("/")
        md = obj.get("metadata") or {}
        return cls(md.get("namespace") or "", md.get("name") or "", group, obj.get("kind") or "", version or "v1")

    @classmethod
    def from_entry(cls, entry: dict) -> "ObjRef":
        # names cannot hold "_", namespaces neither; group and kind neither: split is exact
        ns, name, group, kind = entry["id"].split("_", 3)
        return cls(ns, name, group, kind, entry.get("v") or "v1")


def entries(refs: list[ObjRef]) -> list[dict[str, str]]:
    return [r.entry() for r in sorted(set(refs))]


def refs_of(status: dict | None) -> list[ObjRef]:
    inv = (status or {}).get("inventory") or {}
    return [ObjRef.from_entry(e) for e in inv.get("entries") or []]


def stale(old: list[ObjRef], new: list[ObjRef]) -> list[ObjRef]:
    """Objects of ``old`` that are not in ``new`` (compared by id: a version change is not a
    removal), in reverse apply order (custom resources before their CRDs, namespaces last)."""
    from controlplane.gitops.ordering import kind_rank

    keep = {r.id for r in new}
    gone = [r for r in old if r.id not in keep]
    return sorted(gone, key=lambda r: (-kind_rank(r.group, r.kind), r.namespace, r.name))
