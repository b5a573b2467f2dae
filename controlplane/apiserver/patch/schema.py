"""Patch and list-type metadata for built-in kinds and CRD schemas.

Strategic merge patch and server-side apply both need to know, for any field path, whether a
list merges by key (``x-kubernetes-patch-strategy``/``x-kubernetes-patch-merge-key``), is a set,
a map keyed by ``x-kubernetes-list-map-keys`` or atomic, and whether a map is atomic
(``x-kubernetes-map-type``). For built-ins that metadata comes from the Kubernetes OpenAPI
definitions shipped by the ``kubernetes-validate`` package (v1.32 ``_definitions.json``), loaded
once on first use and pruned to the keys used here; for custom resources from the CRD's
``openAPIV3Schema`` (passed in by the caller).

API: ``builtin_node(gvk) -> Node | None``, ``crd_node(schema) -> Node | None``, and ``Node``
(``field(name)``, ``items()``, ``patch_strategy``, ``merge_key``, ``list_type``,
``list_map_keys``, ``map_type``, ``kind``). Readers: ``strategic.py``, ``ssa.py``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import kubernetes_validate  # for the Kubernetes definitions it ships (data only)

KUBE_VERSION = "v1.32.0"
_KEEP = {"properties", "items", "additionalProperties", "$ref", "type", "oneOf", "anyOf", "allOf",
         "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key", "x-kubernetes-list-type",
         "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-group-version-kind",
         "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource"}


def _definitions_path() -> Path:
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    exact = base / f"{KUBE_VERSION}-local" / "_definitions.json"
    if exact.exists():
        return exact
    found = sorted(base.glob("v1.3*-local/_definitions.json"))
    if not found:
        raise FileNotFoundError(f"no _definitions.json under {base}")
    return found[0]


def _prune(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "properties" and isinstance(v, dict):
                out[k] = {name: _prune(sub) for name, sub in v.items()}
            elif k in ("x-kubernetes-group-version-kind", "x-kubernetes-list-map-keys"):
                out[k] = v
            elif k in _KEEP:
                out[k] = _prune(v)
        return out
    if isinstance(node, list):
        return [_prune(v) for v in node]
    return node


@functools.lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    with open(_definitions_path(), "rb") as f:
        raw = json.load(f)
    defs = raw.get("$defs") or raw.get("definitions") or {}
    return {name: _prune(d) for name, d in defs.items()}


@functools.lru_cache(maxsize=1)
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, d in _definitions().items():
        for g in d.get("x-kubernetes-group-version-kind") or []:
            index.setdefault((g.get("group", ""), g.get("version", ""), g.get("kind", "")), name)
    return index


def _resolve(node: dict[str, Any] | None) -> dict[str, Any] | None:
    """Follow ``$ref`` (sibling ``x-kubernetes-*`` keys on the referring node win)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 32:
        target = _definitions().get(node["$ref"].rsplit("/", 1)[-1])
        if target is None:
            return None
        extra = {k: v for k, v in node.items() if k.startswith("x-kubernetes-")}
        node = {**target, **extra} if extra else target
        seen += 1
    if isinstance(node, dict) and "allOf" in node and "properties" not in node:
        merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
        for part in node["allOf"]:
            merged.update(_resolve(part) or {})
        node = merged
    return node


class Node:
    """One schema position; cheap to create, children resolved on demand."""

    __slots__ = ("raw", "_children", "_items", "_kind", "mf_info")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self._children: dict[str, Node | None] = {}
        self._items: Node | None | bool = False
        self._kind: str | None = None
        # Derived field-set facts cached by managed_fields.py (props, list semantics, children).
        self.mf_info: Any = None

    def _types(self) -> set[str]:
        t = self.raw.get("type")
        if isinstance(t, list):
            return {x for x in t if x != "null"}
        return {t} if isinstance(t, str) else set()

    @property
    def kind(self) -> str:
        """"struct", "map", "list", "scalar" or "" (unknown: preserve-unknown or untyped)."""
        if self._kind is None:
            self._kind = self._compute_kind()
        return self._kind

    def _compute_kind(self) -> str:
        types = self._types()
        if "array" in types or "items" in self.raw:
            return "list"
        if "properties" in self.raw:
            return "struct"
        if isinstance(self.raw.get("additionalProperties"), dict):
            return "map"
        if "object" in types:
            return "map" if not self.raw.get("x-kubernetes-embedded-resource") else "struct"
        if types or "oneOf" in self.raw or self.raw.get("x-kubernetes-int-or-string"):
            return "scalar"
        return ""

    def field(self, name: str) -> Node | None:
        try:
            return self._children[name]
        except KeyError:
            pass
        props = self.raw.get("properties")
        if not (isinstance(props, dict) and name in props):
            if "\0values" not in self._children:  # one child for every key of a map
                self._children["\0values"] = self._field("\0values")
            return self._children["\0values"]
        child = self._children[name] = self._field(name)
        return child

    def _field(self, name: str) -> Node | None:
        props = self.raw.get("properties")
        if isinstance(props, dict) and name in props:
            sub = _resolve(props[name])
            return Node(sub) if sub is not None else None
        ap = self.raw.get("additionalProperties")
        if isinstance(ap, dict):
            sub = _resolve(ap)
            return Node(sub) if sub is not None else None
        return None

    def items(self) -> Node | None:
        if self._items is False:
            sub = _resolve(self.raw.get("items"))
            self._items = Node(sub) if isinstance(sub, dict) else None
        return self._items  # type: ignore[return-value]

    @property
    def patch_strategies(self) -> list[str]:
        s = self.raw.get("x-kubernetes-patch-strategy") or ""
        return [p for p in s.split(",") if p]

    @property
    def patch_strategy(self) -> str:
        """The strategy for merging this field ("merge", "replace" or ""), retainKeys aside."""
        rest = [p for p in self.patch_strategies if p != "retainKeys"]
        return rest[0] if rest else ""

    @property
    def merge_key(self) -> str:
        return self.raw.get("x-kubernetes-patch-merge-key") or ""

    @property
    def list_type(self) -> str:
        return self.raw.get("x-kubernetes-list-type") or ""

    @property
    def list_map_keys(self) -> list[str]:
        return list(self.raw.get("x-kubernetes-list-map-keys") or [])

    @property
    def map_type(self) -> str:
        return self.raw.get("x-kubernetes-map-type") or ""


@functools.lru_cache(maxsize=256)
def builtin_node(gvk: tuple[str, str, str]) -> Node | None:
    """The root schema of a built-in kind, or None when the definitions do not know it."""
    name = _gvk_index().get(tuple(gvk))  # type: ignore[arg-type]
    if name is None:
        return None
    raw = _resolve(_definitions()[name])
    return Node(raw) if raw is not None else None


def crd_node(schema: dict[str, Any] | None) -> Node | None:
    """The root of a CRD version's ``openAPIV3Schema`` (inline, no ``$ref``), or None."""
    return Node(schema) if isinstance(schema, dict) else None


def preload() -> None:
    """Load the definitions now (about a second; call it off the event loop at start-up)."""
    _gvk_index()
